"""The parsing fine-tune on a tiny synthetic LIP twin with a tiny backbone: range, training, seeds, the flip swap."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from plipbench.evaluation.protocols.parsing_fine_tune import ParsingTrainingImages, mirror_label_map
from plipbench.evaluation.results import load_results
from plipbench.evaluation.runner import evaluate
from plipbench.evaluation.tasks import TaskRegistry
from plipbench.metrics.parsing import LIP_FLIP_PAIRS, flip_permutation

SIZE = [64, 32]


@pytest.fixture
def tasks(tmp_path, monkeypatch):
    monkeypatch.setenv("PLIPBENCH_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "tasks"
    root.mkdir()
    common = {"input_size": SIZE, "layers": [-2, -1], "batch_size": 8}
    (root / "tiny-lip.yaml").write_text(yaml.safe_dump({
        "name": "tiny-lip", "kind": "parsing", "family": "parsing", "synthetic": True,
        "dataset": {"layout": "lip", "synthetic": {"preset": "synth-lip", "layout": "lip", "identities": 24}},
        "splits": {"train": "train", "val": None, "test": "val"},
        "protocols": [
            {"name": "fine-tune", "base": "fine-tune", "options": {**common, "epochs": 3, "lr": 2e-4}},
            {"name": "untrained", "base": "fine-tune", "options": {**common, "epochs": 1, "lr": 1e-12,
                                                                    "head_lr_factor": 1.0}},
        ],
        "metric_options": {"flip": True}, "main_score": "mIoU",
    }))
    return TaskRegistry(root)


def test_fine_tune_trains_scores_in_range_and_is_seeded(tasks, tmp_path) -> None:
    out = tmp_path / "results"
    frame = evaluate("random:plip-mini", tasks="tiny-lip", out=out, registry=tasks, progress=False, seeds=2)
    assert list(frame.status) == ["done"] * 4
    results = {(r.protocol, r.seed): r for r in load_results(out)}
    tuned, untrained = results[("fine-tune", 0)], results[("untrained", 0)]
    for r in results.values():
        assert set(r.scores) == {"mIoU", "pixel_accuracy", "mean_accuracy"}
        assert all(0 <= v <= 1 for v in r.scores.values())
        assert len(r.details["per_class_iou"]) == 20
    # training moves the backbone and the head: a different, better model than one that barely moved
    assert tuned.scores["mIoU"] != untrained.scores["mIoU"]
    assert tuned.scores["pixel_accuracy"] > untrained.scores["pixel_accuracy"]
    assert len(tuned.details["curve"]) == 3 and tuned.details["curve"][-1]["loss"]["loss"] < \
        tuned.details["curve"][0]["loss"]["loss"]
    assert tuned.details["selection"] == "last-epoch" and tuned.provenance.selection_split is None
    assert tuned.details["train_flip_swap"] == [list(p) for p in LIP_FLIP_PAIRS]
    assert tuned.scores != results[("fine-tune", 1)].scores  # another seed, another run
    again = evaluate("random:plip-mini", tasks="tiny-lip", out=tmp_path / "again", registry=tasks, progress=False,
                     seeds=1)
    assert list(again.status) == ["done"] * 2
    rerun = {r.protocol: r for r in load_results(tmp_path / "again")}
    assert rerun["fine-tune"].scores == tuned.scores  # the same seed, the same numbers


def test_a_fine_tune_never_mutates_the_given_backbone(tasks, tmp_path) -> None:
    import torch

    from plipbench.models import create_backbone

    backbone = create_backbone("random:plip-mini")
    before = {k: v.clone() for k, v in backbone.module.state_dict().items()}
    evaluate(backbone, tasks="tiny-lip", protocols="fine-tune", out=tmp_path / "r", registry=tasks, progress=False)
    after = backbone.module.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_mirror_label_map_swaps_left_and_right() -> None:
    order = flip_permutation(20, LIP_FLIP_PAIRS)
    left_arm, right_arm = next((a, b) for a, b in LIP_FLIP_PAIRS)
    labels = np.array([[left_arm, 0, 255], [1, right_arm, 2]], dtype=np.uint8)
    mirrored = mirror_label_map(labels, order)
    assert mirrored.tolist() == [[255, 0, right_arm], [2, left_arm, 1]]
    assert np.array_equal(mirror_label_map(mirrored, order), labels)  # an involution
    assert mirror_label_map(labels, list(range(20))).tolist() == labels[:, ::-1].tolist()  # no pairs: mirror only


def test_training_images_flip_image_and_labels_together(tasks) -> None:
    from plipbench.data.readers import read_dataset
    from plipbench.evaluation.tasks import resolve_dataset
    from plipbench.models import create_backbone

    ref = tasks.get("tiny-lip").dataset
    train = read_dataset(ref.layout, resolve_dataset(ref, generate=True), **ref.options).split("train")
    backbone = create_backbone("random:plip-mini")
    order = flip_permutation(20, LIP_FLIP_PAIRS)
    plain = ParsingTrainingImages(train[:4], backbone, tuple(SIZE), order, flip_probability=0.0, seed=0)
    flipped = ParsingTrainingImages(train[:4], backbone, tuple(SIZE), order, flip_probability=1.0,
                                    seed=0)
    image, labels, _ = plain[0]
    image_f, labels_f, _ = flipped[0]
    assert flipped.flips == 1 and plain.flips == 0
    assert image.shape == (3, *SIZE) and labels.shape == tuple(SIZE)
    assert np.array_equal(image_f.numpy(), image.flip(-1).numpy())
    assert np.array_equal(labels_f.numpy(), mirror_label_map(labels.numpy().astype(np.uint8), order))


def test_shipped_parsing_tasks_offer_the_fine_tune() -> None:
    registry = TaskRegistry()
    for name in ("lip", "pascal-person-part", "cihp"):
        assert registry.get(name).protocol("fine-tune").base == "fine-tune"
    for name in ("synth-lip", "synth-pascal-person-part"):
        spec = registry.get(name).protocol("fine-tune")
        assert spec.base == "fine-tune" and spec.options == {"epochs": 1}


def test_a_val_split_selects_the_epoch(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PLIPBENCH_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "tasks"
    root.mkdir()
    (root / "tiny-lip-val.yaml").write_text(yaml.safe_dump({
        "name": "tiny-lip-val", "kind": "parsing", "family": "parsing", "synthetic": True,
        "dataset": {"layout": "lip", "synthetic": {"preset": "synth-lip", "layout": "lip", "identities": 24}},
        # the generator writes train and val only: selection on (a copy of) train keeps the test split out of it
        "splits": {"train": "train", "val": "train", "test": "val"},
        "protocols": [{"name": "fine-tune", "base": "fine-tune",
                       "options": {"input_size": SIZE, "epochs": 2, "lr": 2e-4, "batch_size": 8}}],
        "main_score": "mIoU",
    }))
    out = tmp_path / "results"
    evaluate("random:plip-mini", tasks="tiny-lip-val", out=out, registry=TaskRegistry(root), progress=False)
    (result,) = load_results(out)
    assert result.provenance.selection_split == "val" and result.details["selection"] == "best val mIoU"
    assert len(result.details["val_mIoU"]) == 2 and all("val" in p for p in result.details["curve"])
    best = max(result.details["val_mIoU"])
    assert result.details["selected_epoch"] == result.details["val_mIoU"].index(best) + 1

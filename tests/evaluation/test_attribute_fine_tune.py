"""The attribute ``fine-tune`` protocol: Rethinking_of_PAR-style fine-tuning of the whole image encoder."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from protocol_fixtures import (
    ATTRIBUTE_TASK,
    TASKS,
    assert_state_unchanged,
    check_fractions,
    image_only_backbone,
    make_context,
    plip_mini,
    real_store,
    state_snapshot,
    synthetic_dataset,
    task_data,
)

from plipbench.data.records import PersonDataset, PersonRecord
from plipbench.data.synth import PA100K_ATTRIBUTES
from plipbench.errors import ConfigError
from plipbench.evaluation.protocols import get_protocol
from plipbench.evaluation.protocols.attributes import ATTRIBUTE_FINE_TUNE_DEFAULTS, fine_tune, weighted_bce
from plipbench.evaluation.protocols.base import TaskData
from plipbench.evaluation.tasks import load_task_file

KEYS = ["mA", "Acc", "Prec", "Rec", "F1"]
# enough steps for the tiny CNN in a fraction of a second: 4 batches x 5 epochs, a faster encoder rate
FAST = {"batch_size": 16, "lr": 1e-3}


def _bright_dark_data(root: Path, seed: int = 0, sizes: tuple[int, int, int] = (64, 32, 64)) -> TaskData:
    """Noisy flat images; attribute ``bright`` (30% positives) is the image's brightness, ``coin`` is random."""
    rng = np.random.default_rng(seed)
    splits: dict[str, list[PersonRecord]] = {}
    for split, count in zip(("train", "val", "test"), sizes, strict=True):
        splits[split] = []
        for i in range(count):
            bright, coin = int(rng.random() < 0.3), int(rng.random() < 0.5)
            pixels = np.clip((190 if bright else 70) + rng.normal(0, 25, size=(32, 16, 3)), 0, 255).astype(np.uint8)
            path = root / f"{split}_{i}.png"
            Image.fromarray(pixels).save(path)
            splits[split].append(PersonRecord(image_path=path, pid=i, split=split, attributes=(bright, coin)))
    names = ["bright", "coin"]
    dataset = PersonDataset("bright-dark", "stub", root, [r for rs in splits.values() for r in rs],
                            attribute_names=names)
    return TaskData(target=dataset, source=dataset, train_records=splits["train"], val_records=splits["val"],
                    test_records=splits["test"], query_records=[], gallery_records=[], attribute_names=names,
                    target_fingerprint="t", source_fingerprint="s")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models: one intra-op thread is faster than several (and keeps the CPU use light)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def bright_dark(tmp_path_factory) -> TaskData:
    return _bright_dark_data(tmp_path_factory.mktemp("bright-dark"))


def _run(data: TaskData, options: dict | None = None, *, seed: int = 0, backbone=None):
    backbone = backbone or image_only_backbone()
    ctx = make_context(ATTRIBUTE_TASK, "fine-tune", data, backbone, real_store(backbone), options, seed=seed)
    return get_protocol("attributes", "fine-tune")(ctx)


def _check_output(out, n_images: int, names: list[str]) -> None:
    check_fractions(out.scores, KEYS)
    assert set(out.scores) == set(KEYS)
    probs, labels = out.per_query["probs"], out.per_query["labels"]
    assert probs.dtype == np.float32 and probs.shape == (n_images, len(names))
    assert labels.dtype == np.uint8 and labels.shape == (n_images, len(names))
    assert ((probs >= 0) & (probs <= 1)).all()
    rows = out.details["per_attribute"]
    assert [r["name"] for r in rows] == names
    assert math.isclose(np.mean([r["mA"] for r in rows]), out.scores["mA"], abs_tol=1e-9)
    assert out.metric_protocol["convention"] == "rethinking"
    assert not out.zero_shot
    assert {"train_s", "test_features_s", "metric_s"} <= set(out.timings)


def test_fine_tune_learns_an_attribute_the_image_determines(bright_dark):
    backbone = image_only_backbone()
    before = state_snapshot(backbone)
    out = _run(bright_dark, FAST)
    assert_state_unchanged(backbone, before)  # a copy was trained
    _check_output(out, len(bright_dark.test_records), ["bright", "coin"])
    per_attribute = {r["name"]: r for r in out.details["per_attribute"]}
    assert per_attribute["bright"]["mA"] >= 0.95  # chance (or a constant prediction) is 0.5
    assert per_attribute["bright"]["pos_recall"] >= 0.9 and per_attribute["bright"]["neg_recall"] >= 0.9
    assert out.scores["mA"] >= 0.7  # "coin" is unpredictable: about 0.5
    # selection on val, one point per epoch, the best (earliest on ties) epoch kept
    assert out.selection_split == "val" and out.details["selection"] == "best val mA"
    curve = out.details["val_mA"]
    assert len(curve) == len(out.details["train_loss"]) == 5
    assert out.details["selected_epoch"] == int(np.argmax(curve)) + 1
    assert max(curve) >= 0.7
    assert all(np.isfinite(out.details["train_loss"]))
    assert out.details["steps"] == 5 * 4
    assert out.details["num_train_images"] == 64 and out.details["num_val_images"] == 32
    assert out.options == {**ATTRIBUTE_FINE_TUNE_DEFAULTS, **FAST}
    # labels are the test labels, in attribute order
    expected = np.array([r.attributes for r in bright_dark.test_records], dtype=np.uint8)
    assert np.array_equal(out.per_query["labels"], expected)


def test_fine_tune_is_seeded_and_never_chooses_with_the_test_split(bright_dark):
    options = {**FAST, "epochs": 2}
    first = _run(bright_dark, options)
    # a different global RNG state and inverted test labels: nothing may change but the test scores
    torch.manual_seed(12345)
    inverted = [dataclasses.replace(r, attributes=tuple(1 - a for a in r.attributes))
                for r in bright_dark.test_records]
    second = _run(dataclasses.replace(bright_dark, test_records=inverted), options)
    assert np.array_equal(first.per_query["probs"], second.per_query["probs"])
    for key in ("val_mA", "train_loss", "selected_epoch"):
        assert first.details[key] == second.details[key], key
    assert np.array_equal(second.per_query["labels"], 1 - first.per_query["labels"])
    again = _run(bright_dark, options)
    assert again.scores == first.scores and np.array_equal(again.per_query["probs"], first.per_query["probs"])
    other_seed = _run(bright_dark, options, seed=1)
    assert other_seed.details["train_loss"] != first.details["train_loss"]


def test_fine_tune_without_val_keeps_the_last_epoch_and_max_steps_caps(bright_dark):
    data = dataclasses.replace(bright_dark, val_records=[])
    out = _run(data, {**FAST, "epochs": 2})
    assert out.selection_split is None and out.details["selection"] == "last-epoch"
    assert out.details["selected_epoch"] == 2 and out.details["val_mA"] == []
    assert out.details["num_val_images"] == 0
    # 4 batches per epoch: 6 steps end inside the second epoch, which is the one kept
    capped = _run(data, {**FAST, "epochs": 5, "max_steps": 6})
    assert capped.details["steps"] == 6 and len(capped.details["train_loss"]) == 2
    assert capped.details["selected_epoch"] == 2 and capped.selection_split is None


@pytest.mark.parametrize("options", [{"optimizer": "sgd", "logits_bn": False, "clip_grad_norm": None},
                                     {"optimizer": "adamw", "warmup_steps": 3, "flip_probability": 0.0}])
def test_fine_tune_other_optimizers_and_heads_run(bright_dark, options):
    out = _run(bright_dark, {**FAST, "epochs": 1, **options})
    _check_output(out, len(bright_dark.test_records), ["bright", "coin"])
    assert all(np.isfinite(out.details["train_loss"]))
    assert out.details["classifier"] == ("Linear" if options.get("logits_bn") is False
                                         else "Linear + BatchNorm1d on the logits")


@pytest.mark.parametrize("options, key", [
    ({"lr": 0}, "lr"), ({"epochs": 0}, "epochs"), ({"optimizer": "rmsprop"}, "optimizer"),
    ({"batch_size": 1}, "batch_size"), ({"flip_probability": 1.5}, "flip_probability"),
    ({"max_steps": 0}, "max_steps"), ({"clip_grad_norm": -1.0}, "clip_grad_norm"), ({"logits_bn": "yes"}, "logits_bn"),
    ({"classifier_lr_factor": 0}, "classifier_lr_factor"), ({"method": "weighted-bce"}, "method"),
])  # fmt: skip
def test_fine_tune_option_errors(bright_dark, options, key):
    with pytest.raises(ConfigError, match=rf"synth-pa100k, protocol fine-tune \(attributes fine-tune\).*'{key}'"):
        _run(bright_dark, options)


def test_fine_tune_bad_metric_option(bright_dark):
    backbone = image_only_backbone()
    ctx = make_context(ATTRIBUTE_TASK, "fine-tune", bright_dark, backbone, real_store(backbone),
                       metric_options={"metric": "cosine"})
    with pytest.raises(ConfigError, match="metric option 'metric'"):
        fine_tune(ctx)


def test_weighted_bce_hand_case():
    logits = torch.zeros(2, 3)
    targets = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    ratio = torch.tensor([0.5, 0.1, 0.9])
    # every element costs log 2 at logit 0; weights exp(1 - p) on positives, exp(p) on negatives
    weights = [[math.exp(0.5), math.exp(0.1), math.exp(0.1)], [math.exp(0.5), math.exp(0.1), math.exp(0.1)]]
    expected = math.log(2) * sum(map(sum, weights)) / 2  # summed over attributes, averaged over images
    assert math.isclose(weighted_bce(logits, targets, ratio).item(), expected, rel_tol=1e-6)
    # a confident right answer costs less than a confident wrong one, more so on a rare positive
    good = weighted_bce(torch.tensor([[5.0, -5.0, 5.0]]), targets[:1], ratio)
    bad = weighted_bce(torch.tensor([[-5.0, 5.0, -5.0]]), targets[:1], ratio)
    assert good.item() < bad.item()


def test_fine_tune_on_plip_mini_pa100k_and_registration(tmp_path_factory):
    pa100k = synthetic_dataset(tmp_path_factory.getbasetemp(), "synth-pa100k", "pa100k", 100, 1)
    backbone = plip_mini()
    before = state_snapshot(backbone)
    data = task_data(pa100k)
    out = _run(data, {"max_steps": 2, "batch_size": 16}, backbone=backbone)
    assert_state_unchanged(backbone, before)
    _check_output(out, len(data.test_records), list(PA100K_ATTRIBUTES))
    assert out.details["steps"] == 2 and out.selection_split == "val" and len(out.details["val_mA"]) == 1
    assert len(out.details["train_positive_ratio"]) == len(PA100K_ATTRIBUTES)
    assert get_protocol("attributes", "fine-tune") is fine_tune
    for name in ("pa100k", "peta", "rapv1", "rapv2"):
        task = load_task_file(TASKS / "attributes" / f"{name}.yaml")
        assert task.protocol("fine-tune").base == "fine-tune"

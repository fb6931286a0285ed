"""The parsing linear probe end to end on a tiny synthetic LIP twin, dense features for the families, the skip rule."""

from __future__ import annotations

import pytest
import torch
import yaml

from plipbench.errors import ConfigError
from plipbench.evaluation.results import load_results
from plipbench.evaluation.runner import evaluate
from plipbench.evaluation.tasks import TaskRegistry
from plipbench.models import create_backbone
from plipbench.models.dense import dense_support, encode_image_dense


@pytest.fixture
def tasks(tmp_path, monkeypatch):
    monkeypatch.setenv("PLIPBENCH_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "tasks"
    root.mkdir()
    for name, layout in (("tiny-lip", "lip"), ("tiny-pascal", "pascal-person-part")):
        (root / f"{name}.yaml").write_text(yaml.safe_dump({
            "name": name, "kind": "parsing", "family": "parsing", "synthetic": True,
            "dataset": {"layout": layout, "synthetic": {"preset": "synth-lip", "layout": layout, "identities": 40}},
            "splits": {"train": "train", "val": None, "test": "val"},
            "protocols": [{"name": "linear-probe", "base": "linear-probe",
                           "options": {"epochs": 3, "input_size": [64, 32], "layers": [-2, -1]}}],
            "metric_options": {"flip": True}, "main_score": "mIoU",
        }))
    return TaskRegistry(root)


def test_linear_probe_scores_miou_and_caches_the_dense_maps(tasks, tmp_path) -> None:
    out = tmp_path / "results"
    frame = evaluate("random:plip-mini", tasks="tiny-lip,tiny-pascal", out=out, registry=tasks, progress=False,
                     seeds=2)
    assert list(frame.status) == ["done"] * 4
    results = {(r.task, r.seed): r for r in load_results(out)}
    lip = results[("tiny-lip", 0)]
    assert set(lip.scores) == {"mIoU", "pixel_accuracy", "mean_accuracy"} and 0 < lip.scores["mIoU"] < 1
    assert len(lip.details["per_class_iou"]) == 20 and lip.details["feature_shape"][0] == 256 + 512  # plip-mini's last two stages
    assert lip.provenance.metric_protocol["flip"] is True and lip.provenance.metric_protocol["flip_pairs"]
    assert results[("tiny-pascal", 0)].provenance.metric_protocol["flip_pairs"] == []  # no sides in PASCAL
    assert len(results[("tiny-pascal", 1)].details["per_class_iou"]) == 7
    assert lip.provenance.selection_split is None and lip.scores != results[("tiny-lip", 1)].scores
    assert frame.attrs["feature_cache"]["misses"] >= 1
    dense = list((tmp_path / "cache" / "features").rglob("dense/*.npy"))
    assert len(dense) == 6  # train, test and flipped test of each copy (the two layouts are two generated copies)
    again = evaluate("random:plip-mini", tasks="tiny-lip", out=out, registry=tasks, progress=False, seeds=2,
                     overwrite=True)
    assert list(again.status) == ["done", "done"] and again.attrs["feature_cache"]["misses"] == 0
    assert {r.scores["mIoU"] for r in load_results(out) if r.task == "tiny-lip"} == {
        results[("tiny-lip", s)].scores["mIoU"] for s in (0, 1)}  # seeded: the same numbers again


def test_a_backbone_without_dense_maps_is_skipped_with_the_reason(tasks, tmp_path) -> None:
    import torch.nn as nn

    from plipbench.models.backbone import ModuleBackbone
    from plipbench.models.metadata import BackboneMetadata, ImageTransform

    meta = BackboneMetadata(name="flat", family="python", modalities=["image"], embedding_dim=4, num_parameters=0)
    flat = ModuleBackbone(nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 4)), meta, ImageTransform(size=(32, 16), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)))
    assert "no dense feature path" in dense_support(flat)
    with pytest.raises(Exception, match="no dense feature maps"):
        evaluate(flat, tasks="tiny-lip", out=tmp_path / "r", registry=tasks, progress=False)


def test_dense_maps_of_the_families() -> None:
    images = torch.randn(2, 3, 64, 32)
    plip = create_backbone("random:plip-mini")
    maps = encode_image_dense(plip, images, layers=[-1])
    assert maps.shape == (2, plip.model.visual.feature_dims[-1], 2, 1) and maps.dtype == torch.float32
    both = encode_image_dense(plip, images, layers=[2, 3])
    assert both.shape[1] == sum(plip.model.visual.feature_dims[2:]) and both.shape[-2:] == (4, 2)
    resnet = create_backbone("timm:resnet18", pretrained=False)
    assert encode_image_dense(resnet, torch.randn(1, 3, 128, 64)).shape == (1, 512, 4, 2)
    vit = create_backbone("timm:vit_tiny_patch16_224", pretrained=False, img_size=(128, 64))
    grid = encode_image_dense(vit, torch.randn(1, 3, 128, 64))
    tokens = vit.module.forward_features(torch.randn(1, 3, 128, 64))
    assert grid.shape == (1, 192, 8, 4) and tokens.shape[1] == 1 + 32
    x = torch.randn(1, 3, 128, 64)
    with torch.inference_mode():
        ref = vit.module.forward_features(x)[0, 1:].T.reshape(192, 8, 4)
    assert torch.allclose(encode_image_dense(vit, x)[0], ref, atol=1e-5)
    with pytest.raises(ConfigError, match="out of range"):
        encode_image_dense(plip, images, layers=[7])


def test_bad_probe_options_are_one_line_errors(tasks, tmp_path) -> None:
    spec = tmp_path / "tasks" / "tiny-lip.yaml"
    tree = yaml.safe_load(spec.read_text())
    tree["protocols"][0]["options"]["input_size"] = [64]
    spec.write_text(yaml.safe_dump(tree))
    with pytest.raises(ConfigError, match="input_size"):
        evaluate("random:plip-mini", tasks="tiny-lip", out=tmp_path / "r", registry=TaskRegistry(tmp_path / "tasks"),
                 progress=False)


def test_parsing_cells_get_a_two_level_interval_that_recomputes_the_score(tasks, tmp_path) -> None:
    import numpy as np

    from plipbench.leaderboard.seeds import cell_interval, cell_statistic, group_cells

    out = tmp_path / "results"
    evaluate("random:plip-mini", tasks="tiny-lip", out=out, registry=tasks, progress=False, seeds=2)
    results = load_results(out)
    (cell,) = group_cells(results).values()
    for metric in ("mIoU", "pixel_accuracy", "mean_accuracy"):
        stat = cell_statistic(cell, metric)
        n = stat.n_items
        ones = stat.weighted(np.ones((1, n)))[:, 0]
        assert ones == pytest.approx([r.scores[metric] for r in cell.results], abs=1e-12)
    arrays = cell.results[0].per_query_arrays()
    assert arrays["tp"].shape == (cell.results[0].details["num_test_images"], 20)
    assert (arrays["pos"] >= arrays["tp"]).all() and (arrays["res"] >= arrays["tp"]).all()
    # doubling an image and dropping another is the metric of that image list (sums of per-image counts)
    w = np.ones((1, stat.n_items))
    w[0, 0], w[0, 1] = 2, 0
    t, p_, r = (np.asarray(arrays[k], dtype=float) for k in ("tp", "pos", "res"))
    by_hand = ((w @ t) / np.maximum(1, w @ p_ + w @ r - w @ t)).mean()
    assert cell_statistic(cell, "mIoU").weighted(w)[0, 0] == pytest.approx(by_hand, abs=1e-12)
    ci = cell_interval(cell, n_resamples=200, confidence=0.95, seed=0)
    assert ci["low"] <= ci["mean"] <= ci["high"] and ci["n_seeds"] == 2

"""Person search's gt-boxes protocol end to end on tiny synthetic CUHK-SYSU / PRW twins, its per-query data for the
leaderboard's bootstrap, and a hand-made case where every identity's boxes share one feature (mAP 1)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml

from plipbench.data.readers import read_dataset
from plipbench.data.readers.person_search import UNLABELED
from plipbench.errors import ConfigError
from plipbench.evaluation.protocols.base import ProtocolContext, TaskData
from plipbench.evaluation.protocols.person_search import gt_boxes
from plipbench.evaluation.results import load_results
from plipbench.evaluation.runner import evaluate
from plipbench.evaluation.tasks import ProtocolSpec, TaskRegistry, TaskSpec

TINY = {"identities": 20, "images_per_id": 3}


def _task(name: str, preset: str, layout: str, **extra) -> dict:
    return {"name": name, "kind": "person-search", "family": "person-search", "synthetic": True,
            "dataset": {"layout": layout, "synthetic": {"preset": preset, **TINY},
                        **({"options": {"gallery_size": 50}} if layout == "cuhk-sysu" else {})},
            "protocols": ["gt-boxes"], "main_score": "mAP", **extra}


@pytest.fixture
def tasks(tmp_path, monkeypatch):
    monkeypatch.setenv("PLIPBENCH_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "tasks"
    root.mkdir()
    for spec in (_task("tiny-cuhk-sysu", "synth-cuhk-sysu", "cuhk-sysu"),
                 _task("tiny-prw", "synth-prw", "prw", metric_options={"ignore_cam_id": False})):
        (root / f"{spec['name']}.yaml").write_text(yaml.safe_dump(spec))
    return TaskRegistry(root)


def test_gt_boxes_scores_both_layouts_with_per_query_data(tasks, tmp_path) -> None:
    from plipbench.leaderboard.seeds import cell_statistic, group_cells

    out = tmp_path / "results"
    frame = evaluate("random:plip-mini", tasks="tiny-cuhk-sysu,tiny-prw", out=out, registry=tasks, progress=False,
                     seeds=2)
    assert list(frame.status) == ["done", "done"]  # deterministic: one run each, whatever --seeds says
    results = {r.task: r for r in load_results(out)}
    for r in results.values():
        assert r.seed is None and r.task_family == "person-search" and r.main_score == "mAP"
        assert set(r.scores) == {"mAP", "R@1", "R@5", "R@10"}
        assert all(0.0 <= v <= 1.0 for v in r.scores.values()) and r.scores["R@1"] <= r.scores["R@5"] <= r.scores["R@10"]
        pq = r.per_query_arrays()
        assert len(pq["AP"]) == len(pq["first_hit_rank"]) == r.details["num_queries"] > 0
        assert np.mean(pq["AP"]) == pytest.approx(r.scores["mAP"])
        for k in (1, 5, 10):
            ranks = np.asarray(pq["first_hit_rank"])
            assert np.mean((ranks >= 0) & (ranks < k)) == pytest.approx(r.scores[f"R@{k}"])
        options = r.provenance.protocol_options
        assert options["det_thresh"] == 0.5 and options["cbgm"] is False and options["base"] == "gt-boxes"
        assert r.provenance.metric_protocol["cbgm"] is False
        assert r.details["unlabeled_gallery_boxes"] > 0
        cell = next(iter(group_cells([r]).values()))
        stat = cell_statistic(cell)  # the two-level bootstrap's per-query statistic exists and is the score
        assert stat is not None and stat.n_items == len(pq["AP"])
        assert stat.weighted(np.ones((1, stat.n_items)))[0, 0] == pytest.approx(r.scores["mAP"])
    assert results["tiny-cuhk-sysu"].provenance.protocol_options["gallery_size"] == 50
    assert results["tiny-prw"].provenance.protocol_options["ignore_cam_id"] is False
    assert results["tiny-prw"].provenance.metric_protocol["ignore_cam_id"] is False
    again = evaluate("random:plip-mini", tasks="tiny-prw", out=out, registry=tasks, progress=False, overwrite=True)
    assert again.attrs["feature_cache"]["misses"] == 0  # the crops' features come from the cache
    assert {r.task: r.scores for r in load_results(out)}["tiny-prw"] == results["tiny-prw"].scores


class PidFeatures:
    """Crop features that know the truth: one one-hot direction per identity, and one per unlabelled box."""

    def __init__(self, dataset) -> None:
        self.lookup: dict[tuple[str, tuple[float, ...]], int] = {}
        fresh = 10_000
        for s in dataset.gallery:
            for box, pid in zip(s.boxes, s.pids, strict=True):
                if pid == UNLABELED:
                    pid, fresh = fresh, fresh + 1
                self.lookup[(str(s.image_path), tuple(box))] = int(pid)
        self.dims = {pid: i for i, pid in enumerate(sorted(set(self.lookup.values())))}

    def crop_features(self, crops) -> torch.Tensor:
        out = torch.zeros(len(crops), len(self.dims))
        for i, (path, box) in enumerate(crops):
            out[i, self.dims[self.lookup[(str(path), tuple(box))]]] = 1.0
        return out


def _context(dataset, metric_options=None) -> ProtocolContext:
    task = TaskSpec(name="hand", kind="person-search", family="person-search", main_score="mAP",
                    dataset={"layout": dataset.layout, "root": str(dataset.root)}, protocols=["gt-boxes"],
                    metric_options=metric_options or {})
    data = TaskData(target=dataset, source=dataset, train_records=[], val_records=[], test_records=[],
                    query_records=[], gallery_records=[], attribute_names=None, target_fingerprint="t",
                    source_fingerprint="t")
    backbone = SimpleNamespace(image_transform=SimpleNamespace(size=(128, 64)))
    return ProtocolContext(backbone=backbone, task=task, protocol=ProtocolSpec(name="gt-boxes", base="gt-boxes"),
                           data=data, features=PidFeatures(dataset), options={})


@pytest.mark.parametrize(("preset", "layout"), [("synth-cuhk-sysu", "cuhk-sysu"), ("synth-prw", "prw")])
def test_identical_features_for_an_identity_give_map_1(tmp_path, preset, layout) -> None:
    from plipbench.data.synth import generate

    generate(preset, tmp_path / preset, progress=False, **TINY)
    dataset = read_dataset(layout, tmp_path / preset, **({"gallery_size": 50} if layout == "cuhk-sysu" else {}))
    out = gt_boxes(_context(dataset))
    assert out.scores == {"mAP": 1.0, "R@1": 1.0, "R@5": 1.0, "R@10": 1.0}
    assert np.all(out.per_query["AP"] == 1.0) and np.all(out.per_query["first_hit_rank"] == 0)
    # CBGM runs (the query image's other boxes as context) and is recorded; it can lower even perfect features: a
    # target-absent frame holding a person of the query's frame gives its box matched to the query the largest
    # matched weight (SeqNet's rule), a tie with the true targets
    with_cbgm = gt_boxes(_context(dataset, {"cbgm": True}))
    assert 0.0 < with_cbgm.scores["mAP"] <= 1.0 and with_cbgm.metric_protocol["cbgm"] is True
    assert with_cbgm.options["cbgm"] is True and with_cbgm.metric_protocol["k1"] == (10 if layout == "cuhk-sysu" else 30)


def test_a_query_of_a_wrong_identity_scores_below_1(tmp_path) -> None:
    from plipbench.data.synth import generate

    generate("synth-prw", tmp_path / "prw", progress=False, **TINY)
    dataset = read_dataset("prw", tmp_path / "prw")
    ctx = _context(dataset)
    first = dataset.queries[0]
    other = next(q for q in dataset.queries if q.pid != first.pid)
    # query 0 is embedded as another identity: its targets are not where it looks
    ctx.features.lookup[(str(first.image_path), tuple(first.box))] = other.pid
    out = gt_boxes(ctx)
    assert out.per_query["AP"][0] < 0.5 and out.scores["mAP"] < 1.0
    assert out.scores["mAP"] == pytest.approx(np.mean(out.per_query["AP"]))


def test_det_thresh_above_1_is_refused(tmp_path) -> None:
    from plipbench.data.synth import generate

    generate("synth-prw", tmp_path / "prw", progress=False, identities=6, images_per_id=2)
    dataset = read_dataset("prw", tmp_path / "prw")
    with pytest.raises(ConfigError, match="det_thresh"):
        gt_boxes(_context(dataset, {"det_thresh": 1.5}))


def test_crop_features_equal_the_features_of_the_cut_out_image_and_are_cached(tmp_path) -> None:
    from PIL import Image
    from protocol_fixtures import image_only_backbone

    from plipbench.data.records import PersonRecord
    from plipbench.evaluation.features import FeatureStore

    rng = np.random.default_rng(0)
    frame = tmp_path / "frame.png"
    Image.fromarray(rng.integers(0, 256, (90, 160, 3), dtype=np.uint8)).save(frame)
    boxes = [np.array([10.0, 5.0, 40.0, 65.0]), np.array([100.2, 20.0, 150.0, 88.0]), np.array([-5.0, 0.0, 12.0, 30.0])]
    cut = []
    for i, (x1, y1, x2, y2) in enumerate([(10, 5, 40, 65), (100, 20, 150, 88), (0, 0, 12, 30)]):  # rounded, clipped
        cut.append(tmp_path / f"crop{i}.png")
        with Image.open(frame) as img:
            img.crop((x1, y1, x2, y2)).save(cut[-1])
    store = FeatureStore(image_only_backbone(), cache_dir=tmp_path / "cache")
    crops = store.crop_features([(frame, b) for b in boxes])
    whole = store.image_features([PersonRecord(p, 0, -1, "test") for p in cut])
    assert torch.allclose(crops, whole, atol=1e-6)
    assert torch.equal(store.crop_features([(frame, b) for b in boxes]), crops)
    assert store.stats["hits"] == 1
    moved = store.crop_features([(frame, boxes[0] + 1), *[(frame, b) for b in boxes[1:]]])
    assert store.stats["hits"] == 1 and not torch.equal(moved[0], crops[0])  # another box is another entry

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml
from runner_fixtures import write_tiny_tasks

from plipbench.bench import compare_results, run_bench
from plipbench.evaluation import protocols as protocol_registry
from plipbench.evaluation.results import load_results
from plipbench.evaluation.tasks import TaskRegistry

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pretrain"))
from pretrain_fixtures import write_tiny_corpus  # noqa: E402

TINY_PRETRAIN = [
    "model_overrides.image.width=8", "model_overrides.image.input_size=[64, 32]", "model_overrides.image.heads=2",
    "model_overrides.joint_dim=32", "model_overrides.text.bert.hidden_size=32",
    "model_overrides.text.bert.num_hidden_layers=1", "model_overrides.text.bert.num_attention_heads=2",
    "model_overrides.text.bert.intermediate_size=64", "model_overrides.text.bert.vocab_size=120",
    "tic.neck_dim=8", "iap.heads=2", "sampler.identities_per_batch=2", "sampler.images_per_identity=2",
    "optim.epochs=1", "train.threads=1",
]


@pytest.fixture
def tiny_bench(tmp_path, monkeypatch):
    monkeypatch.setenv("PLIPBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("plipbench.bench.present_baselines", lambda: ([], ["baseline x: weights not on this machine"]))
    for key in list(protocol_registry.PROTOCOLS):
        monkeypatch.setitem(protocol_registry.PROTOCOLS, key, "test_runner:stub_protocol")
    corpus = write_tiny_corpus(tmp_path / "corpus")
    tasks = write_tiny_tasks(tmp_path / "tasks", real_root=tmp_path / "absent")
    data = ["data.preset=null", f"data.root={corpus}", "data.layout=synth-pedes"]
    (tasks / "suites" / "bench.yaml").write_text(yaml.safe_dump({
        "name": "bench", "tasks": ["tiny-image", "real-text"],
        "backbones": [
            {"name": "tiny-plip", "pretrain": "mini", "overrides": TINY_PRETRAIN + data, "max_steps": 2},
            {"name": "tiny-floor", "pretrain": "mini", "overrides": TINY_PRETRAIN + data, "max_steps": 0},
        ],
        "tolerances": {"default": 0.01},
    }))
    return TaskRegistry(tasks), tmp_path


def test_bench_pretrains_evaluates_and_writes_the_leaderboard(tiny_bench) -> None:
    registry, tmp = tiny_bench
    out = tmp / "results" / "bench"
    report = run_bench("bench", out=out, registry=registry, progress=False)
    names = [b["name"] for b in report.backbones]
    assert names == ["tiny-plip", "tiny-floor"]
    assert report.backbones[0]["pretraining_steps"] == 2 and report.backbones[1]["pretraining_steps"] == 0
    results = load_results(out)
    assert {(r.backbone, r.task) for r in results} == {("tiny-plip", "tiny-image"), ("tiny-floor", "tiny-image")}
    assert results[0].provenance.backbone["pretraining_seconds"] >= 0
    board = (tmp / "results" / "LEADERBOARD.md").read_text()
    assert "tiny-plip" in board and "tiny-floor" in board
    assert any("real-text" in s and "not found" in s for s in report.skipped)
    assert any("baseline x" in s for s in report.skipped)

    # a second run reuses the cached pre-training and the results
    again = run_bench("bench", out=out, registry=registry, progress=False)
    assert [b["pretraining_seconds"] for b in again.backbones] == [b["pretraining_seconds"] for b in report.backbones]

    # a result the suite no longer produces (a dropped backbone or protocol) is removed
    stale = out / "dropped-backbone__tiny-image__zero-shot.json"
    raw = json.loads(next(out.glob("tiny-plip*.json")).read_text())
    raw["backbone"] = "dropped-backbone"
    stale.write_text(json.dumps(raw))
    cleaned = run_bench("bench", out=out, registry=registry, progress=False)
    assert cleaned.removed == [stale.name] and not stale.exists()
    assert "dropped-backbone" not in (tmp / "results" / "LEADERBOARD.md").read_text()

    # --check: identical rerun passes; a tampered committed cell is reported
    assert run_bench("bench", check=out, registry=registry, progress=False).differences == []
    path = next(out.glob("tiny-plip*.json"))
    raw = json.loads(path.read_text())
    raw["scores"]["mAP"] += 0.05
    path.write_text(json.dumps(raw))
    diffs = run_bench("bench", check=out, registry=registry, progress=False).differences
    assert len(diffs) == 1 and "tiny-plip / tiny-image / zero-shot mAP" in diffs[0]


def test_compare_results_lists_missing_extra_and_out_of_tolerance(tiny_bench) -> None:
    registry, tmp = tiny_bench
    out = tmp / "r"
    run_bench("bench", out=out, registry=registry, progress=False)
    results = load_results(out)
    assert compare_results(results, results, {"default": 0.0}) == []
    moved = [r.model_copy(deep=True) for r in results]
    moved[0].scores["mAP"] += 0.005
    assert compare_results(results, moved, {"default": 0.01}) == []
    assert len(compare_results(results, moved, {"mAP": 0.001, "default": 0.01})) == 1
    problems = compare_results(results[:1], results[1:], {})
    assert any("missing from the rerun" in p for p in problems) and any("not in the committed" in p for p in problems)

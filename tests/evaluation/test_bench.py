from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest
import yaml
from runner_fixtures import write_tiny_tasks

from plipbench.bench import run_bench
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
        monkeypatch.setitem(protocol_registry.PROTOCOLS, key,
                            dataclasses.replace(protocol_registry.PROTOCOLS[key], target="test_runner:stub_protocol"))
    corpus = write_tiny_corpus(tmp_path / "corpus")
    tasks = write_tiny_tasks(tmp_path / "tasks", real_root=tmp_path / "absent")
    data = ["data.preset=null", f"data.root={corpus}", "data.layout=synth-pedes"]
    (tasks / "suites" / "bench.yaml").write_text(yaml.safe_dump({
        "name": "bench", "tasks": ["tiny-image", "real-text"],
        "backbones": [
            {"name": "tiny-plip", "pretrain": "mini", "overrides": TINY_PRETRAIN + data, "max_steps": 2},
            {"name": "tiny-floor", "pretrain": "mini", "overrides": TINY_PRETRAIN + data, "max_steps": 0},
        ],
        "seeds": 2,
    }))
    return TaskRegistry(tasks), tmp_path


def test_bench_pretrains_one_model_per_seed_evaluates_and_writes_the_leaderboard(tiny_bench) -> None:
    registry, tmp = tiny_bench
    out = tmp / "results" / "bench"
    report = run_bench("bench", out=out, registry=registry, progress=False)
    assert [(b["name"], b["seed"]) for b in report.backbones] == [
        ("tiny-plip", 0), ("tiny-plip", 1), ("tiny-floor", 0), ("tiny-floor", 1)]
    assert [b["pretraining_steps"] for b in report.backbones] == [2, 2, 0, 0]
    # seed s is its own model, with its own weights, from one recipe
    specs = [b["spec"] for b in report.backbones]
    assert len(set(specs)) == 4 and all("seed" in s for s in specs)
    assert len({b["pretraining_recipe"] for b in report.backbones[:2]}) == 1
    results = load_results(out)
    assert {(r.backbone, r.task, r.seed) for r in results} == {
        ("tiny-plip", "tiny-image", 0), ("tiny-plip", "tiny-image", 1),
        ("tiny-floor", "tiny-image", 0), ("tiny-floor", "tiny-image", 1)}
    assert all(r.details["suite"] == "bench" for r in results)
    assert {r.provenance.seeds["pretraining"] for r in results} == {0, 1}
    assert len({r.provenance.backbone["fingerprint"] for r in results if r.backbone == "tiny-floor"}) == 2
    board = (tmp / "results" / "LEADERBOARD-bench.md").read_text()
    assert "tiny-plip" in board and "tiny-floor" in board and "2 training seed(s)" in board
    # only the default suite writes results/LEADERBOARD.md; another suite never overwrites it
    assert not (tmp / "results" / "LEADERBOARD.md").exists()
    assert any("real-text" in s and "not found" in s for s in report.skipped)
    assert any("baseline x" in s for s in report.skipped)

    # a second run reuses the cached pre-training and the results
    again = run_bench("bench", out=out, registry=registry, progress=False)
    assert [b["pretraining_seconds"] for b in again.backbones] == [b["pretraining_seconds"] for b in report.backbones]

    # --seeds overrides the suite; the third seed is new work, the first two are reused
    more = run_bench("bench", out=out, registry=registry, progress=False, seeds=3)
    assert [b["seed"] for b in more.backbones] == [0, 1, 2, 0, 1, 2]
    assert len(load_results(out)) == 6


def test_bench_removes_only_its_own_superseded_results_after_success(tiny_bench) -> None:
    registry, tmp = tiny_bench
    out = tmp / "results" / "bench"
    run_bench("bench", out=out, registry=registry, progress=False)
    template = json.loads(next(out.glob("tiny-plip*.json")).read_text())
    # a result an earlier run of this suite produced (a dropped backbone) is removed ...
    stale = out / "dropped-backbone__tiny-image__zero-shot__seed0.json"
    stale.write_text(json.dumps(template | {"backbone": "dropped-backbone"}))
    # ... but a user's own eval result in the same folder and an unrelated JSON file are kept
    own = out / "mine__tiny-image__zero-shot.json"
    own.write_text(json.dumps(template | {"backbone": "mine", "seed": None,
                                          "details": {k: v for k, v in template["details"].items() if k != "suite"}}))
    notes = out / "notes.json"
    notes.write_text('{"hello": 1}')
    cleaned = run_bench("bench", out=out, registry=registry, progress=False)
    assert cleaned.removed == [stale.name] and not stale.exists()
    assert own.exists() and notes.exists()
    board = (tmp / "results" / "LEADERBOARD-bench.md").read_text()
    assert "dropped-backbone" not in board and "mine" not in board


def test_bench_keeps_everything_when_the_run_fails(tiny_bench, monkeypatch) -> None:
    registry, tmp = tiny_bench
    out = tmp / "results" / "bench"
    run_bench("bench", out=out, registry=registry, progress=False)
    stale = out / "dropped-backbone__tiny-image__zero-shot__seed0.json"
    stale.write_text(json.dumps(json.loads(next(out.glob("tiny-plip*.json")).read_text())
                                | {"backbone": "dropped-backbone"}))

    def broken(*args, **kwargs):
        raise RuntimeError("leaderboard failed")

    monkeypatch.setattr("plipbench.leaderboard.build_leaderboard", broken)
    with pytest.raises(RuntimeError):
        run_bench("bench", out=out, registry=registry, progress=False)
    assert stale.exists()


def test_bench_check_passes_an_identical_rerun_and_fails_a_tampered_cell(tiny_bench) -> None:
    registry, tmp = tiny_bench
    out = tmp / "r"
    run_bench("bench", out=out, registry=registry, progress=False)
    report = run_bench("bench", check=out, registry=registry, progress=False)
    assert report.differences == [] and report.reproduction.ok
    kinds = {(c.backbone, c.kind) for c in report.reproduction.cells}
    assert kinds == {("tiny-plip", "trained"), ("tiny-floor", "exact")}
    # one seed moved by 5 points is within the spread it creates itself: not a failure
    paths = sorted(out.glob("tiny-plip*.json"))
    originals = {p: p.read_text() for p in paths}
    raw = json.loads(paths[0].read_text())
    raw["scores"]["mAP"] += 0.05
    paths[0].write_text(json.dumps(raw))
    assert run_bench("bench", check=out, registry=registry, progress=False).differences == []
    # the whole trained cell moved by 5 points (10 sigma floors) fails
    for path in paths[1:]:
        raw = json.loads(path.read_text())
        raw["scores"]["mAP"] += 0.05
        path.write_text(json.dumps(raw))
    diffs = run_bench("bench", check=out, registry=registry, progress=False).differences
    assert len(diffs) == 1 and "tiny-plip / tiny-image / zero-shot mAP" in diffs[0] and "Holm" in diffs[0]
    for path, text in originals.items():
        path.write_text(text)
    # the untrained floor's zero-shot cell is deterministic: any change fails, on any metric
    floor = next(out.glob("tiny-floor*seed1.json"))
    raw = json.loads(floor.read_text())
    raw["scores"]["dim"] += 1e-6
    floor.write_text(json.dumps(raw))
    diffs = run_bench("bench", check=out, registry=registry, progress=False).differences
    assert len(diffs) == 1 and "deterministic cell changed" in diffs[0]


def test_bench_refuses_bad_seed_counts(tiny_bench) -> None:
    from plipbench.errors import ConfigError

    registry, tmp = tiny_bench
    for bad in (0, -1):
        with pytest.raises(ConfigError, match="--seeds"):
            run_bench("bench", out=tmp / "r", registry=registry, progress=False, seeds=bad)


def test_each_suite_writes_its_own_leaderboard_page() -> None:
    from pathlib import Path

    from plipbench.bench import _leaderboard_page, leaderboard_path

    assert leaderboard_path(Path("results/mini"), "mini") == Path("results/LEADERBOARD.md")
    assert leaderboard_path(Path("results/ablations"), "ablations") == Path("results/LEADERBOARD-ablations.md")
    assert "reproduced by CI" in _leaderboard_page("mini", "|t|", [0, 1, 2])
    assert "reproduced by CI" not in _leaderboard_page("ablations", "|t|", [0, 1, 2])

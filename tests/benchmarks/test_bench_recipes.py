"""benchmarks/recipes.py: the recipe-throughput benchmark runs the recipes' fine-tunes for a few steps and
writes positive figures; the step clock excludes the warm-up; bad input is one line, exit 2."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "recipes.py"


def _module() -> Any:
    if "bench_recipes" not in sys.modules:  # registered first: its dataclasses look their module up
        spec = importlib.util.spec_from_file_location("bench_recipes", SCRIPT)
        sys.modules["bench_recipes"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules["bench_recipes"])
    return sys.modules["bench_recipes"]


def test_step_clock_excludes_the_warmup_and_reads_the_peak() -> None:
    import torch

    bench = _module()
    weight = torch.nn.Parameter(torch.ones(3))
    optimizer = torch.optim.SGD([weight], lr=0.1)
    with bench.StepClock("cpu", warmup=2, steps=3) as clock:
        for i in range(5):
            if i == 2:
                time.sleep(0.05)  # inside the first timed step
            weight.sum().backward()
            optimizer.step()
    weight.sum().backward()
    optimizer.step()  # after the block: the hook is gone
    assert len(clock.stamps) == 5
    assert clock.timed_seconds() == pytest.approx(clock.stamps[4] - clock.stamps[1])
    assert clock.timed_seconds() >= 0.05
    assert clock.peak["rss_kib"] > 0


def test_batch_sizes_follow_the_sampler() -> None:
    bench = _module()
    random = {"recipe": {"recipe": {"sampler": {"kind": "random", "batch_size": 4, "drop_last": False}}},
              "num_train_samples": 10, "num_train_images": 5}
    assert bench._batch_sizes(random, 1, 5) == [4, 2, 4, 4, 2]
    random["recipe"]["recipe"]["sampler"]["drop_last"] = True
    assert bench._batch_sizes(random, 1, 3) == [4, 4, 4]
    identity = {"recipe": {"recipe": {"sampler": {"kind": "identity", "batch_size": 64, "instances": 4}}},
                "effective_identities_per_batch": 3, "num_train_images": 30}
    assert bench._batch_sizes(identity, 0, 2) == [12, 12]


@pytest.mark.slow
def test_recipes_benchmark_writes_positive_figures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLIPBENCH_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "recipes.json"
    report = _module().main([
        "--recipes", "bot,plip-cmpmc,rethinking", "--steps", "2", "--warmup-steps", "1", "--batch-size", "4",
        "--identities", "8", "--threads", "1", "--backbone", "bot=random:timm/resnet18",
        "--backbone", "plip-cmpmc=random:plip-mini", "--backbone", "rethinking=random:timm/resnet18",
        "--json", str(out),
    ])  # fmt: skip
    stored = json.loads(out.read_text())
    assert stored == json.loads(json.dumps(report))
    assert stored["hardware"]["cpu_model"] and stored["hardware"]["torch"]
    assert stored["skipped"] == {}  # every shipped recipe has a benchmark
    results = {r["recipe"]: r for r in stored["results"]}
    assert set(results) == {"bot", "plip-cmpmc", "rethinking"}
    for name, r in results.items():
        assert r["input_size"] == ([256, 192] if name == "rethinking" else [256, 128])
        assert r["trained_input"] == "recipe"
        assert r["batch_size"] == 4 and r["batch_size_overridden"] and r["timed_steps"] == 2
        assert r["timed_samples"] == 8 and r["twin_train_samples"] > 0
        for key in ("timed_seconds", "step_ms", "train_samples_per_s", "eval_images_per_s", "eval_images"):
            assert r[key] > 0, (name, key)
        assert r["memory"]["peak_rss_delta_mib"] > 0
        proj = r["projection"]
        assert proj["train_hours"] > 0 and proj["total_hours"] >= proj["train_hours"]
        assert proj["train_hours"] == pytest.approx(
            proj["epochs"] * proj["train_samples_per_epoch"] / r["train_samples_per_s"] / 3600, rel=1e-2)
    assert results["bot"]["projection"]["train_samples_per_epoch"] == 12936
    assert results["bot"]["projection"]["epochs"] == 120
    assert results["plip-cmpmc"]["projection"]["train_samples_per_epoch"] == 68126  # captions: each
    assert results["plip-cmpmc"]["projection"]["epochs"] == 30
    assert results["rethinking"]["projection"]["train_samples_per_epoch"] == 80000  # PA-100K's train split
    assert results["rethinking"]["projection"]["epochs"] == 30


@pytest.mark.parametrize("args, message", [
    (["--recipes", "bot,nope"], "unknown recipe(s) nope; known: bot"),
    (["--backbone", "bot"], "--backbone wants RECIPE=SPEC"),
    (["--steps", "0"], "--steps and --warmup-steps must be >= 1"),
    (["--device", "tpu"], "--device must be cpu or cuda"),
    (["--recipes", "bot", "--backbone", "bot=random:nope/x"], "benchmark bot failed (exit 2): error: random: unknown"),
])
def test_bad_input_is_one_line_exit_2(args: list[str], message: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(SCRIPT), *args], env=env, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and message in done.stderr

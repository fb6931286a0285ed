from __future__ import annotations

import os
import subprocess
import sys

import pytest
from runner_fixtures import write_tiny_tasks

from plipbench.evaluation.results import load_results


def _eval(args: list[str], env: dict[str, str], launcher: list[str]) -> None:
    cmd = [sys.executable, *launcher, "-m", "plipbench.cli", "eval", "--model", "random:plip-mini",
           "--task", "tiny-image,tiny-text", "--protocol", "zero-shot", "--no-progress", *args]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.distributed
def test_two_gloo_ranks_give_the_numbers_of_one_process(tmp_path) -> None:
    tasks = write_tiny_tasks(tmp_path / "tasks", real_root=tmp_path / "absent")
    env = os.environ | {"PLIPBENCH_TASKS": str(tasks), "PLIPBENCH_CACHE": str(tmp_path / "cache"),
                        "OMP_NUM_THREADS": "1"}
    _eval(["--out", str(tmp_path / "one")], env, [])
    # a fresh feature cache, so the two ranks really extract (exact shards) instead of reading rank 0's cache
    env2 = env | {"PLIPBENCH_CACHE": str(tmp_path / "cache2")}
    _eval(["--out", str(tmp_path / "two")], env2,
          ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"])
    one, two = load_results(tmp_path / "one"), load_results(tmp_path / "two")
    assert [(r.task, r.protocol) for r in one] == [(r.task, r.protocol) for r in two] and len(one) == 2
    for a, b in zip(one, two, strict=True):
        assert b.provenance.hardware["world_size"] == 2
        assert a.scores.keys() == b.scores.keys()
        for key in a.scores:
            assert b.scores[key] == pytest.approx(a.scores[key], abs=1e-6), (a.task, key)


def test_rank_device_gives_each_rank_its_gpu(monkeypatch) -> None:
    from plipbench.distributed import rank_device

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert rank_device("cuda") == "cuda" and rank_device("cpu") == "cpu"
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    assert rank_device("cuda") == "cuda:1"
    assert rank_device("cuda:0") == "cuda:0" and rank_device("cpu") == "cpu"  # an explicit choice is kept

"""Resumable fine-tunes: a SIGKILLed ``plipbench eval`` continues with ``--resume`` to the uninterrupted result,
a resume under another spec is refused naming the keys, and the checkpoint helpers in isolation."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from protocol_fixtures import (
    ATTRIBUTE_TASK,
    IMAGE_TASK,
    TEXT_TASK,
    image_only_backbone,
    make_context,
    plip_mini,
    real_store,
    synthetic_dataset,
    task_data,
)
from resume_fixtures import DiesAfter, Killed, write_attribute_task

from plipbench.errors import ConfigError
from plipbench.evaluation.protocols import get_protocol
from plipbench.evaluation.results import decode_array, load_results
from plipbench.evaluation.resume import FineTuneCheckpoint, differing_keys

FIXTURE = Path(__file__).with_name("resume_fixtures.py")


def _eval(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "plipbench.cli", "eval", "--model", f"{FIXTURE}:tiny_cnn", "--task", "tiny-attr",
            "--protocol", "fine-tune", "--no-progress", "--out", str(out), *extra]


def _run(cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


def _stored_epoch(cache: Path) -> int | None:
    states = list((cache / "checkpoints").glob("*/state.json"))
    return json.loads(states[0].read_text())["epoch"] if states else None


@pytest.mark.slow
def test_sigkilled_fine_tune_resumes_to_the_uninterrupted_result(tmp_path) -> None:
    cache = tmp_path / "cache"
    env = os.environ | {"PLIPBENCH_TASKS": str(write_attribute_task(tmp_path / "tasks", epochs=4)),
                        "PLIPBENCH_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    full = _run(_eval(tmp_path / "full"), env)
    assert full.returncode == 0, full.stderr[-3000:]
    assert not list((cache / "checkpoints").glob("*/*")), "the checkpoint is removed once the result is written"

    # slowed down so that the kill lands between the checkpoints of epochs 2 and 4
    killed = subprocess.Popen(_eval(tmp_path / "killed"), env=env | {"PLIPBENCH_TEST_TRAIN_DELAY": "0.25"},
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while (_stored_epoch(cache) or 0) < 1:  # 0-based: epoch 2's checkpoint
        assert killed.poll() is None, f"finished before the kill: {killed.stderr.read()[-2000:]}"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=60)
    assert killed.returncode == -signal.SIGKILL
    stopped_after = _stored_epoch(cache)
    assert stopped_after is not None and stopped_after < 3, "killed before the last epoch"
    assert not list((tmp_path / "killed").glob("*.json")), "no result from the killed run"

    refused = _run(_eval(tmp_path / "killed", "--resume", "--option", "lr=0.01"), env)
    assert refused.returncode == 2
    line = refused.stderr.strip()
    assert "\n" not in line and "cannot resume" in line and "options.lr" in line, line
    assert _stored_epoch(cache) == stopped_after, "a refused resume leaves the checkpoint alone"

    resumed = _run(_eval(tmp_path / "killed", "--resume"), env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    (a,), (b,) = load_results(tmp_path / "full"), load_results(tmp_path / "killed")
    assert a.scores == b.scores
    assert a.per_query.keys() == b.per_query.keys()
    for key in a.per_query:
        assert np.array_equal(decode_array(a.per_query[key]), decode_array(b.per_query[key])), key
    for key in ("curve", "selected_epoch", "val_mA", "train_loss", "steps"):
        assert a.details[key] == b.details[key], key
    assert b.details["resumed_after_epoch"] == stopped_after + 1 and "resumed_after_epoch" not in a.details
    assert [p["epoch"] for p in b.details["curve"]] == [1, 2, 3, 4]
    assert {"loss", "lr", "val"} <= set(b.details["curve"][0])
    assert not list((cache / "checkpoints").glob("*/*"))


# -- in process: every fine-tune protocol resumes exactly -----------------------------------------------------


def _contexts(tmp_path, kind: str):
    if kind == "text-reid":  # a bare classifier matrix outside the modules, and dropout in the text encoder
        backbone = plip_mini()
        data = task_data(synthetic_dataset(tmp_path / "data", "synth-cuhk", "cuhk-pedes", 16, 3))
        return lambda: make_context(TEXT_TASK, "fine-tune", data, backbone, real_store(backbone), {"epochs": 3})
    backbone = image_only_backbone()
    if kind == "image-reid":
        data = task_data(synthetic_dataset(tmp_path / "data", "synth-market", "market1501", 12, 4), val=False)
        return lambda: make_context(IMAGE_TASK, "fine-tune", data, backbone, real_store(backbone), {"epochs": 3})
    data = task_data(synthetic_dataset(tmp_path / "data", "synth-pa100k", "pa100k", 12, 4))
    return lambda: make_context(ATTRIBUTE_TASK, "fine-tune", data, backbone, real_store(backbone),
                                {"epochs": 3, "batch_size": 8})


@pytest.mark.parametrize("kind", ["image-reid", "attributes", "text-reid"])
def test_resumed_fine_tune_equals_the_uninterrupted_one(tmp_path, kind) -> None:
    torch.set_num_threads(1)
    context = _contexts(tmp_path, kind)
    spec = {"kind": kind}
    full = get_protocol(kind, "fine-tune")(context())
    ctx = context()
    ctx.checkpoint = DiesAfter(tmp_path / "ckpt", spec, resume=False, after=0)
    with pytest.raises(Killed):
        get_protocol(kind, "fine-tune")(ctx)
    # numbers drawn in between must not matter: the checkpoint restores the RNG streams
    torch.rand(7), np.random.rand(3)
    ctx = context()
    ctx.checkpoint = FineTuneCheckpoint(tmp_path / "ckpt", spec, resume=True)
    resumed = get_protocol(kind, "fine-tune")(ctx)
    assert ctx.checkpoint.resumed_after == 1
    assert resumed.scores == full.scores
    for key in full.per_query:
        assert np.array_equal(np.asarray(full.per_query[key]), np.asarray(resumed.per_query[key])), key
    assert resumed.details["curve"] == full.details["curve"] and len(full.details["curve"]) == 3


def test_without_resume_a_stale_checkpoint_is_ignored_and_replaced(tmp_path) -> None:
    context = _contexts(tmp_path, "attributes")
    full = get_protocol("attributes", "fine-tune")(context())
    ctx = context()
    ctx.checkpoint = DiesAfter(tmp_path / "ckpt", {"a": 1}, resume=False, after=1)
    with pytest.raises(Killed):
        get_protocol("attributes", "fine-tune")(ctx)
    ctx = context()
    ctx.checkpoint = FineTuneCheckpoint(tmp_path / "ckpt", {"a": 2}, resume=False)  # another spec: no refusal
    again = get_protocol("attributes", "fine-tune")(ctx)
    assert again.scores == full.scores
    assert json.loads((tmp_path / "ckpt" / "state.json").read_text())["spec"] == {"a": 2}


def test_resume_under_another_spec_names_the_differing_keys(tmp_path) -> None:
    stored = {"backbone": "x", "options": {"epochs": 3, "lr": 0.1}, "seed": 0}
    FineTuneCheckpoint(tmp_path, stored, resume=False).save(0, {}, {"w": torch.zeros(2)})
    other = {"backbone": "y", "options": {"epochs": 3, "lr": 0.2, "recipe": "bot"}, "seed": 0}
    with pytest.raises(ConfigError, match=r"differs: backbone, options\.lr, options\.recipe\)"):
        FineTuneCheckpoint(tmp_path, other, resume=True).begin()
    state, tensors = FineTuneCheckpoint(tmp_path, stored, resume=True).begin()
    assert state["epoch"] == 0 and torch.equal(tensors["w"], torch.zeros(2))
    assert FineTuneCheckpoint(tmp_path / "absent", stored, resume=True).begin() is None


def test_differing_keys_are_dotted_and_sorted() -> None:
    assert differing_keys({"a": 1, "b": {"c": 2, "d": 3}}, {"a": 1, "b": {"c": 2, "d": 4}, "e": 0}) == ["b.d", "e"]
    assert differing_keys({"a": [1, 2]}, {"a": [1, 2]}) == []

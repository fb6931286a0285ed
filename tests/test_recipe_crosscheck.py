"""benchmarks/recipe_crosscheck.py: bot in plipbench vs torchreid's ImageTripletEngine on the synthetic Market twin."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "recipe_crosscheck.py"


def _module():
    spec = importlib.util.spec_from_file_location("recipe_crosscheck", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_scaled_schedule_follows_bot() -> None:
    cc = _module()
    assert cc.scaled_schedule(120) == {"epochs": 120, "warmup_epochs": 10, "milestones": [40, 70]}
    assert cc.scaled_schedule(24) == {"epochs": 24, "warmup_epochs": 2, "milestones": [8, 14]}
    assert cc.scaled_schedule(1) == {"epochs": 1, "warmup_epochs": 0, "milestones": []}


@pytest.mark.parametrize("epochs", [120, 24])
def test_torchreid_schedule_equals_the_recipe_schedule(epochs: int) -> None:
    """torch LinearLR chained with torchreid's multi_step gives BoT's per-epoch lr, epoch by epoch."""
    import torch

    from plipbench.recipes import resolve_recipe
    from plipbench.recipes.schedules import lr_factor

    cc = _module()
    schedule = cc.scaled_schedule(epochs)
    recipe = resolve_recipe("bot", "timm:resnet18", {"epochs": epochs, "warmup_epochs": schedule["warmup_epochs"],
                                                       "schedule.milestones": schedule["milestones"]}).recipe
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=3.5e-4)
    scheduler = cc.warmup_multistep(optimizer, schedule["warmup_epochs"], schedule["milestones"], 0.1)
    for epoch in range(epochs):
        assert math.isclose(optimizer.param_groups[0]["lr"], 3.5e-4 * lr_factor(recipe, epoch), rel_tol=1e-9), epoch
        optimizer.step()
        scheduler.step()


def test_intervals_and_welch_difference() -> None:
    from scipy import stats

    cc = _module()
    ci = cc.t_interval([0.1, 0.2, 0.3])
    half = stats.t.ppf(0.975, 2) * 0.1 / math.sqrt(3)
    assert math.isclose(ci["mean"], 0.2) and math.isclose(ci["high"] - ci["mean"], half)
    a, b = [0.50, 0.52, 0.55], [0.40, 0.41, 0.45]
    w = cc.welch_difference(a, b)
    p = stats.ttest_ind(a, b, equal_var=False).pvalue
    assert math.isclose(w["difference"], sum(a) / 3 - sum(b) / 3)
    assert w["contains_zero"] is bool(p >= 0.05) and w["contains_zero"] is False
    assert cc.welch_difference(a, [0.49, 0.53, 0.56])["contains_zero"] is True
    assert cc.welch_difference([0.5], [0.4])["low"] is None


def test_crosscheck_runs_both_engines(tmp_path: Path) -> None:
    """A tiny budget (1 seed, 1 epoch, 48 identities x 4 images) through both engines, generated data (about
    15 s on one thread, so not marked slow)."""
    out = tmp_path / "crosscheck.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
           "PLIPBENCH_CACHE": str(tmp_path / "cache")}  # fmt: skip
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--seeds", "1", "--epochs", "1", "--identities", "48", "--images-per-id", "4",
         "--json", str(out)],
        env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    for engine in ("plipbench", "torchreid"):
        (run,) = result["runs"][engine]
        assert 0 <= run["mAP"] <= 1 and 0 <= run["R@1"] <= 1
        assert run["steps"] >= 1
    assert result["runs"]["plipbench"][0]["epoch_lr"] == result["runs"]["torchreid"][0]["epoch_lr"] == [3.5e-4]
    assert result["summary"]["mAP"]["welch_difference"]["contains_zero"] is None  # one seed: no interval
    assert "plipbench" in done.stdout and "torchreid" in done.stdout


def test_bad_input_is_one_line_exit_2(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for argv in (["--data", str(tmp_path)], ["--seeds", "0"]):
        done = subprocess.run([sys.executable, str(SCRIPT), *argv], env=env, capture_output=True, text=True)
        assert done.returncode == 2 and "error:" in done.stderr.strip().splitlines()[-1]

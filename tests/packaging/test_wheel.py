"""The wheel ships the task registry and the baselines (plipbench/_data) and the recipes, and finds them without a
checkout."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD_INPUTS = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "plipbench", "tasks", "baselines")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Build from a copy: an in-tree build would write build/ and *.egg-info into the checkout.
    src = tmp_path_factory.mktemp("src")
    for name in BUILD_INPUTS:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(REPO / name, src / name)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(src)],
        check=True,
    )
    (path,) = out.glob("plipbench-*.whl")
    return path


@pytest.mark.slow
def test_wheel_contains_every_task_and_baseline(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder in ("tasks", "baselines"):
        expected = {f"plipbench/_data/{p.relative_to(REPO).as_posix()}" for p in (REPO / folder).rglob("*.yaml")}
        assert expected and expected <= names, sorted(expected - names)
    assert "plipbench/configs/pretrain/mini.yaml" in names and "plipbench/models/fetch.py" in names
    recipes = {f"plipbench/recipes/data/{p.name}" for p in (REPO / "plipbench/recipes/data").glob("*.yaml")}
    assert recipes and recipes <= names, sorted(recipes - names)


@pytest.mark.slow
def test_unpacked_wheel_lists_everything_outside_the_checkout(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = (
        "from plipbench.evaluation.tasks import tasks_dir; from plipbench.models.baselines import baseline_names; "
        "print(tasks_dir()); print(len(list(tasks_dir().rglob('*.yaml')))); print(len(baseline_names()))"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(site), "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, env=env, check=True, capture_output=True,
                         text=True).stdout.split()  # fmt: skip
    assert Path(out[0]) == site / "plipbench" / "_data" / "tasks"
    assert int(out[1]) == len(list((REPO / "tasks").rglob("*.yaml")))
    assert int(out[2]) == len(list((REPO / "baselines").glob("*.yaml")))

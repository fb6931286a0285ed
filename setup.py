"""Build hook: ship the top-level ``tasks/`` and ``baselines/`` folders inside the wheel.

The checkout folders stay the editable sources; a (non-editable) build copies them to
``plipbench/_data/tasks`` and ``plipbench/_data/baselines``, where ``tasks_dir()`` and the
baseline lookup find them when no checkout is around. Everything else is in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

DATA_FOLDERS = ("tasks", "baselines")


class BuildPyWithData(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the checkout folders themselves
        root = Path(__file__).resolve().parent
        for folder in DATA_FOLDERS:
            source = root / folder
            if not source.is_dir():
                raise SystemExit(f"cannot build plipbench: {source} is missing")
            target = Path(self.build_lib) / "plipbench" / "_data" / folder
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildPyWithData})

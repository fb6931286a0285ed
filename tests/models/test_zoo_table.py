"""benchmarks/zoo_table.py: one row per baseline, with the loader's largest difference from its reference."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_zoo_table_measures_and_lists(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "zoo_table.py"), "--only", "osnet-x1_0", "path-vit-b", "unihcp-vit-b"],
        env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[1:-1]]
            for line in done.stdout.splitlines() if line.startswith("| ") and "---" not in line}  # fmt: skip
    assert set(rows) == {"model", "osnet-x1_0", "path-vit-b", "unihcp-vit-b"}
    assert float(rows["osnet-x1_0"][4]) < 1e-5 and rows["osnet-x1_0"][1] == "2.2M"
    assert rows["path-vit-b"][3:5] == ["no", "no loader"] and rows["unihcp-vit-b"][3] == "gated"

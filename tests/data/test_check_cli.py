"""``plipbench data check``: table and problems, exit codes 0 / 2, one-line errors without traceback."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

from fixtures_readers import make_market, make_msmt17
from typer.testing import CliRunner

from plipbench.cli import app
from plipbench.data.check import MANIFEST_NAME
from plipbench.data.readers import READERS, read_dataset

PLIPBENCH = Path(sys.executable).parent / "plipbench"


def _synthetic_market(root: Path) -> None:
    make_market(root)
    manifest = {"generator": "plipbench", "layout": "market1501", "splits": read_dataset("market1501", root).summary(),
                "files": 9}
    (root / MANIFEST_NAME).write_text(json.dumps(manifest))


def test_valid_copy_exits_0_with_table(tmp_path):
    _synthetic_market(tmp_path)
    result = CliRunner().invoke(app, ["data", "check", "--layout", "market1501", "--root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for word in ("split", "identities", "cameras", "gallery", "valid", "synthetic"):
        assert word in result.output


def test_invalid_copy_exits_2_and_lists_every_problem(tmp_path):
    make_market(tmp_path)
    result = CliRunner().invoke(app, ["data", "check", "--layout", "market1501", "--root", str(tmp_path), "--quick"])
    assert result.exit_code == 2
    assert result.output.count("problem:") == 6
    assert "official 12936" in result.output


def test_options_are_passed_to_the_reader(tmp_path, monkeypatch):
    make_msmt17(tmp_path)
    ds = read_dataset("msmt17", tmp_path, msmt17_train_with_val=True)
    sizes = {s: {k: v for k, v in c.items() if k != "cameras"} for s, c in ds.summary().items()}
    monkeypatch.setitem(READERS, "msmt17", dataclasses.replace(READERS["msmt17"], split_sizes=sizes, sizes_for=None))
    args = ["data", "check", "-l", "msmt17", "-r", str(tmp_path)]
    assert CliRunner().invoke(app, args).exit_code == 2  # val kept apart: train count differs
    result = CliRunner().invoke(app, [*args, "--option", "msmt17_train_with_val=true"])
    assert result.exit_code == 0, result.output
    assert "msmt17_train_with_val=True" in result.output


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(PLIPBENCH), "data", "check", *args], capture_output=True, text=True, timeout=120)


def test_console_script_errors_are_one_line_exit_2(tmp_path):
    for args, needle in [
        (["--layout", "market1501", "--root", str(tmp_path / "absent")], "does not exist"),
        (["--layout", "market", "--root", str(tmp_path)], "known layouts: market1501"),
        (["--layout", "msmt17", "--root", str(tmp_path), "--option", "bogus=1"], "does not accept option(s) bogus"),
    ]:
        proc = _run(*args)
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr + proc.stdout
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], proc.stderr


def test_console_script_invalid_copy_exit_2(tmp_path):
    make_market(tmp_path)
    (tmp_path / "query" / "0001_c1s1_001051_00.jpg").write_bytes(b"broken")
    proc = _run("--layout", "market1501", "--root", str(tmp_path))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "decoded images unreadable" in proc.stdout

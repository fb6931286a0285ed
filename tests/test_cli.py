"""The CLI shell: start-up stays light, errors are one line with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys

from typer.testing import CliRunner

from plipbench import __version__
from plipbench.cli import app, main
from plipbench.errors import DataError

HEAVY = ("torch", "torchvision", "transformers", "timm", "torchreid", "sklearn", "scipy", "pandas", "matplotlib")


def test_cli_import_loads_no_heavy_library() -> None:
    code = (
        "import sys, plipbench.cli as c; "
        "c.main(['--help']) if False else None; "
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_help_of_every_command_group_loads_no_heavy_library() -> None:
    code = (
        "import sys\n"
        "from plipbench.cli import main\n"
        "for argv in (['--help'], ['data', '--help'], ['data', 'synth', '--help'], ['data', 'check', '--help'],"
        " ['doctor', '--help']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        f"print('HEAVY', [m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "HEAVY []", out.stdout[-500:]


def test_version_flag() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.stdout


def test_plipbench_error_is_one_line_exit_2(monkeypatch, capsys) -> None:
    import typer

    def broken(json_out: bool = False) -> None:
        raise DataError("/data/reid_raw.json", "malformed JSON at line 3")

    from plipbench import cli

    extra = typer.Typer()
    extra.command("boom")(broken)
    extra.command("other")(lambda: None)  # two commands, so "boom" stays a sub-command
    monkeypatch.setattr(cli, "app", extra)
    code = main(["boom"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip() == "error: /data/reid_raw.json: malformed JSON at line 3"
    assert "Traceback" not in err


def test_doctor_json_reports_packages_and_hardware(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PLIPBENCH_DATA", str(tmp_path))
    result = CliRunner().invoke(app, ["doctor", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["packages"]["torch"]
    assert report["hardware"]["cpu_count"] >= 1
    assert report["data_root"] == str(tmp_path)
    assert all(row["status"].startswith("not found") for row in report["datasets"])


def _app_with(monkeypatch, command):
    import typer

    from plipbench import cli

    extra = typer.Typer()
    extra.command("boom")(command)
    extra.command("other")(lambda: None)
    monkeypatch.setattr(cli, "app", extra)


def test_ctrl_c_prints_interrupted_and_exits_130(monkeypatch, capsys) -> None:
    def interrupted() -> None:
        raise KeyboardInterrupt

    _app_with(monkeypatch, interrupted)
    assert main(["boom"]) == 130
    assert capsys.readouterr().err.strip() == "interrupted"


def test_full_disk_oserror_is_one_line_exit_2(monkeypatch, capsys) -> None:
    import errno

    def full() -> None:
        raise OSError(errno.ENOSPC, "No space left on device", "/results/r.json")

    _app_with(monkeypatch, full)
    assert main(["boom"]) == 2
    assert capsys.readouterr().err.strip() == "error: /results/r.json: no space left on device (disk full)"


def test_read_only_oserror_is_one_line_exit_2(monkeypatch, capsys) -> None:
    import errno

    def read_only() -> None:
        raise OSError(errno.EROFS, "Read-only file system", "/cache/features")

    _app_with(monkeypatch, read_only)
    assert main(["boom"]) == 2
    assert capsys.readouterr().err.strip() == "error: /cache/features: read-only file system"


def test_multi_line_error_message_is_printed_on_one_line(monkeypatch, capsys) -> None:
    from plipbench.errors import ConfigError

    def multi() -> None:
        raise ConfigError("tasks/x.yaml: not valid YAML (while parsing\n  in line 2\n    ^)")

    _app_with(monkeypatch, multi)
    assert main(["boom"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.strip() == "error: tasks/x.yaml: not valid YAML (while parsing in line 2 ^)"

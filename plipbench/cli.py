"""The ``plipbench`` command line: a thin Typer layer over the Python API.

Each command group lives in ``plipbench/commands/<group>.py`` and is registered below. Command
modules import only typer/rich at module level; torch and friends are imported inside the
command bodies, so ``plipbench --help`` stays instant.

Every user-facing error (:class:`plipbench.errors.PlipbenchError`, and an OSError that says the disk is
full, read-only or not ours to write) is printed as one line on stderr with exit code 2 and no
traceback; Ctrl-C prints "interrupted" and exits 130.
"""

from __future__ import annotations

import sys

import typer

from plipbench import __version__
from plipbench.commands import bench as bench_commands
from plipbench.commands import data as data_commands
from plipbench.commands import doctor as doctor_commands
from plipbench.commands import eval as eval_commands
from plipbench.commands import leaderboard as leaderboard_commands
from plipbench.commands import models as models_commands
from plipbench.commands import pretrain as pretrain_commands
from plipbench.commands import recipes as recipes_commands
from plipbench.commands import tasks as tasks_commands
from plipbench.errors import ONE_LINE_ERRNOS, PlipbenchError, one_line, os_error_line

INTERRUPTED = 130  # the shell's exit status for SIGINT

app = typer.Typer(
    name="plipbench",
    help="Benchmark and evaluation harness for person-centric vision and vision-language models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
app.add_typer(data_commands.app, name="data")
app.add_typer(models_commands.app, name="models")
app.command("doctor")(doctor_commands.doctor)
app.command("pretrain")(pretrain_commands.pretrain)
app.command("leaderboard")(leaderboard_commands.leaderboard)
app.command("eval")(eval_commands.eval_command)
app.command("bench")(bench_commands.bench)
app.add_typer(tasks_commands.app, name="tasks")
app.add_typer(recipes_commands.app, name="recipes")


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"plipbench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version."
    ),
) -> None:
    """plipbench: pre-train, load and evaluate person-centric backbones."""


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point; returns the exit code."""
    try:
        app(args=argv, prog_name="plipbench", standalone_mode=True)
    except PlipbenchError as err:
        print(f"error: {one_line(str(err), limit=2000)}", file=sys.stderr)
        return 2
    except OSError as err:
        # a full disk, a read-only folder, a permission problem: about the machine, not a plipbench bug
        if err.errno not in ONE_LINE_ERRNOS:
            raise
        print(f"error: {os_error_line(err)}", file=sys.stderr)
        return 2
    except SystemExit as exit_:
        code = exit_.code
        code = code if isinstance(code, int) else (0 if code is None else 1)
        if code == INTERRUPTED:  # Typer turns Ctrl-C into a silent Exit(130)
            print("interrupted", file=sys.stderr)
        return code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return INTERRUPTED
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


def run() -> None:  # pragma: no cover - thin wrapper for the console script
    sys.exit(main())

"""Tables never cut the names users must type, in a pipe or an 80-column terminal (D21)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from plipbench.cli import app


@pytest.fixture(params=["pipe", "terminal-80"])
def console_width(request, monkeypatch):
    if request.param == "terminal-80":
        from rich.console import Console

        import plipbench.leaderboard.render_terminal as render_terminal

        monkeypatch.setattr(render_terminal, "table_console", lambda: Console(width=80))
    return request.param


def test_tasks_list_shows_every_task_name_whole(console_width) -> None:
    from plipbench.evaluation.tasks import TaskRegistry

    result = CliRunner().invoke(app, ["tasks", "list"])
    assert result.exit_code == 0, result.output
    assert "…" not in result.output
    cells = {cell.strip() for line in result.output.splitlines() for cell in line.split("│")}
    missing = [name for name in TaskRegistry().tasks if name not in cells]
    assert not missing


def test_models_list_shows_every_baseline_name_whole(console_width) -> None:
    from plipbench.models.baselines import baseline_names

    result = CliRunner().invoke(app, ["models", "list"])
    assert result.exit_code == 0, result.output
    cells = {cell.strip() for line in result.output.splitlines() for cell in line.split("│")}
    assert not [name for name in baseline_names() if name not in cells]


def test_leaderboard_terminal_table_keeps_backbone_names_whole() -> None:
    from rich.console import Console

    from plipbench.leaderboard.aggregate import TableView
    from plipbench.leaderboard.render_terminal import view_to_rich

    headers = ["backbone"] + [f"synth-task-{i} R@1" for i in range(8)]
    rows = [["random-init PLIP-mini (IVLC + TIC)"] + ["12.3"] * 8, ["PLIP-mini"] + ["45.6"] * 8]
    view = TableView("board", [("", len(headers))], headers, rows, ["result", "result"], [])
    console = Console(width=80, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(view_to_rich(view))
    text = console.export_text()
    assert "random-init PLIP-mini (IVLC + TIC)" in text and "…" not in text

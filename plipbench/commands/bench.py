"""``plipbench bench``: the default benchmark end to end (pre-train, evaluate, leaderboard)."""

from __future__ import annotations

from pathlib import Path

import typer


def bench(
    suite: str = typer.Option("mini", "--suite", "-s", help="Suite under tasks/suites with a backbones list."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Results folder (default results/<suite>)."),
    check: Path | None = typer.Option(None, "--check", help="Rerun and compare with the committed results in "
                                      "this folder; exit 1 listing every differing cell."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Generate the synthetic data, pre-train the suite's mini models, evaluate every backbone on every task,
    and print the leaderboard (written to results/LEADERBOARD.md for the mini suite).

    Example: [bold]plipbench bench[/bold]   CI: [bold]plipbench bench --check results/mini[/bold]
    """
    from plipbench.bench import run_bench
    from plipbench.io import ensure_writable_cache, ensure_writable_dir
    from plipbench.leaderboard import build_leaderboard
    from plipbench.leaderboard.render_terminal import leaderboard_console

    if check is None:
        ensure_writable_dir(out if out is not None else Path("results") / suite, "results folder (--out)")
    ensure_writable_cache()
    console = leaderboard_console()
    report = run_bench(suite, out=out, check=check, progress=progress)
    if check is None:
        from plipbench.evaluation.results import load_results

        console.print(build_leaderboard(load_results(report.out), with_ci=True).rich_table())
    for line in report.skipped:
        console.print(f"[yellow]skipped[/yellow] {line}")
    if report.removed:
        console.print(f"removed {len(report.removed)} stale result(s) no longer in the suite: {', '.join(report.removed)}")
    console.print(
        f"timings: pre-training {report.timings.get('pretraining_s', 0):.0f} s, evaluation "
        f"{report.timings.get('evaluation_s', 0):.0f} s, total {report.timings.get('total_s', 0):.0f} s"
    )
    if check is not None:
        if report.differences:
            console.print(f"[red]{len(report.differences)} cell(s) differ from {check}:[/red]")
            for line in report.differences:
                console.print(f"  {line}")
            raise typer.Exit(1)
        console.print(f"[green]all cells match {check} within the suite's tolerances[/green]")
    else:
        console.print(f"results in {report.out}; leaderboard written next to it (LEADERBOARD.md)")

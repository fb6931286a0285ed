"""``plipbench bench``: the default benchmark end to end (pre-train, evaluate, leaderboard)."""

from __future__ import annotations

from pathlib import Path

import typer


def bench(
    suite: str = typer.Option("mini", "--suite", "-s", help="Suite under tasks/suites with a backbones list."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Results folder (default results/<suite>)."),
    check: Path | None = typer.Option(None, "--check", help="Rerun and compare with the committed results in "
                                      "this folder under the suite's statistical rule (README: reproduction "
                                      "check); exit 1 listing every failing cell."),
    seeds: int | None = typer.Option(None, "--seeds", help="Training seeds 0..N-1 of every trained artefact "
                                     "(default: the suite's seeds:)."),
    check_report: Path | None = typer.Option(None, "--check-report", help="With --check: write every cell's "
                                             "verdict (means, sigma, t, p, Holm p) to this JSON file."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Generate the synthetic data, pre-train the suite's mini models (one per seed), evaluate every backbone on
    every task, and print the leaderboard (written to results/LEADERBOARD.md for the mini suite).

    Example: [bold]plipbench bench[/bold]   CI: [bold]plipbench bench --check results/mini[/bold]
    """
    from plipbench.bench import run_bench
    from plipbench.errors import ConfigError
    from plipbench.io import ensure_writable_cache, ensure_writable_dir
    from plipbench.leaderboard.render_terminal import leaderboard_console

    if check_report is not None and check is None:
        raise ConfigError("--check-report needs --check")
    if check is None:
        ensure_writable_dir(out if out is not None else Path("results") / suite, "results folder (--out)")
    ensure_writable_cache()
    console = leaderboard_console()
    report = run_bench(suite, out=out, check=check, seeds=seeds, progress=progress)
    if check is None:
        console.print(report.leaderboard.rich_table())
    for line in report.skipped:
        console.print(f"[yellow]skipped[/yellow] {line}")
    if report.removed:
        console.print(f"removed {len(report.removed)} superseded result(s) of this suite: {', '.join(report.removed)}")
    console.print(
        f"timings: pre-training {report.timings.get('pretraining_s', 0):.0f} s, evaluation "
        f"{report.timings.get('evaluation_s', 0):.0f} s, total {report.timings.get('total_s', 0):.0f} s "
        f"({len(report.seeds)} seed(s))"
    )
    if check is not None:
        reproduction = report.reproduction
        if check_report is not None:
            import json

            from plipbench.io import atomic_write_text

            atomic_write_text(check_report, json.dumps(reproduction.to_records(), indent=1, default=float) + "\n")
        console.print(reproduction.summary())
        if report.differences:
            console.print(f"[red]{len(report.differences)} cell(s) or backbone(s) do not reproduce {check}:[/red]")
            for line in report.differences:
                console.print(f"  {line}")
            raise typer.Exit(1)
        console.print(f"[green]every cell reproduces {check} under the suite's check rule[/green]")
    else:
        console.print(f"results in {report.out}; leaderboard written next to it (LEADERBOARD.md)")

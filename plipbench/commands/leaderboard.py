"""``plipbench leaderboard``: leaderboards (table, Markdown, CSV, JSON, HTML) from a directory of result files."""

from __future__ import annotations

from pathlib import Path

import typer

FORMATS = ("table", "md", "csv", "json", "html")
DEFAULT_RESULTS = Path("results")


def leaderboard(
    results: Path = typer.Option(None, "--results", help="Directory of result JSON files (default: ./results)."),
    format: str = typer.Option("table", "--format", "-f", help="table | md | csv | json | html."),
    out: Path = typer.Option(None, "--out", "-o", help="Write here (atomically) instead of printing."),
    ci: bool = typer.Option(False, "--ci", help="95% percentile bootstrap CIs from the per-query data."),
    compare: tuple[str, str] | None = typer.Option(
        None, "--compare", help="Paired bootstrap comparison of two backbones: --compare A B."
    ),
    reference: str = typer.Option(
        None, "--reference",
        help="Show reported numbers (not reproduced) beside yours: plip-paper, human-centric (parsing, person search, "
             "Occluded-Duke, PETA_ZS / RAP_ZS from SCHP, SeqNet, GLCNet, SOLIDER, TransReID, RP), or recipes (the "
             "baselines the fine-tune recipes' reference code reports: BoT, TransReID, IRRA, PLIP, RP, SOLIDER-PAR)."
    ),
    protocol: str = typer.Option(None, "--protocol", help="Only this protocol (zero-shot, linear-probe, ...)."),
    task_family: str = typer.Option(None, "--task-family", help="Only this family (text-reid, attributes, ...)."),
    n_resamples: int = typer.Option(1000, "--n-resamples", help="Bootstrap resamples (CI and --compare)."),
    seed: int = typer.Option(0, "--seed", help="Bootstrap seed (the output is deterministic for a seed)."),
) -> None:
    """Rank backbones per task (percent, one decimal), with average rank, cost, CIs and paper references.

    The HTML report is one self-contained file (plots embedded); it always carries bootstrap error bars when the
    results have per-query data.

    Example: [bold]plipbench leaderboard --results results --format md --ci --reference plip-paper[/bold]

    Example: [bold]plipbench leaderboard --compare plip-rn50 clip-vit-b16[/bold]
    """
    from plipbench.errors import ConfigError, DataError
    from plipbench.evaluation.results import load_results

    if format not in FORMATS:
        raise ConfigError(f"--format {format!r} is not one of {', '.join(FORMATS)}")
    if out is not None:
        from plipbench.io import ensure_writable_file

        ensure_writable_file(out, "--out")
    pair = tuple(name for name in (compare or ()) if name is not None)
    if reference is not None:
        from plipbench.leaderboard.reference import REFERENCE_FILES

        if reference not in REFERENCE_FILES:
            raise ConfigError(f"--reference {reference!r} is unknown; known: {', '.join(sorted(REFERENCE_FILES))}")
    directory = results if results is not None else DEFAULT_RESULTS
    alone_ok = results is None and reference is not None and not pair
    if alone_ok and not directory.is_dir():
        loaded = []  # no results of one's own: the reference is shown alone
    else:
        loaded = load_results(directory)
        if not loaded and not alone_ok:
            raise DataError(directory, "no result files (*.json) found")
    if pair:
        text = _compare_text(loaded, pair, format, n_resamples, seed, protocol, task_family)
    else:
        from plipbench.leaderboard import build_leaderboard

        board = build_leaderboard(loaded, with_ci=ci or format == "html", reference=reference, protocol=protocol,
                                  task_family=task_family, n_resamples=n_resamples, seed=seed)
        text = _board_text(board, format, to_file=out is not None)
    _emit(text, out)


def _board_text(board, format: str, to_file: bool):
    if format == "md":
        return board.to_markdown()
    if format == "csv":
        return board.to_csv()
    if format == "json":
        return board.to_json()
    if format == "html":
        return board.to_html()
    if to_file:
        from plipbench.leaderboard.render_terminal import render_plain_text

        return render_plain_text(board.rich_table())
    return board.rich_table()


def _compare_text(loaded, pair, format, n_resamples, seed, protocol, task_family):
    from plipbench.errors import ConfigError
    from plipbench.leaderboard import compare as cmp

    if len(pair) != 2:
        raise ConfigError("--compare needs two backbone names: --compare A B")
    frame = cmp.compare_backbones(loaded, pair[0], pair[1], n_resamples=n_resamples, seed=seed, protocol=protocol,
                                  task_family=task_family)
    view = cmp.compare_view(frame)
    if format == "md":
        from plipbench.leaderboard.render_text import view_to_markdown

        return view_to_markdown(view)
    if format == "csv":
        return cmp.compare_csv(frame)
    if format == "json":
        import json

        return json.dumps(cmp.compare_records(frame), indent=2) + "\n"
    if format == "html":
        from plipbench.leaderboard.render_html import views_html

        return views_html(view.title, [view])
    from plipbench.leaderboard.render_terminal import view_to_rich

    return view_to_rich(view)


def _emit(text, out: Path | None) -> None:
    if isinstance(text, str):
        if out is not None:
            from plipbench.io import atomic_write_text

            atomic_write_text(out, text)
            typer.echo(f"wrote {out}", err=True)
        else:
            typer.echo(text, nl=False)
        return
    if out is not None:
        from plipbench.io import atomic_write_text
        from plipbench.leaderboard.render_terminal import render_plain_text

        atomic_write_text(out, render_plain_text(text))
        typer.echo(f"wrote {out}", err=True)
        return
    from plipbench.leaderboard.render_terminal import leaderboard_console

    leaderboard_console().print(text)

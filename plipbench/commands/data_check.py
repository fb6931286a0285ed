"""``plipbench data check``: validate a local dataset copy (real or synthetic) against its layout."""

from __future__ import annotations

import typer


def check(
    layout: str = typer.Option(..., "--layout", "-l", help="Dataset layout, e.g. market1501, cuhk-pedes, pa100k."),
    root: str = typer.Option(..., "--root", "-r", help="The dataset folder, or a data folder that holds it."),
    quick: bool = typer.Option(False, "--quick", help="Decode a sample of 32 images instead of all of them."),
    option: list[str] = typer.Option(
        [], "--option", "-o", help="Reader option key=value (repeatable), e.g. msmt17_train_with_val=true."
    ),
) -> None:
    """Check a dataset copy: annotations parse, every image exists and decodes, split sizes match.

    Real copies are compared with the official split sizes; synthetic copies (made by [bold]plipbench data synth[/bold])
    with their manifest. Exit code 0 when valid, 2 when not.

    Examples: [bold]plipbench data check --layout market1501 --root ~/datasets --quick[/bold];
    [bold]plipbench data check -l msmt17 -r ~/datasets -o msmt17_train_with_val=true[/bold]
    """
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from plipbench.data.check import check_dataset
    from plipbench.data.readers import parse_options

    options = parse_options(layout, option)
    report = check_dataset(layout, root, quick=quick, **options)
    console = Console()
    kind = "manifest" if report.synthetic else "official"
    short = {"images": "img", "identities": "ids", "captions": "capt", "cameras": "cams"}
    what = "synthetic copy" if report.synthetic else "dataset"
    table = Table(title=escape(f"{layout} {what} at {report.root}"))
    for col in ("split", "images", "identities", "captions", "cameras", f"expected ({kind})"):
        table.add_column(col, justify="left" if col == "split" or col.startswith("expected") else "right")
    splits = list(report.summary) + [s for s in report.expected if s not in report.summary]
    for split in splits:
        got = report.summary.get(split, {})
        want = report.expected.get(split, {})
        expected_text = " / ".join(f"{v} {short.get(k, k)}" for k, v in want.items()) if want else "-"
        table.add_row(escape(split), *(str(got.get(k, "-")) for k in ("images", "identities", "captions", "cameras")),
                      escape(expected_text))
    console.print(table)
    if report.options:
        console.print(escape("options: " + ", ".join(f"{k}={v}" for k, v in report.options.items())), highlight=False)
    console.print(f"decoded {report.decoded} image(s){' (quick sample)' if quick else ''}", highlight=False)
    if report.ok:
        console.print("[green]valid[/green]")
        return
    for problem in report.problems:
        console.print(f"[red]problem:[/red] {escape(problem)}", highlight=False, soft_wrap=True)
    console.print(f"[red]{len(report.problems)} problem(s)[/red]")
    raise typer.Exit(2)

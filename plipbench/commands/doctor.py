"""``plipbench doctor``: what this machine offers plipbench."""

from __future__ import annotations

import typer


def doctor(
    json_out: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Versions of the key packages, device (CPU/CUDA), threads and configured dataset roots.

    Example: [bold]plipbench doctor[/bold]
    """
    import json

    from plipbench.environment import environment_report

    report = environment_report()
    if json_out:
        typer.echo(json.dumps(report, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    packages = Table(title="packages", show_lines=False)
    packages.add_column("package")
    packages.add_column("version")
    for name, version in report["packages"].items():
        packages.add_row(name, version or "[red]not installed[/red]")
    console.print(packages)
    hw = Table(title="hardware")
    hw.add_column("item")
    hw.add_column("value")
    for key, value in report["hardware"].items():
        hw.add_row(key, str(value))
    console.print(hw)
    roots = Table(title="dataset roots")
    roots.add_column("layout")
    roots.add_column("root")
    roots.add_column("status")
    for row in report["datasets"]:
        roots.add_row(row["layout"], row["root"] or "-", row["status"])
    console.print(roots)

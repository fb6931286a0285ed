"""``plipbench models``: list and show the named baselines, and check any backbone for conformance."""

from __future__ import annotations

from typing import Any

import typer

app = typer.Typer(help="Backbones: named baselines, metadata, conformance checks.", no_args_is_help=True)


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """``["key=value", ...]`` -> dict; values are read as YAML scalars (``false``, ``3``, ``[256, 128]``)."""
    import yaml

    from plipbench.errors import ConfigError

    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip().isidentifier():
            raise ConfigError(f"--arg expects KEY=VALUE with KEY a Python identifier, got {item!r}")
        try:
            out[key.strip()] = yaml.safe_load(value) if value else ""
        except yaml.YAMLError:
            out[key.strip()] = value
    return out


@app.command("list")
def list_command() -> None:
    """List the named baselines (baselines/*.yaml) and the backbone families.

    Example: plipbench models list
    """
    from rich.table import Table

    from plipbench.leaderboard.render_terminal import add_name_column, table_console
    from plipbench.models.baselines import list_baselines
    from plipbench.models.registry import list_families

    baselines = list_baselines()
    table = Table(title="Baselines")
    # the names are what users type: never cut them; in a narrow terminal the other columns fold
    add_name_column(table, "name", [spec.name if spec is not None else path.stem for spec, path, _ in baselines])
    add_name_column(table, "family", [spec.family for spec, _, _ in baselines if spec is not None])
    for column in ("modalities", "dim", "weights present?"):
        table.add_column(column, overflow="fold")
    for spec, path, error in baselines:
        if spec is None:
            table.add_row(path.stem, "[red]invalid[/red]", "", "", error or "")
            continue
        present = spec.weights_present()
        mark = (
            "n/a (random init)" if present is None else ("[green]yes[/green]" if present else "[red]no[/red]")
        )
        table.add_row(spec.name, spec.family, ", ".join(spec.modalities), str(spec.embedding_dim), mark)
    console = table_console()
    console.print(table)
    console.print("families (use as FAMILY:NAME): " + ", ".join(list_families()))


@app.command("show")
def show_command(name: str = typer.Argument(..., help="Baseline name or path to a baseline YAML.")) -> None:
    """Show a baseline's metadata and whether its weights are on this machine (and where to put them).

    Example: plipbench models show plip-rn50-official
    """
    from rich.console import Console
    from rich.table import Table

    from plipbench.models.baselines import load_baseline, weights_hint

    spec = load_baseline(name)
    table = Table(title=f"Baseline {spec.name}", show_header=False)
    table.add_column("field")
    table.add_column("value", overflow="fold")
    rows = [
        ("description", spec.description),
        ("build", f"{spec.family}:{spec.model or ''}" + (f" {spec.args}" if spec.args else "")),
        ("modalities", ", ".join(spec.modalities)),
        ("embedding size", str(spec.embedding_dim)),
        ("license", spec.license),
        ("training data", ", ".join(spec.training_data) or "-"),
        ("revision", spec.revision or "-"),
    ]
    if spec.weights is None:
        rows.append(("weights", "none needed (random initialisation)"))
    else:
        present = spec.weights_present()
        rows += [
            ("weights url", spec.weights.url),
            ("weights path", spec.weights.path),
            ("weights present", "[green]yes[/green]" if present else "[red]no[/red]: " + weights_hint(spec)),
        ]
    for key, value in rows:
        table.add_row(key, value)
    Console().print(table)


@app.command("check")
def check_command(
    spec: str = typer.Argument(
        ..., help="Baseline name, FAMILY:NAME, python:module:function or file.py:function."
    ),
    arg: list[str] = typer.Option(None, "--arg", "-a", help="Factory argument KEY=VALUE (repeatable)."),
    device: str = typer.Option("cpu", help="Device to run on (cpu, cuda, cuda:1)."),
    precision: str = typer.Option("fp32", help="fp32, or bf16 autocast."),
) -> None:
    """Run the conformance checks on a backbone with tiny synthetic data; exit 2 if any fails.

    Example: plipbench models check random:plip-mini
    Example: plipbench models check timm:resnet18 --arg weights=resnet18.safetensors
    """
    from rich.console import Console
    from rich.table import Table

    from plipbench.models.checks import check_backbone
    from plipbench.models.registry import create_backbone

    backbone = create_backbone(spec, device=device, precision=precision, **parse_overrides(arg))
    results = check_backbone(backbone)
    meta = backbone.metadata
    table = Table(
        title=f"{meta.name} ({meta.family}, {', '.join(meta.modalities)}, dim {meta.embedding_dim})"
    )
    for column in ("check", "result", "detail"):
        table.add_column(column)
    for result in results:
        table.add_row(
            result.name, "[green]pass[/green]" if result.passed else "[red]FAIL[/red]", result.detail
        )
    console = Console(width=160)
    console.print(table)
    failed = [r for r in results if not r.passed]
    if failed:
        console.print(f"[red]{len(failed)} of {len(results)} checks failed[/red]")
        raise typer.Exit(2)
    console.print(f"[green]all {len(results)} checks passed[/green]")

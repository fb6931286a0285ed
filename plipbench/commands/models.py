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

    For each baseline: family, parameters, modalities, training data, licence, and whether its
    weights are present, fetchable (``plipbench models fetch NAME``), gated or to be placed by hand.

    Example: plipbench models list
    """
    from rich.table import Table

    from plipbench.leaderboard.render_terminal import table_console
    from plipbench.models.baselines import list_baselines
    from plipbench.models.fetch import fetch_status
    from plipbench.models.registry import list_families

    marks = {
        "none": "n/a (random)", "present": "[green]present[/green]", "fetchable": "[yellow]fetchable[/yellow]",
        "gated": "[red]gated[/red]", "manual": "[red]missing[/red]", "library": "[yellow]fetchable (library cache)[/yellow]",
        "unsupported": "[red]no loader[/red]",
    }  # fmt: skip
    table = Table(title="Baselines")
    entries = list_baselines()
    table.add_column("name", no_wrap=True, min_width=max([len(p.stem) for _, p, _ in entries] + [4]))
    table.add_column("family", overflow="fold", min_width=6)
    for column in ("params", "mod", "dim"):
        table.add_column(column, no_wrap=True)
    for column in ("training data", "licence", "weights"):
        table.add_column(column, overflow="fold")
    for spec, path, error in entries:
        if spec is None:
            table.add_row(path.stem, "[red]invalid[/red]", "", "", "", "", "", error or "")
            continue
        table.add_row(
            spec.name, spec.family, _parameters(spec.parameters), "+".join(m[0].upper() for m in spec.modalities),
            str(spec.embedding_dim), ", ".join(spec.training_data) or "-", _short_licence(spec.license),
            marks[fetch_status(spec)],
        )  # fmt: skip
    console = table_console()
    console.print(table)
    console.print("mod: I image, T text. weights: present here, fetchable with `plipbench models fetch NAME`, "
                  "fetchable (library cache: timm / open_clip / transformers download on first use), "
                  "gated (by agreement), missing (put the file by hand: `plipbench models show NAME`), "
                  "no loader (listed only: `plipbench models show NAME` says why)")  # fmt: skip
    console.print("families (use as FAMILY:NAME): " + ", ".join(list_families()))


def _short_licence(text: str) -> str:
    """The licence name without its qualifications (``models show`` prints them in full)."""
    return text.split(";")[0].split(" (")[0].strip()


def _parameters(count: int | None) -> str:
    return "?" if count is None else f"{count / 1e6:.1f}M"


@app.command("fetch")
def fetch_command(
    names: list[str] = typer.Argument(None, help="Baseline names (or YAML paths) to fetch."),
    all_: bool = typer.Option(
        False, "--all", help="Fetch every fetchable baseline whose weights are missing."
    ),
) -> None:
    """Download baselines' weights from the source their YAML names, verified against the sha256.

    Example: plipbench models fetch timm-resnet50
    Example: plipbench models fetch --all
    """
    from plipbench.errors import ConfigError, PlipbenchError
    from plipbench.models.baselines import list_baselines, load_baseline
    from plipbench.models.fetch import fetch_baseline, fetch_status

    if all_ == bool(names):
        raise ConfigError("models fetch: name one or more baselines, or pass --all (not both)")
    specs = [load_baseline(name) for name in names] if names else [s for s, _, _ in list_baselines() if s]
    if all_:
        specs = [s for s in specs if fetch_status(s) == "fetchable"]
        if not specs:
            typer.echo("nothing to fetch: every fetchable baseline's weights are present")
    failures = []
    for spec in specs:
        try:
            path = fetch_baseline(spec)
            typer.echo(f"{spec.name}: {path}")
        except PlipbenchError as err:
            if not all_:
                raise
            failures.append(str(err))
            typer.echo(f"error: {err}", err=True)
    if failures:
        raise typer.Exit(2)


@app.command("show")
def show_command(name: str = typer.Argument(..., help="Baseline name or path to a baseline YAML.")) -> None:
    """Show a baseline's metadata and whether its weights are on this machine (and where to put them).

    Example: plipbench models show plip-rn50-official
    """
    from rich.console import Console
    from rich.table import Table

    from plipbench.models.baselines import load_baseline, weights_hint
    from plipbench.models.fetch import expected_sha256, fetch_status

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
        ("parameters", _parameters(spec.parameters)),
        ("feature", spec.feature or "-"),
        ("citation", spec.citation or "-"),
        ("revision", spec.revision or "-"),
    ]
    if spec.weights is None:
        rows.append(("weights", "none needed (random initialisation)"))
    else:
        present = spec.weights_present()
        fetch = spec.weights.fetch
        if fetch is None:
            source = "-"
        else:
            source = (fetch.reason or "") if fetch.kind in ("gated", "unsupported") else fetch.download_url()
        try:
            sha = expected_sha256(spec.weights.sha256, spec.weights.resolved())
        except Exception:  # an unset ${VAR} in the path: show the pinned value only
            sha = spec.weights.sha256
        recorded = "" if spec.weights.sha256 or not sha else " (recorded on first fetch, not pinned)"
        rows += [
            ("weights url", spec.weights.url),
            (
                "source",
                f"{fetch.kind}: {source}"
                if fetch
                else "none (place the file by hand)"
                if spec.weights.required
                else f"the {spec.family} library's own cache, on first use (or a file at the weights path)",
            ),
            ("sha256", (sha or "not pinned (recorded on first fetch)") + recorded),
            ("weights path", spec.weights.path),
            ("weights", fetch_status(spec)),
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
    weights: str = typer.Option(
        None, "--weights", help="Load this weights file instead of the baseline's own."
    ),
    device: str = typer.Option("cpu", help="Device to run on (cpu, cuda, cuda:1)."),
    precision: str = typer.Option("fp32", help="fp32, or bf16 autocast."),
) -> None:
    """Run the conformance checks on a backbone with tiny synthetic data; exit 2 if any fails.

    Example: plipbench models check random:plip-mini
    Example: plipbench models check timm:resnet18 --arg weights=resnet18.safetensors
    Example: plipbench models check solider-swin-b --weights swin_base.pth
    """
    from rich.console import Console
    from rich.table import Table

    from plipbench.models.checks import check_backbone
    from plipbench.models.registry import create_backbone

    overrides = parse_overrides(arg)
    if weights:
        overrides["weights"] = weights
    backbone = create_backbone(spec, device=device, precision=precision, **overrides)
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

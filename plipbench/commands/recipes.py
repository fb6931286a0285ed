"""``plipbench recipes``: list the shipped fine-tune recipes and show one as resolved for a backbone."""

from __future__ import annotations

from typing import Any

import typer

app = typer.Typer(
    help="Fine-tune recipes (BoT, TransReID, IRRA, ...): list, show as resolved.", no_args_is_help=True
)

FORMATS = ("table", "json", "yaml")


@app.command("list")
def list_command() -> None:
    """List the recipes: task, backbone kinds, optimizer, lr, epochs and reference code.

    Example: plipbench recipes list
    """
    from rich.table import Table

    from plipbench.leaderboard.render_terminal import table_console
    from plipbench.recipes.catalog import load_recipe, recipe_names

    table = Table(title="Recipes")
    for column in ("name", "task", "backbones", "optimizer", "lr", "epochs", "reference"):
        table.add_column(column, no_wrap=column in ("name", "lr", "epochs"), overflow="fold")
    for name in recipe_names():
        recipe = load_recipe(name)
        table.add_row(
            name, recipe.task, "/".join(recipe.fits), recipe.optimizer.name, f"{recipe.optimizer.lr:g}",
            str(recipe.epochs), f"{recipe.reference.repository}@{recipe.reference.commit}",
        )  # fmt: skip
    console = table_console()
    console.print(table)
    console.print("`plipbench recipes show NAME --backbone SPEC` prints one as resolved for a backbone")


def _parse_sets(items: list[str] | None) -> dict[str, Any]:
    import yaml

    from plipbench.errors import ConfigError

    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects KEY=VALUE (a dotted recipe key), got {item!r}")
        try:
            out[key.strip()] = yaml.safe_load(value) if value else ""
        except yaml.YAMLError:
            out[key.strip()] = value
    return out


def _flatten(tree: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(tree, dict) and tree:
        return [row for key, value in tree.items() for row in _flatten(value, f"{prefix}{key}.")]
    return [(prefix.rstrip("."), tree)]


@app.command("show")
def show_command(
    name: str = typer.Argument(..., help="Recipe name (plipbench recipes list) or a recipe YAML file."),
    backbone: str | None = typer.Option(
        None, "--backbone", help="Resolve for this backbone spec (built without weights), e.g. timm:resnet50."
    ),
    dataset: str | None = typer.Option(
        None, "--dataset", help="Apply the recipe's values for a dataset (pa100k)."
    ),
    sets: list[str] | None = typer.Option(
        None,
        "--set",
        help="Override KEY=VALUE (dotted key, or epochs / warmup / lr / epochs_scale); repeatable.",
    ),
    output_format: str = typer.Option("table", "--format", help="table, json or yaml."),
) -> None:
    """Print a recipe; with --backbone, as resolved for that backbone (variants, mean/std, feature, lr).

    Example: plipbench recipes show bot --backbone timm:resnet50 --format json
    """
    import json

    from plipbench.errors import ConfigError

    if output_format not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, got {output_format!r}")
    overrides = _parse_sets(sets)
    if backbone is None:
        if overrides or dataset:
            raise ConfigError("--set and --dataset need --backbone (they apply to a resolved recipe)")
        from plipbench.recipes.catalog import load_recipe

        data = load_recipe(name).model_dump(mode="json")
    else:
        from plipbench.recipes.resolve import resolve_recipe

        data = resolve_recipe(name, backbone, overrides, dataset=dataset).model_dump(mode="json")
    if output_format == "json":
        typer.echo(json.dumps(data, indent=2))
        return
    if output_format == "yaml":
        import yaml

        typer.echo(yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=110), nl=False)
        return
    from rich.table import Table

    from plipbench.leaderboard.render_terminal import table_console

    title = f"recipe {data['name']}" + (f" for {backbone}" if backbone else " (as shipped)")
    table = Table(title=title)
    table.add_column("key", no_wrap=True)
    table.add_column("value", overflow="fold")
    for key, value in _flatten(data):
        table.add_row(key, json.dumps(value) if not isinstance(value, str) else value)
    table_console().print(table)

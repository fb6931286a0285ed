"""``plipbench tasks``: list and show the task specs and suites under tasks/."""

from __future__ import annotations

import typer

app = typer.Typer(help="Task specs and suites.", no_args_is_help=True)


@app.command("list")
def list_tasks(
    suite: str | None = typer.Option(None, "--suite", help="Only the tasks of this suite."),
) -> None:
    """Every task (name, kind, family, dataset, protocols, main score) and the suites.

    Example: [bold]plipbench tasks list --suite mini[/bold]
    """
    from rich.table import Table

    from plipbench.evaluation.tasks import TaskRegistry
    from plipbench.leaderboard.render_terminal import add_name_column, table_console

    registry = TaskRegistry()
    runs = registry.suite_runs(suite) if suite else [(t, [p.name for p in t.protocol_specs()])
                                                     for t in registry.tasks.values()]
    table = Table(title=f"tasks ({registry.root})")
    # the names are what users type: never cut them; in a narrow terminal the other columns fold
    add_name_column(table, "name", [spec.name for spec, _ in runs])
    for column in ("kind", "family", "dataset", "protocols", "main score"):
        table.add_column(column, overflow="fold")
    for spec, protocols in runs:
        source = f"{spec.train_dataset.display_name()} -> " if spec.train_dataset else ""
        table.add_row(spec.name, spec.kind, spec.family, source + spec.dataset.display_name(), ", ".join(protocols),
                      spec.main_score)
    console = table_console()
    console.print(table)
    console.print("suites: " + ", ".join(f"{s.name} ({len(s.tasks)} tasks)" for s in registry.suites.values()))


@app.command("show")
def show_task(name: str = typer.Argument(..., help="Task or suite name.")) -> None:
    """The full spec of a task (or a suite) as YAML, with the file it comes from.

    A task whose file ``extends`` another is shown resolved (the spec it runs with, and hashes), after a
    comment naming the tasks it extends and their files.

    Example: [bold]plipbench tasks show synth-market1501[/bold]
    """
    import yaml

    from plipbench.evaluation.tasks import TaskRegistry

    registry = TaskRegistry()
    if name in registry.suites and name not in registry.tasks:
        typer.echo(yaml.safe_dump(registry.suite(name).model_dump(mode="json"), sort_keys=False))
        return
    spec = registry.get(name)
    typer.echo(f"# {registry.files[name]}")
    for parent in registry.extends_chain(name):
        typer.echo(f"# extends {parent} ({registry.files[parent]})")
    if registry.extends_chain(name):
        typer.echo("# resolved spec:")
    typer.echo(yaml.safe_dump(spec.model_dump(mode="json", exclude_none=True), sort_keys=False))

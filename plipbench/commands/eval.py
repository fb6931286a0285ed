"""``plipbench eval``: run tasks or a suite on one backbone and write one result JSON per (task, protocol)."""

from __future__ import annotations

from pathlib import Path

import typer


def eval_command(
    model: str = typer.Option(..., "--model", "-m", help="Backbone spec: a baseline name, family:name, plip:DIR, "
                              "file.py:function, ..."),
    task: str | None = typer.Option(None, "--task", "-t", help="Task name(s), comma-separated."),
    suite: str | None = typer.Option(None, "--suite", "-s", help="A suite under tasks/suites (e.g. mini, paper)."),
    protocol: list[str] = typer.Option(None, "--protocol", "-p", help="Only these protocols (repeatable)."),
    out: Path = typer.Option(Path("results/eval"), "--out", "-o", help="Folder for the result JSON files."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Recompute results already present in --out."),
    name: str | None = typer.Option(None, "--name", help="Name the backbone in results and leaderboards."),
    option: list[str] = typer.Option(None, "--option", help="Protocol option key=value for every protocol run "
                                     "(e.g. epochs=1)."),
    seed: int = typer.Option(0, "--seed", help="First training seed."),
    seeds: int = typer.Option(1, "--seeds", help="Run every trained protocol with seeds --seed .. --seed+N-1 "
                              "(zero-shot protocols run once: they are deterministic)."),
    device: str = typer.Option("cpu", "--device"),
    batch_size: int = typer.Option(64, "--batch-size", min=1),
    num_workers: int = typer.Option(0, "--num-workers", min=0),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
    resume: bool = typer.Option(False, "--resume", help="Continue killed fine-tunes from their last epoch "
                                "checkpoint (refused if the run's spec changed); without it they start over."),
) -> None:
    """Evaluate a backbone on tasks or a suite.

    Example: [bold]plipbench eval --suite mini --model random:plip-mini --out results/demo[/bold]

    Multi-process feature extraction and DDP fine-tunes: [bold]torchrun --nproc_per_node 2 -m plipbench.cli eval ...[/bold]

    After a preempted fine-tune: [bold]plipbench eval ... --resume[/bold] (same arguments) continues it.
    """
    import yaml
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    from plipbench.errors import ConfigError, yaml_error_line
    from plipbench.evaluation.runner import evaluate
    from plipbench.evaluation.tasks import TaskRegistry
    from plipbench.io import ensure_writable_cache, ensure_writable_dir
    from plipbench.models import create_backbone
    from plipbench.models.checks import verify_embedding_size

    if (task is None) == (suite is None):
        raise ConfigError("give exactly one of --task or --suite")
    ensure_writable_dir(out, "results folder (--out)")  # before the compute, not after it
    ensure_writable_cache()
    options = {}
    for item in option or []:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"--option {item!r} is not key=value")
        try:
            options[key.strip()] = yaml.safe_load(raw)
        except yaml.YAMLError as err:
            raise ConfigError(f"--option {item!r}: the value is not valid YAML ({yaml_error_line(err)})") from None
    registry = TaskRegistry()  # an unknown task or suite fails before the model loads
    for task_name in [t.strip() for t in task.split(",") if t.strip()] if task else []:
        registry.get(task_name)
    if suite is not None:
        registry.suite(suite)
    from plipbench.distributed import rank_device

    device = rank_device(device)  # under torchrun: each rank on its own GPU
    backbone = create_backbone(model, device=device)
    verify_embedding_size(backbone)  # a model that breaks its declared size stops here, not inside a protocol
    frame = evaluate(
        backbone, task, suite=suite, protocols=protocol or None, out=out, overwrite=overwrite, name=name,
        registry=registry, options=options, seed=seed, seeds=seeds, device=device, batch_size=batch_size,
        num_workers=num_workers, progress=progress, resume=resume,
    )  # fmt: skip
    import torch.distributed as dist

    from plipbench.leaderboard.render_terminal import add_name_column, table_console

    if dist.is_available() and dist.is_initialized() and dist.get_rank() != 0:
        return
    table = Table(title=f"plipbench eval -> {out}")
    add_name_column(table, "backbone", list(frame.get("backbone", [])))
    add_name_column(table, "task", list(frame.get("task", [])))
    for column in ("protocol", "seed", "status", "main score", "value", "seconds"):
        table.add_column(column, overflow="fold")
    for row in frame.itertuples():
        score, seconds = _number(row.score), _number(row.seconds)
        seed = _number(getattr(row, "seed", None))
        cells = (row.backbone, row.task, row.protocol, "-" if seed is None else str(int(seed)), row.status, _text(row.main_score),
                 "-" if score is None else f"{100 * score:.1f}", "-" if seconds is None else f"{seconds:.1f}")
        table.add_row(*(Text(str(c)) for c in cells))  # names are text, never rich markup
    console = table_console()
    console.print(table)
    for row in frame.itertuples():
        if row.status == "skipped":
            console.print(f"[yellow]skipped[/yellow] {escape(f'{row.task} ({row.protocol}): {row.reason}')}")
    stats = frame.attrs.get("feature_cache", {})
    console.print(f"feature cache: {stats.get('hits', 0)} hit(s), {stats.get('misses', 0)} computed")


def _missing(value: object) -> bool:
    """None or NaN. A DataFrame fills a missing string cell with NaN (pandas 3's string dtype), and NaN
    is truthy: ``row.main_score or "-"`` would hand a float to the table."""
    return value is None or (isinstance(value, float) and value != value)


def _text(value: object) -> str:
    return "-" if _missing(value) or value == "" else str(value)


def _number(value: object) -> float | None:
    return None if _missing(value) else float(value)  # type: ignore[arg-type]

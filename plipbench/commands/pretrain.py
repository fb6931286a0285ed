"""``plipbench pretrain``: PLIP pre-training with its three pretext tasks (or the CLIP objective)."""

from __future__ import annotations

from pathlib import Path

import typer


def pretrain(
    config: str = typer.Option("mini", "--config", "-c", help="A named config (mini, rn50-paper, ...) or a YAML file."),
    overrides: list[str] = typer.Argument(None, help="key=value overrides, e.g. optim.lr=0.001 objectives.tic=0"),
    out: Path | None = typer.Option(None, "--out", "-o", help="Run directory (default: runs/pretrain/<config name>)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its latest checkpoint."),
    max_steps: int | None = typer.Option(None, "--max-steps", min=1, help="Stop after this many optimizer steps."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Pre-train a PLIP backbone (IVLC + TIC + IAP, or the CLIP objective) on a captioned person corpus.

    Example: [bold]plipbench pretrain --config mini --out runs/plip-mini objectives.tic=0[/bold]

    Multi-GPU / multi-node: [bold]torchrun --nproc_per_node 4 -m plipbench.cli pretrain --config rn50-paper[/bold]
    The result loads with create_backbone("plip:OUT/model").
    """
    from rich.console import Console

    from plipbench.pretrain.config import load_config
    from plipbench.pretrain.trainer import pretrain as run_pretrain

    cfg = load_config(config, overrides or [])
    run_dir = out or Path("runs") / "pretrain" / cfg.name
    from plipbench.io import ensure_writable_cache, ensure_writable_dir

    ensure_writable_dir(run_dir, "run folder (--out)")  # before the training, not at the first checkpoint
    if cfg.data.root is None:  # a synthetic corpus is generated into the cache
        ensure_writable_cache()
    summary = run_pretrain(cfg, run_dir, resume=resume, max_steps=max_steps, progress=progress)
    if summary.get("plipbench_version") is not None:
        Console().print(
            f"[green]done[/green]: {summary['steps']} steps in {summary['seconds']:.1f} s on "
            f"{summary['world_size']} process(es); model at {run_dir / 'model'}"
        )

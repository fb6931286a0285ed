"""``plipbench data synth``: generate a synthetic pedestrian dataset in a real dataset's layout."""

from __future__ import annotations

import time
from pathlib import Path

import typer

_PRESET_HELP = "synth-pedes | synth-cuhk | synth-icfg | synth-market | synth-duke | synth-occluded-duke | synth-pa100k"


def synth(
    out: Path = typer.Option(
        ..., "--out", help="Folder to write (created; must be empty unless --overwrite)."
    ),
    preset: str = typer.Option("synth-pedes", "--preset", help=f"Preset (domain): {_PRESET_HELP}."),
    identities: int | None = typer.Option(
        None, "--identities", help="Number of identities (default: the preset's)."
    ),
    images_per_id: int | None = typer.Option(
        None, "--images-per-id", help="Images per identity (default: the preset's)."
    ),
    seed: int = typer.Option(
        0, "--seed", help="Random seed; the same seed and arguments give byte-identical files."
    ),
    layout: str | None = typer.Option(
        None, "--layout", help="On-disk layout (default: the preset's), e.g. rstpreid."
    ),
    image_size: str = typer.Option("128x64", "--image-size", help="Image size HxW (portrait)."),
    workers: int | None = typer.Option(None, "--workers", help="Worker processes (default: automatic)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a previous synthetic copy in --out."),
    preview: bool = typer.Option(
        False, "--preview", help="Also save a contact sheet PNG (ROOT/preview.png)."
    ),
    preview_out: Path | None = typer.Option(None, "--preview-out", help="Where to save the contact sheet."),
) -> None:
    """Generate a synthetic pedestrian dataset (images, captions, attributes) in a real layout.

    Example: [bold]plipbench data synth --out data/synth-market --preset synth-market --preview[/bold]
    """
    from rich.console import Console
    from rich.table import Table

    from plipbench.data.synth import generate, parse_image_size
    from plipbench.io import ensure_writable_dir

    ensure_writable_dir(out, "output folder (--out)")
    console = Console()
    start = time.perf_counter()
    manifest = generate(
        preset, out, identities=identities, images_per_id=images_per_id, seed=seed, layout=layout,
        image_size=parse_image_size(image_size), workers=workers, overwrite=overwrite, progress=True,
    )  # fmt: skip
    sheet = None
    scenes = "person_search" in manifest  # frames, not person crops: no contact sheet
    if (preview or preview_out is not None) and not scenes:
        from plipbench.data.synth.preview import contact_sheet

        sheet = contact_sheet(out, preview_out)
    elapsed = time.perf_counter() - start
    table = Table(
        title=f"{manifest['preset']} -> {out} (layout {manifest['layout']}, seed {manifest['seed']})"
    )
    for col in ("split", "images", "identities", "captions", "cameras"):
        table.add_column(col, justify="left" if col == "split" else "right")
    for split, row in manifest["splits"].items():
        table.add_row(split, *(str(row.get(c, "-")) for c in ("images", "identities", "captions", "cameras")))
    console.print(table)
    console.print(
        f"{manifest['files']} image files written in {elapsed:.1f} s"
        + (f"; preview: {sheet}" if sheet else "")
        + ("; no contact sheet for person-search frames" if scenes and (preview or preview_out is not None) else "")
    )

"""Synthetic datasets generated on first use into the cache, keyed by their generation arguments.

``ensure_synthetic("synth-cuhk")`` returns ``$PLIPBENCH_CACHE/synth/synth-cuhk-<hash>`` after
generating it if needed. Generation writes into a temporary sibling directory that is renamed
into place when complete, so an interrupted run never leaves a half-written dataset behind and
two processes asking at once end with one complete copy.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from plipbench.environment import cache_root
from plipbench.io import make_temp_dir

MANIFEST = "plipbench_synth_manifest.json"


def _arguments(preset: str, layout: str | None, identities: int | None, images_per_id: int | None,
               seed: int, image_size: tuple[int, int]) -> dict:
    return {"preset": preset, "layout": layout, "identities": identities, "images_per_id": images_per_id,
            "seed": seed, "image_size": list(image_size)}


def synthetic_path(
    preset: str,
    *,
    layout: str | None = None,
    identities: int | None = None,
    images_per_id: int | None = None,
    seed: int = 0,
    image_size: tuple[int, int] = (128, 64),
) -> Path:
    args = _arguments(preset, layout, identities, images_per_id, seed, image_size)
    digest = hashlib.sha256(json.dumps(args, sort_keys=True).encode()).hexdigest()[:12]
    return cache_root() / "synth" / f"{preset}-{digest}"


def ensure_synthetic(
    preset: str,
    *,
    layout: str | None = None,
    identities: int | None = None,
    images_per_id: int | None = None,
    seed: int = 0,
    image_size: tuple[int, int] = (128, 64),
    progress: bool = True,
) -> Path:
    """The root of the generated copy, generating it first when it is not in the cache."""
    from plipbench.data.synth import generate

    path = synthetic_path(preset, layout=layout, identities=identities, images_per_id=images_per_id, seed=seed,
                          image_size=image_size)
    if (path / MANIFEST).is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(f".{path.name}.", path.parent)
    try:
        generate(preset, tmp, identities=identities, images_per_id=images_per_id, seed=seed, layout=layout,
                 image_size=image_size, overwrite=True, progress=progress)
        try:
            os.replace(tmp, path)
        except OSError:
            if not (path / MANIFEST).is_file():  # lost a race to another process: theirs is complete
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path

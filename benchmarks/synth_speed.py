"""Images per second of the synthetic generator: rendering + JPEG encoding + writing.

Prints one line per configuration: one core (a single process, in-line) and worker processes.
Usage: ``python benchmarks/synth_speed.py [--images 2000] [--workers 2] [--preset synth-pedes]``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def _time_render_only(n: int) -> tuple[float, float]:
    """Render + encode n images in memory on one core (no disk, no planning): per wall and per CPU second."""
    import io

    from PIL import Image

    from plipbench.data.synth import identity_for, render_person
    from plipbench.data.synth.identity import derive_rng

    start, cpu = time.perf_counter(), time.process_time()
    for k in range(n):
        arr = render_person(
            identity_for("bench", 0, k // 8), ("front", "side", "back")[k % 3], derive_rng("b", k)
        )
        Image.fromarray(arr).save(io.BytesIO(), format="JPEG", quality=92)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return n / wall, n / cpu


def _time_generate(preset: str, images: int, workers: int) -> float:
    from plipbench.data.synth import PRESETS, generate

    k = PRESETS[preset].images_per_id
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        manifest = generate(preset, Path(tmp) / "out", identities=max(len(PRESETS[preset].splits), images // k),
                            images_per_id=k, workers=workers, progress=False)  # fmt: skip
        elapsed = time.perf_counter() - start
    return manifest["files"] / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--preset", default="synth-pedes")
    args = parser.parse_args()
    wall, cpu = _time_render_only(min(args.images, 1000))
    print(f"render+encode only, 1 core:            {wall:7.0f} images/s ({cpu:.0f} per CPU-second)")
    print(f"generate {args.preset}, 1 core:      {_time_generate(args.preset, args.images, 1):7.0f} images/s")
    print(
        f"generate {args.preset}, {args.workers} workers:   {_time_generate(args.preset, args.images, args.workers):7.0f} images/s"
    )


if __name__ == "__main__":
    main()

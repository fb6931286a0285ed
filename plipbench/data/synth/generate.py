"""Plan, render and write one synthetic dataset copy; the Python API behind ``plipbench data synth``.

Order of work: validate the arguments, check ``out``, plan every image (identities, splits,
cameras, views, captions, labels: cheap, in this process), render and write the images in
chunks (optionally in worker processes), then write the annotation file, the sidecar and last
the manifest. Everything is written into a staging sibling of ``out`` (:mod:`plipbench.data.staging`)
that replaces it only when complete, so a run killed by SIGKILL, Ctrl-C or a full disk leaves ``out``
as it was; the next run removes the staging folder it left. Worker processes die with the process
that started them (:func:`_die_with_parent`), even when it is SIGKILLed.

Determinism: every random draw comes from :func:`~plipbench.data.synth.identity.derive_rng`
keyed by (purpose, preset, seed, identity, image), so the output is byte-identical for the
same arguments whatever the number of workers or the chunking.
"""

from __future__ import annotations

import ctypes
import hashlib
import io
import json
import os
import re
import shutil
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from plipbench.data.staging import staging_dir, sweep_stale
from plipbench.data.synth import captions as cap
from plipbench.data.synth.identity import derive_rng, identity_for, pa100k_labels
from plipbench.data.synth.presets import (
    PARSING_LAYOUTS,
    PRESETS,
    READER_LAYOUTS,
    WRITABLE_LAYOUTS,
    SynthPreset,
    split_sizes,
)
from plipbench.data.synth.writers import (
    GENERATED_NAMES,
    ImageJob,
    assign_paths,
    to_records,
    write_annotations,
)
from plipbench.errors import ConfigError, DataError

MANIFEST = "plipbench_synth_manifest.json"
SIDECAR = "plipbench_synth_annotations.json"
FORMAT_VERSION = 1  # bump when the drawing or planning changes what a seed produces
JPEG_QUALITY = 92
CHUNK = 64


def _check_arguments(
    preset: str, layout: str | None, identities, images_per_id, image_size
) -> tuple[SynthPreset, str, int, int, tuple[int, int]]:
    if preset not in PRESETS:
        raise ConfigError(f"unknown synthetic preset {preset!r}; expected one of: {', '.join(PRESETS)}")
    p = PRESETS[preset]
    layout = layout or p.layout
    if layout not in WRITABLE_LAYOUTS:
        raise ConfigError(
            f"--layout {layout!r} cannot be generated; expected one of: {', '.join(WRITABLE_LAYOUTS)}"
        )
    if layout not in p.layouts:
        raise ConfigError(
            f"preset {preset!r} cannot be written in layout {layout!r}; {preset} supports: {', '.join(p.layouts)}"
        )
    n = p.identities if identities is None else int(identities)
    k = p.images_per_id if images_per_id is None else int(images_per_id)
    if n < len(p.splits):
        raise ConfigError(
            f"--identities {n} is too small for preset {preset!r}: it needs at least {len(p.splits)} (one per split)"
        )
    if k < p.min_images_per_id or k > 1000:
        raise ConfigError(
            f"--images-per-id {k} is out of range for preset {preset!r}: expected {p.min_images_per_id}..1000"
        )
    try:
        h, w = (int(v) for v in image_size)
    except (TypeError, ValueError):
        raise ConfigError(f"--image-size {image_size!r}: expected two integers HxW such as 128x64") from None
    if not (16 <= w <= h <= 1024) or not (1.5 <= h / w <= 3.0):
        raise ConfigError(
            f"--image-size {h}x{w}: expected a portrait HxW with 16 <= W <= H <= 1024 and H/W in [1.5, 3] (e.g. 128x64)"
        )
    return p, layout, n, k, (h, w)


def parse_image_size(text: str) -> tuple[int, int]:
    """Parse ``"128x64"`` (H x W) into ``(128, 64)``; ConfigError on anything else."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text or "")
    if not m:
        raise ConfigError(f"--image-size {text!r}: expected HxW such as 128x64")
    return int(m.group(1)), int(m.group(2))


def config_arguments(p: SynthPreset, layout: str, n: int, k: int, size: tuple[int, int], seed: int) -> dict:
    """The arguments that determine the content (workers / progress / overwrite do not)."""
    return {"preset": p.name, "layout": layout, "identities": n, "images_per_id": k, "seed": int(seed),
            "image_size": [size[0], size[1]], "format_version": FORMAT_VERSION}  # fmt: skip


def config_hash(arguments: dict) -> str:
    return hashlib.sha256(json.dumps(arguments, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _check_out(out: Path, arguments: dict, overwrite: bool) -> list[Path]:
    """The entries of ``out`` a new copy replaces; refuses a non-empty ``out`` unless it holds a synth
    copy of the same arguments, or ``overwrite``.

    Only the top-level names a synth run creates (:data:`GENERATED_NAMES`, ``Part*``) are ever
    replaced, and only when ``out`` holds a plipbench manifest; other files are never touched.
    """
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: exists and is not a folder")
    if not out.exists() or not any(out.iterdir()):
        return []
    manifest = out / MANIFEST
    previous = None
    if manifest.is_file():
        try:
            previous = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            previous = None
    same = isinstance(previous, dict) and previous.get("config_hash") == config_hash(arguments)
    ours = [c for c in out.iterdir() if c.name in GENERATED_NAMES or re.fullmatch(r"Part\d+", c.name)]
    if not same and not overwrite:
        what = "a synthetic copy made with other arguments" if previous else "not a plipbench synth output"
        raise ConfigError(
            f"--out {out}: folder is not empty and is {what}; choose an empty folder or pass --overwrite"
        )
    if previous is None and ours:
        names = ", ".join(sorted(c.name for c in ours))
        raise ConfigError(
            f"--out {out}: would replace {names}, which plipbench did not write (no {MANIFEST}); choose another folder"
        )
    return ours


def _publish(stage: Path, out: Path, ours: list[Path], arguments: dict) -> None:
    """Move the complete copy in ``stage`` to ``out``.

    An absent or empty ``out`` is replaced by one rename. Otherwise ``out`` holds a previous copy and
    maybe files of the user's: its manifest is first replaced by an unfinished-run marker (so that an
    interruption leaves a folder plipbench recognises as its own, which the same command or
    ``--overwrite`` replaces), then the previous copy's entries are replaced, the manifest last.
    """
    from plipbench.io import atomic_write_json

    if out.is_dir() and not any(out.iterdir()):
        out.rmdir()
    if not out.exists():
        os.rename(stage, out)
        return
    atomic_write_json(out / MANIFEST, {"generator": "plipbench", "config_hash": config_hash(arguments),
                                       "unfinished": "plipbench data synth was replacing this copy; rerun it"})
    for child in ours:
        if child.name == MANIFEST:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink(missing_ok=True)
    for child in sorted(stage.iterdir()):
        if child.name != MANIFEST:
            os.replace(child, out / child.name)
    os.replace(stage / MANIFEST, out / MANIFEST)
    stage.rmdir()


def _views(p: SynthPreset, rng: np.random.Generator, count: int) -> list[str]:
    return [("front", "side", "back")[int(v)] for v in rng.choice(3, size=count, p=np.asarray(p.views))]


def _reid_cameras(p: SynthPreset, rng: np.random.Generator, k: int) -> list[int]:
    """Cameras of the k images of one identity: 2..min(6, k) cameras, images spread over them."""
    n_cams = int(rng.integers(2, min(p.cameras, max(2, k // 2 + 1)) + 1)) if k >= 2 else 1
    cams = sorted(int(c) for c in rng.choice(p.cameras, size=n_cams, replace=False))
    return sorted(cams[n % n_cams] for n in range(k))


def _query_images(cams: list[int], rng: np.random.Generator) -> set[int]:
    """Image numbers used as queries: one per (id, camera) for a subset of the cameras, keeping a
    gallery image of the same id in another camera for each query (so every query has a match)."""
    first = {}
    for n, c in enumerate(cams):
        first.setdefault(c, n)
    order = [list(first)[int(i)] for i in rng.permutation(len(first))]
    chosen: list[int] = []
    for c in order:
        if chosen and rng.random() > 0.7:
            continue
        trial = chosen + [c]
        left = {cc: cams.count(cc) - (cc in trial) for cc in first}
        if all(any(left[o] > 0 for o in first if o != q) for q in trial):
            chosen = trial
    return {first[c] for c in chosen}


def plan(p: SynthPreset, layout: str, n: int, k: int, seed: int) -> list[ImageJob]:
    """Every image of the copy, in file order, with captions and labels; paths set for ``layout``."""
    jobs: list[ImageJob] = []
    reid = p.task == "image-reid"
    pid_pool = (derive_rng("pids", p.name, seed).permutation(n) + 1).tolist() if reid else []
    ordinal = 0
    for split, count in split_sizes(n, p.splits):
        for _ in range(count):
            idx = ordinal
            rng = derive_rng("images", p.name, seed, idx)
            views = _views(p, rng, k)
            if reid and p.queries_per_id:  # a test-only set: query images, then gallery ones, of every identity
                q = min(p.queries_per_id, k - 1)
                cams, queries = [0] * q + [1] * (k - q), set(range(q))
            elif reid:
                cams = _reid_cameras(p, rng, k)
                queries = _query_images(cams, rng) if split == "test" else set()
            else:
                cams = [int(c) for c in rng.integers(p.cameras, size=k)] if p.cameras else [-1] * k
                queries = set()
            for img in range(k):
                s = split
                if reid:
                    s = "train" if split == "train" else ("query" if img in queries else "gallery")
                jobs.append(ImageJob(p.name, idx, img, ordinal, s, cams[img], views[img],
                                     reid_pid=pid_pool[idx] if reid else -2))  # fmt: skip
            ordinal += 1
    if reid and (p.distractor_fraction or p.junk_fraction):
        gallery = sum(j.split == "gallery" for j in jobs)
        rng = derive_rng("extras", p.name, seed)
        for kind, frac in (("distractor", p.distractor_fraction), ("junk", p.junk_fraction)):
            for e in range(max(1, round(gallery * frac)) if frac else 0):
                jobs.append(ImageJob(f"{p.name}/{kind}", e, 0, -1, "gallery", int(rng.integers(p.cameras)),
                                     _views(p, rng, 1)[0], reid_pid=0 if kind == "distractor" else -1,
                                     junk=kind == "junk"))  # fmt: skip
    if p.heavy_occlusion:  # drawn from its own stream, so the rest of the plan is the same without it
        chance = dict(p.heavy_occlusion)
        for j in jobs:
            j.occluded = derive_rng("occlusion", j.pool, seed, j.index, j.k).random() < chance.get(j.split, 0.0)
    for j in jobs:
        j.partial = p.partial_query and j.split == "query"
    _annotate(p, layout, jobs, seed)
    assign_paths(jobs, layout)
    return jobs


def _annotate(p: SynthPreset, layout: str, jobs: list[ImageJob], seed: int) -> None:
    """Captions with phrase spans, the six-slot string, the prompt caption and PA-100K labels."""
    n_caps = {"rstpreid": 2, "icfg-pedes": 1}.get(layout, p.captions_per_image)
    styles = p.caption_styles or ("plain",)
    cache: dict[tuple[str, int], object] = {}
    for j in jobs:
        key = (j.pool, j.index)
        if key not in cache:
            cache[key] = identity_for(j.pool, seed, j.index)
        ident = cache[key]
        j.labels = pa100k_labels(ident, j.view)  # type: ignore[arg-type]
        j.attribute_string = cap.attribute_string(ident, j.view)  # type: ignore[arg-type]
        if layout not in ("synth-pedes", "cuhk-pedes", "icfg-pedes", "rstpreid"):
            continue
        rng = derive_rng("captions", j.pool, seed, j.index, j.k)
        count = n_caps + int(rng.random() < p.extra_caption_probability)
        for c in range(count):
            text, spans = cap.join_segments(cap.caption_segments(ident, j.view, styles[c % len(styles)], rng))  # type: ignore[arg-type]
            j.captions.append(text)
            j.spans.append(spans)
        if p.prompt_caption:
            j.prompt, j.prompt_spans = cap.prompt_caption(j.attribute_string.split(","), rng)


def _render_chunk(args: tuple) -> int:
    """Render, encode and write one chunk of jobs (runs in a worker process or inline)."""
    from PIL import Image

    from plipbench.data.synth.render import partial_view, render_person
    from plipbench.data.synth.scenes import sample_look

    root, jobs, size, seed, preset_name = args
    p = PRESETS[preset_name]
    looks: dict[int, object] = {}
    for j in jobs:
        ident = identity_for(j.pool, seed, j.index)
        rng = derive_rng("render", j.pool, seed, j.index, j.k)
        if p.cameras and j.camera >= 0:
            if j.camera not in looks:
                looks[j.camera] = sample_look(
                    derive_rng("camera", p.name, seed, j.camera), p.scenes, harsh=p.harsh
                )
            look = looks[j.camera]
        else:
            look = sample_look(rng, p.scenes, harsh=p.harsh)
        if j.mask_relpath:  # parsing: the exact part labels of the same drawing
            arr, parts = render_person(ident, j.view, rng, size, look=look, junk=j.junk, parts=True)  # type: ignore[arg-type,misc]
            mask = io.BytesIO()
            Image.fromarray(np.ascontiguousarray(parts[..., j.mask_channel]), mode="L").save(mask, format="PNG")
            mask_path = Path(root) / j.mask_relpath
            mask_path.parent.mkdir(parents=True, exist_ok=True)
            mask_path.write_bytes(mask.getvalue())
        else:
            arr = render_person(ident, j.view, rng, size, look=look, junk=j.junk,  # type: ignore[arg-type]
                                heavy_occluder=j.occluded)
            if j.partial:
                arr = partial_view(arr, derive_rng("partial", j.pool, seed, j.index, j.k))  # type: ignore[arg-type]
        buf = io.BytesIO()
        if j.relpath.endswith(".png"):
            Image.fromarray(arr).save(buf, format="PNG", optimize=False)
        elif j.relpath.endswith(".tif"):  # the raw Occluded-REID release
            Image.fromarray(arr).save(buf, format="TIFF")
        else:
            Image.fromarray(arr).save(buf, format="JPEG", quality=JPEG_QUALITY)
        path = Path(root) / j.relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(buf.getvalue())
    return len(jobs)


def _die_with_parent(parent: int) -> None:
    """Worker initializer: end this worker when ``parent`` dies, even by SIGKILL (which runs no cleanup).

    On Linux the kernel delivers SIGKILL to the worker when its parent exits (``prctl(PR_SET_PDEATHSIG)``);
    elsewhere a daemon thread polls the parent pid. Either way the worker cannot outlive the run as an
    orphan that renders for nobody.
    """
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(1, signal.SIGKILL, 0, 0, 0) == 0:  # 1 = PR_SET_PDEATHSIG
                if os.getppid() != parent:  # the parent died before prctl took effect
                    os._exit(1)
                return
        except (OSError, AttributeError):  # pragma: no cover - no libc prctl: fall back to polling
            pass

    def watch() -> None:  # pragma: no cover - non-Linux
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="plipbench-parent-watch", daemon=True).start()


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """A process pool whose workers die with this process (see :func:`_die_with_parent`)."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    return ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_die_with_parent,
                               initargs=(os.getpid(),))


def render_jobs(
    root: Path,
    jobs: list[ImageJob],
    size: tuple[int, int],
    seed: int,
    preset: str,
    workers: int | None = None,
    progress: bool = True,
) -> None:
    """Write every job's image; ``workers=None`` uses processes only for large runs (> 1,500 images)."""
    if workers is None:
        workers = 1 if len(jobs) <= 1500 else min(os.cpu_count() or 1, 8)
    chunks = [(str(root), jobs[i : i + CHUNK], size, seed, preset) for i in range(0, len(jobs), CHUNK)]
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (
        TextColumn(f"[bold]{preset}[/bold] rendering"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, disable=not progress, transient=True) as bar:
        task = bar.add_task("render", total=len(jobs))
        if workers <= 1:
            for c in chunks:
                bar.advance(task, _render_chunk(c))
        else:
            with worker_pool(workers) as pool:
                for done in pool.map(_render_chunk, chunks):
                    bar.advance(task, done)


def _sidecar(jobs: list[ImageJob], seed: int) -> dict:
    out = {}
    people: dict[tuple[str, int], dict] = {}
    for j in jobs:
        if (j.pool, j.index) not in people:
            people[(j.pool, j.index)] = identity_for(j.pool, seed, j.index).to_dict()
        entry = {
            "pid": j.pid,
            "camera": j.camera,
            "split": j.split,
            "viewpoint": j.view,
            "identity": people[(j.pool, j.index)],
            "pa100k": j.labels,
            "attribute_string": j.attribute_string,
            "captions": j.captions,
            "phrase_spans": j.spans,
        }
        if j.junk:
            entry["junk"] = True
        if j.occluded:
            entry["occluded"] = True
        if j.partial:
            entry["partial"] = True
        if j.mask_relpath:
            entry["mask"] = j.mask_relpath
        if j.prompt is not None:
            entry["prompt_caption"] = j.prompt
            entry["prompt_phrase_spans"] = j.prompt_spans
        out[j.relpath] = entry
    return out


def generate(
    preset: str,
    out: Path | str,
    *,
    identities: int | None = None,
    images_per_id: int | None = None,
    seed: int = 0,
    layout: str | None = None,
    image_size: tuple[int, int] = (128, 64),
    workers: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    atomic: bool = True,
) -> dict:
    """Generate the synthetic dataset ``preset`` under ``out`` and return its manifest.

    ``identities`` / ``images_per_id`` override the preset sizes; ``layout`` picks the on-disk
    layout (default: the preset's); ``image_size`` is (H, W). Raises :class:`ConfigError` for bad
    arguments or a non-empty ``out`` that is not a synth copy of the same arguments (unless
    ``overwrite``). Nothing is written outside ``out`` but its staging sibling; JSON / .mat files
    are written atomically and the manifest last. The copy is built in the staging sibling and moved
    into ``out`` when complete (see the module docstring); an ``OSError`` (full disk, read-only
    folder) is a :class:`~plipbench.errors.DataError` and leaves ``out`` as it was. ``atomic=False``
    writes straight into ``out``, for a caller that stages the copy itself (the cache,
    :mod:`plipbench.data.synthetic_cache`).
    """

    p, layout, n, k, size = _check_arguments(preset, layout, identities, images_per_id, image_size)
    out = Path(out)
    arguments = config_arguments(p, layout, n, k, size, seed)
    if not atomic:
        return _write_copy(out, p, layout, n, k, size, seed, arguments, workers, progress)
    ours = _check_out(out, arguments, overwrite)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        sweep_stale(out.parent)
        stage = staging_dir(out)
    except OSError as err:
        raise DataError(out, f"cannot create the output's folder or a staging folder next to it ({err})") from None
    try:
        manifest = _write_copy(stage, p, layout, n, k, size, seed, arguments, workers, progress)
        _publish(stage, out, ours, arguments)
    except OSError as err:  # full disk, read-only folder: nothing half-written is left in out
        raise DataError(out, f"cannot write the synthetic copy: {err.strerror or err}") from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return manifest


def _write_copy(out: Path, p: SynthPreset, layout: str, n: int, k: int, size: tuple[int, int], seed: int,
                arguments: dict, workers: int | None, progress: bool) -> dict:
    """Write the whole copy into ``out`` (created if needed), the manifest last; returns the manifest."""
    from plipbench import __version__
    from plipbench.data.readers.parsing import LIP_CLASSES, PASCAL_CLASSES
    from plipbench.data.records import PersonDataset
    from plipbench.data.synth.parts import CONVENTIONS
    from plipbench.data.synth.vocab import PA100K_ATTRIBUTES
    from plipbench.io import atomic_write_json

    out.mkdir(parents=True, exist_ok=True)
    if p.task == "person-search":
        return _write_search_copy(out, p, layout, n, k, size, seed, arguments)
    jobs = plan(p, layout, n, k, seed)
    render_jobs(out, jobs, size, seed, p.name, workers=workers, progress=progress)
    write_annotations(out, jobs, layout)
    atomic_write_json(out / SIDECAR, _sidecar(jobs, seed), indent=None)
    reader_layout = READER_LAYOUTS.get(layout, layout)
    parsing = layout in PARSING_LAYOUTS
    dataset = PersonDataset(
        name=p.name, layout=reader_layout, root=out, records=to_records(out, jobs, layout),
        attribute_names=list(PA100K_ATTRIBUTES) if layout in ("pa100k", "peta-zs", "rap-zs") else None,
        class_names=(list(PASCAL_CLASSES) if layout == "pascal-person-part" else list(LIP_CLASSES)) if parsing
        else None,
    )  # fmt: skip
    manifest = {
        "generator": "plipbench",
        "plipbench_version": __version__,
        "preset": p.name,
        "layout": reader_layout,
        **({"written_as": layout} if reader_layout != layout else {}),
        "seed": int(seed),
        "identities": n,
        "images_per_id": k,
        "image_size": [size[0], size[1]],
        "arguments": arguments,
        "config_hash": config_hash(arguments),
        "splits": dataset.summary(),
        "files": len(jobs) * (2 if parsing else 1),  # image files on disk (parsing: the PNG label maps too)
        "sidecar": SIDECAR,
    }
    if parsing:
        manifest["classes"] = dataset.class_names
        manifest["part_labels"] = dict(CONVENTIONS)
    atomic_write_json(out / MANIFEST, manifest)
    return manifest


def _write_search_copy(out: Path, p: SynthPreset, layout: str, n: int, k: int, size: tuple[int, int], seed: int,
                       arguments: dict) -> dict:
    """A person-search copy (:mod:`plipbench.data.synth.search`): multi-person frames; ``size`` is the largest
    person's (H, W), the frames are 1.5 H x 3 H."""
    from plipbench import __version__
    from plipbench.data.synth.search import write_search_copy
    from plipbench.io import atomic_write_json

    summary, files, details = write_search_copy(out, p, layout, n, k, seed, size)
    manifest = {
        "generator": "plipbench", "plipbench_version": __version__, "preset": p.name, "layout": layout,
        "seed": int(seed), "identities": n, "images_per_id": k, "image_size": [size[0], size[1]],
        "arguments": arguments, "config_hash": config_hash(arguments), "splits": summary, "files": files,
        "person_search": details,
    }  # fmt: skip
    atomic_write_json(out / MANIFEST, manifest)
    return manifest

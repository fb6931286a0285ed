"""Validate a local dataset copy: readable annotations, every image present and decodable, the right sizes.

A real copy is compared with the official split sizes of its layout
(:meth:`ReaderInfo.expected_sizes`). A synthetic copy (``ROOT/plipbench_synth_manifest.json`` present,
written by ``plipbench data synth``) is checked for internal consistency and against its manifest
instead: :meth:`PersonDataset.summary` must equal ``manifest["splits"]``, the number of image files on
disk must equal ``manifest["files"]``, the layout must match, every split must be non-empty, and
identities must be disjoint where the layout promises it (ReID: train vs query / gallery; text: train
vs val / test).

A person-search copy (``cuhk-sysu``, ``prw``) has every box checked against its frame's size (a box reaching out of
its frame is a problem naming the annotation file) and every query's frame must be a gallery image.

A parsing copy also has every label map checked: present, decodable as an 8-bit single-channel (or palette)
PNG, the size of its image, and holding only class ids of the label set or 255 (ignore).

Every problem is collected (not just the first); per-file problems (missing, undecodable) are reported
as one line per kind with the count and the first few files, and listed in full in
:attr:`CheckReport.missing_images` / :attr:`CheckReport.unreadable_images`.
"""

from __future__ import annotations

import json
import os
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plipbench.data.images import open_label_map, open_rgb
from plipbench.data.readers import get_reader, read_dataset
from plipbench.data.readers.base import IMAGE_SUFFIXES, require_utf8
from plipbench.data.records import PersonDataset
from plipbench.errors import DataError

MANIFEST_NAME = "plipbench_synth_manifest.json"
QUICK_SAMPLE = 32  # images decoded with quick=True
EXAMPLES = 5  # files named per problem line
COUNT_KEYS = ("images", "identities", "captions", "cameras")


@dataclass
class CheckReport:
    """Outcome of :func:`check_dataset`. ``ok`` is ``True`` iff ``problems`` is empty."""

    layout: str
    root: Path
    ok: bool
    problems: list[str]
    summary: dict[str, dict[str, int]]
    expected: dict[str, dict[str, int]]
    synthetic: bool
    options: dict[str, Any] = field(default_factory=dict)
    missing_images: list[Path] = field(default_factory=list)
    unreadable_images: list[tuple[Path, str]] = field(default_factory=list)
    decoded: int = 0
    bad_masks: list[tuple[Path, str]] = field(default_factory=list)  # parsing: missing or invalid label maps


def mask_problem(image: Path, mask: Path, num_classes: int) -> str | None:
    """``None`` when the label map ``mask`` of ``image`` is valid (see the module docstring), else why not."""
    import numpy as np

    if not os.path.isfile(mask):
        return "label map missing"
    try:
        labels = open_label_map(mask)
        with open_rgb(image) as img:
            size = (img.height, img.width)
    except DataError as err:
        return err.problem
    if labels.shape != size:
        return f"label map is {labels.shape[1]}x{labels.shape[0]}, its image {size[1]}x{size[0]}"
    bad = np.setdiff1d(np.unique(labels), [*range(num_classes), 255])
    if bad.size:
        return f"label value(s) {bad[:5].tolist()} outside 0..{num_classes - 1} and 255 (ignore)"
    return None


def decode_problem(path: Path) -> str | None:
    """``None`` when the image at ``path`` fully decodes within plipbench's pixel limit, else why not
    (see :func:`plipbench.data.images.open_rgb`, the decoder every stage uses)."""
    try:
        open_rgb(path)
    except DataError as err:
        return err.problem
    return None


def _examples(paths: list[Path], root: Path) -> str:
    def rel(p: Path) -> str:
        try:
            return str(p.relative_to(root))
        except ValueError:
            return str(p)

    shown = ", ".join(rel(p) for p in paths[:EXAMPLES])
    return shown + (", ..." if len(paths) > EXAMPLES else "")


def _compare(summary: dict, expected: dict, what: str) -> list[str]:
    problems = []
    for split, counts in expected.items():
        got = summary.get(split)
        if got is None:
            problems.append(f"split {split!r} missing ({what}: {counts})")
            continue
        for key in COUNT_KEYS:
            if key in counts and got.get(key) != counts[key]:
                problems.append(f"split {split!r}: {got.get(key)} {key}, {what} {counts[key]}")
    for split in summary:
        if split not in expected:
            problems.append(f"split {split!r} present ({summary[split]['images']} images) but not in the {what} splits")
    return problems


SYNTH_PREVIEW = "preview.png"  # the contact sheet `plipbench data synth --preview` writes at the root
COUNTED_SUFFIXES = (*IMAGE_SUFFIXES, ".tif", ".tiff")  # .tif: the raw Occluded-REID layout


def _count_image_files(root: Path) -> int:
    """Image files under ``root``, not counting the generator's contact sheet at the root."""
    n = 0
    for directory, _subdirs, files in os.walk(root):
        at_root = Path(directory) == Path(root)
        n += sum(1 for f in files if f.lower().endswith(COUNTED_SUFFIXES) and not (at_root and f == SYNTH_PREVIEW))
    return n


def _disjoint_problems(dataset: PersonDataset, kind: str) -> list[str]:
    if kind == "reid":
        pairs = [("train", "query"), ("train", "gallery")]
    elif kind == "text":
        pairs = [("train", "test"), ("train", "val"), ("val", "test")]
    else:
        return []
    ids = {s: {r.pid for r in dataset.split(s)} for s in ("train", "val", "test", "query", "gallery")}
    problems = []
    for a, b in pairs:
        shared = ids[a] & ids[b] - {0}  # pid 0 = gallery distractor
        if shared:
            problems.append(f"identities shared by {a} and {b}: {len(shared)} (e.g. {sorted(shared)[:EXAMPLES]})")
    if kind == "reid":
        lost = ids["query"] - ids["gallery"]
        if lost:
            problems.append(f"{len(lost)} query identities have no gallery image (e.g. {sorted(lost)[:EXAMPLES]})")
    return problems


def _synthetic_problems(layout: str, root: Path, manifest_path: Path, dataset: PersonDataset | None,
                        summary: dict, required: tuple[str, ...], kind: str) -> tuple[list[str], dict]:
    problems: list[str] = []
    try:
        with open(manifest_path, encoding="utf-8") as fh:
            manifest = json.load(fh)
    except (OSError, json.JSONDecodeError) as err:
        return [f"{manifest_path}: unreadable synthetic manifest ({err})"], {}
    if not isinstance(manifest, dict):
        return [f"{manifest_path}: expected a JSON object"], {}
    if manifest.get("layout") != layout:
        problems.append(f"manifest layout is {manifest.get('layout')!r}, checked as {layout!r}")
    expected = manifest.get("splits")
    if not isinstance(expected, dict):
        problems.append(f"{manifest_path}: no 'splits' object")
        expected = {}
    if dataset is not None:
        problems += _compare(summary, expected, "manifest")
        files = manifest.get("files")
        on_disk = _count_image_files(root)
        if files != on_disk:
            problems.append(f"{on_disk} image files on disk, manifest says {files}")
        problems += _disjoint_problems(dataset, kind)
    for split in required:
        if summary.get(split, {}).get("images", 0) == 0 and dataset is not None:
            problems.append(f"split {split!r} is empty")
    for split, counts in expected.items():
        if isinstance(counts, dict) and counts.get("images", 0) == 0:
            problems.append(f"manifest split {split!r} is empty")
    return problems, expected


def check_dataset(layout: str, root: str | Path, *, quick: bool = False, **reader_options: Any) -> CheckReport:
    """Check the ``layout`` copy at ``root``; see the module docstring for what is checked.

    ``quick=True`` decodes a fixed random sample of :data:`QUICK_SAMPLE` images (seed 0) instead of all;
    every image is still checked for presence. Decoding runs in a thread pool (PIL releases the GIL).
    An unknown layout raises :class:`~plipbench.errors.ConfigError` and a missing root
    :class:`~plipbench.errors.DataError`; every other problem, including a reader error, goes into the
    report.
    """
    info = get_reader(layout)
    root = Path(root).expanduser()
    require_utf8(None, str(root), "dataset root")  # the report prints it
    if not root.is_dir():
        raise DataError(root, f"{layout} dataset root does not exist" if not root.exists() else "not a directory")
    problems: list[str] = []
    dataset: PersonDataset | None = None
    try:
        dataset = read_dataset(layout, root, **reader_options)
    except DataError as err:
        problems.append(str(err))
    summary = dataset.summary() if dataset is not None else {}
    options = dict(dataset.options) if dataset is not None else {**info.options, **reader_options}
    data_root = dataset.root if dataset is not None else root
    manifest_path = next((p / MANIFEST_NAME for p in (root, data_root) if (p / MANIFEST_NAME).is_file()), None)
    synthetic = manifest_path is not None

    if synthetic:
        assert manifest_path is not None
        extra, expected = _synthetic_problems(layout, manifest_path.parent, manifest_path, dataset, summary,
                                              info.required_splits, info.kind)
        problems += extra
    else:
        expected = info.expected_sizes(options)
        if dataset is not None and expected:  # empty: the official sizes are not known (PETA_ZS, RAP_ZS)
            problems += _compare(summary, expected, "official")
        names = getattr(dataset, "attribute_names", None)  # a person-search dataset has none
        count = info.attribute_count
        if names is not None and count is not None and options.get("attributes", "eval") == "eval" and len(names) != count:
            problems.append(f"{len(names)} evaluated attributes, official {count}")

    report = CheckReport(layout=layout, root=data_root, ok=False, problems=problems, summary=summary,
                         expected=expected, synthetic=synthetic, options=options)
    if dataset is not None:
        _check_images(dataset, report, quick)
        if info.kind == "person-search":
            _check_scenes(dataset, report)
    report.ok = not report.problems
    return report


def _image_paths(dataset: Any) -> list[Path]:
    if isinstance(dataset, PersonDataset):
        return list(dict.fromkeys(r.image_path for r in dataset.records))
    scenes = [*dataset.train, *dataset.gallery, *dataset.queries]
    return list(dict.fromkeys(s.image_path for s in scenes))


def _annotation_file(dataset: Any, scene: Any) -> Path:
    if dataset.layout == "prw":
        return Path(dataset.root) / "annotations" / f"{scene.name}.mat"
    return Path(dataset.root) / "annotation" / "Images.mat"


def _outside(box: Any, width: int, height: int) -> bool:
    x1, y1, x2, y2 = (float(v) for v in box)
    return x1 < 0 or y1 < 0 or x2 > width or y2 > height


def _check_scenes(dataset: Any, report: CheckReport) -> None:
    """Person search: every box inside its frame, every query's frame in the gallery."""
    from PIL import Image

    sizes: dict[Path, tuple[int, int]] = {}
    for path in _image_paths(dataset):
        try:
            with Image.open(path) as img:  # the header only
                sizes[path] = img.size
        except (OSError, ValueError):
            continue  # missing or undecodable: reported by _check_images
    bad: list[tuple[Path, str]] = []
    for scene in [*dataset.train, *dataset.gallery]:
        size = sizes.get(scene.image_path)
        if size is None:
            continue
        for box in scene.boxes:
            if _outside(box, *size):
                bad.append((_annotation_file(dataset, scene), f"image {scene.name} ({size[0]}x{size[1]}): box "
                                                               f"[x1, y1, x2, y2] {[round(float(v), 2) for v in box]}"))
    query_file = Path(dataset.root) / ("query_info.txt" if dataset.layout == "prw" else
                                       "annotation/test/train_test/TestG50.mat")
    for i, q in enumerate(dataset.queries):
        size = sizes.get(q.image_path)
        if size is not None and _outside(q.box, *size):
            bad.append((query_file, f"query {i + 1} in image {q.name} ({size[0]}x{size[1]}): box [x1, y1, x2, y2] "
                                    f"{[round(float(v), 2) for v in q.box]}"))
    if bad:
        first_file, first_what = bad[0]
        report.problems.append(f"{first_file}: {len(bad)} box(es) reach out of their frame (first: {first_what})")
    missing = [(i, q) for i, q in enumerate(dataset.queries) if q.gallery_index < 0]
    if missing:
        i, q = missing[0]
        report.problems.append(f"{query_file}: {len(missing)} query frame(s) not in the gallery (first: query "
                               f"{i + 1}, image {q.name}, not in annotation/pool.mat)")


def _check_images(dataset: PersonDataset, report: CheckReport, quick: bool) -> None:
    paths = _image_paths(dataset)
    present = []
    for p in paths:
        if os.path.isfile(p):
            present.append(p)
        else:
            report.missing_images.append(p)
    if report.missing_images:
        report.problems.append(f"{len(report.missing_images)} of {len(paths)} image files missing: "
                               f"{_examples(report.missing_images, dataset.root)}")
    to_decode = present
    if quick and len(present) > QUICK_SAMPLE:
        to_decode = random.Random(0).sample(present, QUICK_SAMPLE)
    workers = max(1, min(8, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(decode_problem, to_decode, chunksize=64))
    report.decoded = len(to_decode)
    if getattr(dataset, "class_names", None):
        with_masks = [r for r in dataset.records if r.mask_path is not None]
        if quick and len(with_masks) > QUICK_SAMPLE:
            with_masks = random.Random(0).sample(with_masks, QUICK_SAMPLE)
        c = len(dataset.class_names)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            why = list(pool.map(lambda r: mask_problem(r.image_path, r.mask_path, c), with_masks, chunksize=64))
        report.bad_masks = [(r.mask_path, w) for r, w in zip(with_masks, why, strict=True) if w is not None]
        if report.bad_masks:
            first_path, first_why = report.bad_masks[0]
            report.problems.append(
                f"{len(report.bad_masks)} of {len(with_masks)} label maps invalid: "
                f"{_examples([p for p, _ in report.bad_masks], dataset.root)} (first: {first_why})")
    report.unreadable_images = [(p, why) for p, why in zip(to_decode, results, strict=True) if why is not None]
    if report.unreadable_images:
        first_path, first_why = report.unreadable_images[0]
        report.problems.append(
            f"{len(report.unreadable_images)} of {len(to_decode)} decoded images unreadable: "
            f"{_examples([p for p, _ in report.unreadable_images], dataset.root)} (first: {first_why})")

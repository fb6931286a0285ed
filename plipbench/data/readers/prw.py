"""PRW (Person Re-identification in the Wild) person search: frames, per-frame annotations and the queries.

The layout and reading rules are SeqNet's (``datasets/prw.py``; ``../shared/reference/more-tasks.md`` §1.2)::

    PRW-v16.04.20/
      frames/c1s1_000151.jpg ...               6 cameras, c1 .. c6
      annotations/c1s1_000151.jpg.mat          'box_new' (else 'anno_file', else 'anno_previous'):
                                               rows [id, x, y, w, h]; id -2 = identity unknown
      frame_train.mat   'img_index_train'      cell of frame names without '.jpg'
      frame_test.mat    'img_index_test'
      query_info.txt                           "pid x y w h frame" per line (frame without '.jpg'), CRLF

* Lines of ``query_info.txt`` are stripped of their line ending (SeqNet cuts two characters, which works only
  with CRLF); the frame of every query must be a test frame.
* The camera is the digit after ``c`` in the frame name, stored 0-based.
* Id -2 becomes :data:`UNLABELED`; other ids must be non-negative integers.
* Boxes: some coordinates are negative. By default a box is converted to ``[x1, y1, x2, y2]`` first and then
  clipped at 0, so it is cut at the image border, and a box left without area is dropped (``dropped_boxes``).
  ``seqnet_boxes=True`` reproduces SeqNet: annotation boxes are clipped in ``[x, y, w, h]`` form (a negative
  ``x`` *moves* the box right, keeping its width), queries after conversion, and every box is truncated to
  an integer.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from plipbench.data.readers.base import (
    ReaderInfo,
    SafeJoiner,
    load_mat,
    locate_root,
    mat_require,
    mat_strings,
    require_dir,
    require_utf8,
    text_lines,
)
from plipbench.data.readers.person_search import (
    UNLABELED,
    PersonSearchDataset,
    SceneImage,
    SearchQuery,
    to_xyxy,
)
from plipbench.errors import DataError

CANDIDATES = ("PRW-v16.04.20", "PRW", "prw", "PRW-v16.04.20/PRW-v16.04.20")
SPLIT_FILES = (("train", "frame_train.mat", "img_index_train"), ("gallery", "frame_test.mat", "img_index_test"))
BOX_KEYS = ("box_new", "anno_file", "anno_previous")
CAMERA = re.compile(r"c(\d)")


def _is_prw(path: Path) -> bool:
    return (path / "frame_test.mat").is_file() and (path / "annotations").is_dir()


def _camera(path: Path, name: str) -> int:
    m = CAMERA.search(name)
    if m is None:
        raise DataError(path, f"frame {name}: no camera in the name (expected c<digit>, e.g. c1s1_000151)")
    return int(m.group(1)) - 1


def _frame_names(where: Path, file: str, key: str) -> list[str]:
    path = where / file
    mat = load_mat(path)
    mat_require(path, mat, [key])
    names = mat_strings(path, key, mat[key])
    for n, name in enumerate(names):
        require_utf8(path, name, f"{key}({n + 1})")
        if not name:
            raise DataError(path, f"{key}({n + 1}): empty frame name")
    if len(set(names)) != len(names):
        raise DataError(path, f"{key}: a frame is listed twice")
    return [f"{name}.jpg" for name in names]


def _frame_boxes(path: Path, seqnet_boxes: bool) -> tuple[np.ndarray, np.ndarray, int]:
    mat = load_mat(path)
    key = next((k for k in BOX_KEYS if k in mat), None)
    if key is None:
        found = sorted(k for k in mat if not k.startswith("__"))
        raise DataError(path, f"missing field box_new (or anno_file, anno_previous); found {', '.join(found) or 'none'}")
    try:
        rows = np.asarray(mat[key], dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(path, f"field {key}: expected a numeric matrix of rows [id, x, y, w, h]") from None
    if rows.size == 0:
        return np.zeros((0, 4)), np.zeros(0, dtype=np.int64), 0
    if rows.ndim != 2 or rows.shape[1] != 5 or not np.all(np.isfinite(rows)):
        raise DataError(path, f"field {key}: expected finite rows [id, x, y, w, h] (k x 5), got shape {rows.shape}")
    ids = rows[:, 0]
    if np.any(ids != np.round(ids)) or np.any((ids < 0) & (ids != -2)):
        bad = ids[(ids != np.round(ids)) | ((ids < 0) & (ids != -2))][0]
        raise DataError(path, f"field {key}: id {bad:g} is not a person id (expected an integer >= 0, or -2 for "
                              f"an unknown identity)")
    pids = np.where(ids == -2, UNLABELED, ids).astype(np.int64)
    if seqnet_boxes:
        boxes = np.trunc(to_xyxy(np.clip(rows[:, 1:], 0, None)))
    else:
        boxes = np.clip(to_xyxy(rows[:, 1:]), 0, None)
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return boxes[keep], pids[keep], int((~keep).sum())


def _queries(where: Path, frames: dict[str, int], seqnet_boxes: bool, joiner: SafeJoiner) -> list[SearchQuery]:
    path = where / "query_info.txt"
    queries = []
    for lineno, line in text_lines(path):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 6:
            raise DataError(path, f"line {lineno}: expected 6 fields 'pid x y w h frame', got {len(fields)}")
        try:
            pid = int(fields[0])
            x, y, w, h = (float(v) for v in fields[1:5])
        except ValueError:
            raise DataError(path, f"line {lineno}: expected an integer pid and 4 numbers x y w h, got "
                                  f"{' '.join(fields[:5])!r}") from None
        if pid < 0 or not all(np.isfinite([x, y, w, h])) or w <= 0 or h <= 0:
            raise DataError(path, f"line {lineno}: expected a pid >= 0 and a box with w > 0 and h > 0, got "
                                  f"{' '.join(fields[:5])!r}")
        box = np.array([x, y, x + w, y + h])
        box = np.clip(np.trunc(box) if seqnet_boxes else box, 0, None)
        name = require_utf8(path, fields[5], f"line {lineno}: frame") + ".jpg"
        if name not in frames:
            raise DataError(path, f"line {lineno}: query frame {fields[5]} is not a test frame (frame_test.mat)")
        queries.append(SearchQuery(name=name, image_path=joiner.join(name, f"line {lineno}: frame"), box=box,
                                   pid=pid, camid=_camera(path, name), gallery_index=frames[name]))
    if not queries:
        raise DataError(path, "no query (expected lines 'pid x y w h frame')")
    return queries


def read_prw(root: str | Path, *, seqnet_boxes: bool = False) -> PersonSearchDataset:
    """PRW train / gallery (test) frames with their boxes, and the 2,057 queries; see the module docstring."""
    where = locate_root("prw", root, CANDIDATES, _is_prw, "frame_test.mat and annotations/")
    annotations = require_dir(where / "annotations", "PRW annotations")
    frames_joiner = SafeJoiner(where / "frames", where / "frame_test.mat")
    anno_joiner = SafeJoiner(annotations, where / "frame_test.mat")
    splits: dict[str, list[SceneImage]] = {}
    dropped = 0
    for split, file, key in SPLIT_FILES:
        scenes = []
        for name in _frame_names(where, file, key):
            anno = anno_joiner.join(f"{name}.mat", f"{file}: annotation of frame {name}")
            if not anno.is_file():
                raise DataError(anno, f"annotation of frame {name} ({file}) not found")
            boxes, pids, lost = _frame_boxes(anno, seqnet_boxes)
            dropped += lost
            scenes.append(SceneImage(name=name, image_path=frames_joiner.join(name, f"frame {name}"), boxes=boxes,
                                     pids=pids, camid=_camera(where / file, name)))
        splits[split] = scenes
    frames = {s.name: i for i, s in enumerate(splits["gallery"])}
    queries = _queries(where, frames, seqnet_boxes, SafeJoiner(where / "frames", where / "query_info.txt"))
    return PersonSearchDataset(name="PRW", layout="prw", root=where, train=splits["train"],
                               gallery=splits["gallery"], queries=queries, dropped_boxes=dropped,
                               options={"seqnet_boxes": bool(seqnet_boxes)})


PRW_TREE = """
PRW-v16.04.20/
  frames/c1s1_000151.jpg ...                   6 cameras
  annotations/c1s1_000151.jpg.mat              box_new: rows [id, x, y, w, h], id -2 = unknown identity
  frame_train.mat, frame_test.mat              frame names of each split
  query_info.txt                               "pid x y w h frame" per query (CRLF)
"""

INFOS = (
    ReaderInfo(
        name="prw",
        description="PRW person search: frames of 6 cameras with every person boxed, 2,057 queries; the gallery of "
                    "a query is every test frame but its own.",
        reader=read_prw,
        tree=PRW_TREE,
        split_sizes={"train": {"images": 5704, "identities": 482}, "gallery": {"images": 6112},
                     "query": {"images": 2057}},
        folder_names=CANDIDATES,
        marker=_is_prw,
        kind="person-search",
        required_splits=("train", "gallery", "query"),
        options={"seqnet_boxes": False},
    ),
)

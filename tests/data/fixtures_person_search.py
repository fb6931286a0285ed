"""Tiny CUHK-SYSU and PRW copies in their official structures, written with scipy.io.savemat.

The MATLAB nesting is the real files' (structs as NumPy structured arrays of object fields, cells as object
arrays), so the readers' ``[0, 0]``-style unwrapping is exercised as on a real download.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io
from fixtures_readers import cell, write_image


def struct(fields: list[str], rows: list[tuple]) -> np.ndarray:
    """A MATLAB 1 x N struct array with the given fields."""
    out = np.empty((1, len(rows)), dtype=[(f, "O") for f in fields])
    for i, row in enumerate(rows):
        for f, value in zip(fields, row, strict=True):
            out[0, i][f] = value
    return out


def box(*xywh: float) -> np.ndarray:
    return np.array([xywh], dtype=np.float64) if xywh else np.zeros((0, 0))


# ---------------------------------------------------------------------------------------------- CUHK-SYSU

CUHK_BOXES = {  # [x, y, w, h]; s1..s5 are test images (pool), s6, s7 train
    "s1.jpg": [(10, 20, 30, 60), (50, 20, 30, 60), (0, 0, 0, 10)],  # the last has no width: dropped
    "s2.jpg": [(12, 22, 30, 60), (60, 10, 20, 40)],
    "s3.jpg": [(5, 5, 8, 16)],
    "s4.jpg": [(70, 5, 30, 60), (1, 1, 8, 16)],
    "s5.jpg": [(40, 40, 20, 50)],
    "s6.jpg": [(3, 4, 20, 50), (30, 4, 20, 50)],
    "s7.jpg": [(3, 4, 22, 52), (40, 4, 20, 50)],
}
CUHK_POOL = ["s1.jpg", "s2.jpg", "s3.jpg", "s4.jpg", "s5.jpg"]
CUHK_TRAIN = [[("s6.jpg", (3, 4, 20, 50)), ("s7.jpg", (3, 4, 22, 52))], [("s7.jpg", (40, 4, 20, 50))]]
CUHK_QUERIES = [("s1.jpg", (10, 20, 30, 60)), ("s3.jpg", (5, 5, 8, 16))]
CUHK_GALLERIES = {  # per gallery size, per query: (image, target [x, y, w, h] or ()); targets first, as in the files
    50: [[("s2.jpg", (12, 22, 30, 60)), ("s4.jpg", (70, 5, 30, 60)), ("s5.jpg", ())],
         [("s4.jpg", (1, 1, 8, 16)), ("s1.jpg", ()), ("s2.jpg", ())]],
    100: [[("s2.jpg", (12, 22, 30, 60)), ("s4.jpg", (70, 5, 30, 60)), ("s5.jpg", ()), ("s3.jpg", ())],
          [("s4.jpg", (1, 1, 8, 16)), ("s1.jpg", ()), ("s2.jpg", ()), ("s5.jpg", ())]],
}
# reader output: pids per image (test: query index + 1; train: Train.mat position + 1; -1 unlabeled)
CUHK_PIDS = {"s1.jpg": [1, -1], "s2.jpg": [1, -1], "s3.jpg": [2], "s4.jpg": [1, 2], "s5.jpg": [-1],
             "s6.jpg": [1, -1], "s7.jpg": [1, 2]}


def write_testg(root: Path, size: int, galleries, queries=CUHK_QUERIES) -> Path:
    rows = []
    for (qname, qbox), gallery in zip(queries, galleries, strict=True):
        query = struct(["imname", "idlocate", "ishard", "idname"], [(qname, box(*qbox), box(0), "p00001")])
        entries = struct(["imname", "idlocate", "ishard"], [(name, box(*b), box(0)) for name, b in gallery])
        rows.append((query, entries))
    path = root / "annotation" / "test" / "train_test" / f"TestG{size}.mat"
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, {f"TestG{size}": struct(["Query", "Gallery"], rows)})
    return path


def make_cuhk_sysu(root: Path, boxes=CUHK_BOXES, galleries=CUHK_GALLERIES) -> Path:
    (root / "annotation").mkdir(parents=True, exist_ok=True)
    images = []
    for name, bs in boxes.items():
        entries = struct(["idlocate", "ishard"], [(box(*b), box(0)) for b in bs])
        images.append((name, box(len(bs)), entries))
        write_image(root / "Image" / "SSM" / name)
    scipy.io.savemat(root / "annotation" / "Images.mat", {"Img": struct(["imname", "nAppear", "box"], images)})
    scipy.io.savemat(root / "annotation" / "pool.mat", {"pool": cell(CUHK_POOL)})
    train = np.empty((len(CUHK_TRAIN), 1), dtype=object)
    for k, scenes in enumerate(CUHK_TRAIN):
        scene = struct(["imname", "idlocate", "ishard"], [(n, box(*b), box(0)) for n, b in scenes])
        train[k, 0] = struct(["idname", "nAppear", "scene"], [(f"p{k + 1:05d}", box(len(scenes)), scene)])
    (root / "annotation" / "test" / "train_test").mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(root / "annotation" / "test" / "train_test" / "Train.mat", {"Train": train})
    for size, gal in galleries.items():
        write_testg(root, size, gal)
    return root


# ---------------------------------------------------------------------------------------------- PRW

PRW_FRAMES = {  # frame -> (annotation key, rows [id, x, y, w, h])
    "c1s1_000001": ("box_new", [[7, 10, 20, 30, 60], [-2, 50, 20, 30, 60]]),
    "c2s1_000002": ("anno_file", [[7, -5, 10, 30, 60], [3, 100, 10, 20, 40]]),
    "c3s1_000003": ("anno_previous", [[3, 10.6, 10.2, 20.5, 40.5]]),
    "c1s2_000100": ("box_new", [[1, 0, 0, 10, 20]]),
}
PRW_TEST = ["c1s1_000001", "c2s1_000002", "c3s1_000003"]
PRW_TRAIN = ["c1s2_000100"]
PRW_QUERY_LINES = ["7 10 20 30 60 c1s1_000001", "3 100 10 20 40 c2s1_000002"]


def make_prw(root: Path, frames=PRW_FRAMES, query_lines=PRW_QUERY_LINES, newline: str = "\r\n") -> Path:
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    for name, (key, rows) in frames.items():
        scipy.io.savemat(root / "annotations" / f"{name}.jpg.mat", {key: np.array(rows, dtype=np.float64)})
        write_image(root / "frames" / f"{name}.jpg")
    scipy.io.savemat(root / "frame_test.mat", {"img_index_test": cell(PRW_TEST)})
    scipy.io.savemat(root / "frame_train.mat", {"img_index_train": cell(PRW_TRAIN)})
    (root / "query_info.txt").write_bytes("".join(line + newline for line in query_lines).encode())
    return root

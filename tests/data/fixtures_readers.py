"""Tiny copies of every real dataset layout, written by the tests into a temporary folder.

Each ``make_*`` writes a layout exactly as the real download looks (folder names, file names, JSON keys,
.mat field names and cell / struct shapes) with a handful of images, and returns what a reader should
give back, so tests compare against hand-known records.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image


def write_image(path: Path, color: tuple[int, int, int] = (120, 60, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 16), color).save(path)
    return path


def cell(items: list) -> np.ndarray:
    """A MATLAB N x 1 cell array (savemat writes object arrays as cells, dicts as structs)."""
    out = np.empty((len(items), 1), dtype=object)
    for i, item in enumerate(items):
        out[i, 0] = item
    return out


# ---------------------------------------------------------------------------------------------- ReID

MARKET_FILES = {
    "bounding_box_train": ["0002_c1s1_000451_03.jpg", "0002_c2s1_000301_01.jpg", "0007_c3s1_000101_02.jpg"],
    "query": ["0001_c1s1_001051_00.jpg", "0003_c6s2_000100_01.jpg"],
    "bounding_box_test": ["-1_c1s1_000401_03.jpg", "0000_c1s1_000901_05.jpg", "0001_c2s1_000201_02.jpg",
                          "0003_c5s1_000300_01.jpg"],
}
# (split, pid, camid) in reader order (sorted by file name within each split; junk dropped)
MARKET_EXPECTED = [
    ("train", 2, 0), ("train", 2, 1), ("train", 7, 2),
    ("query", 1, 0), ("query", 3, 5),
    ("gallery", 0, 0), ("gallery", 1, 1), ("gallery", 3, 4),
]

DUKE_FILES = {
    "bounding_box_train": ["0005_c2_f0046182.jpg", "0005_c8_f0046300.jpg"],
    "query": ["0011_c1_f0100000.jpg"],
    "bounding_box_test": ["0011_c4_f0100500.jpg", "0099_c7_f0000001.jpg"],
}
DUKE_EXPECTED = [("train", 5, 1), ("train", 5, 7), ("query", 11, 0), ("gallery", 11, 3), ("gallery", 99, 6)]


def make_market(root: Path, files: dict[str, list[str]] = MARKET_FILES) -> Path:
    for folder, names in files.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for name in names:
            write_image(root / folder / name)
    return root


MSMT_LISTS = {
    "list_train.txt": ["0000/0000_000_01_0303morning_0015_0.jpg 0", "0001/0001_003_15_0303noon_0100_1.jpg 1"],
    "list_val.txt": ["0001/0001_004_07_0303noon_0200_0.jpg 1"],
    "list_query.txt": ["0000/0000_000_03_0113afternoon_0001_0.jpg 0"],
    "list_gallery.txt": ["0000/0000_001_04_0113morning_0002_0.jpg 0", "0002/0002_000_02_0113noon_0003_0.jpg 2"],
}


def make_msmt17(root: Path, version: str = "V1") -> Path:
    train_dir, test_dir = ("train", "test") if version == "V1" else ("mask_train_v2", "mask_test_v2")
    for list_name, lines in MSMT_LISTS.items():
        image_dir = root / (train_dir if list_name in ("list_train.txt", "list_val.txt") else test_dir)
        for line in lines:
            write_image(image_dir / line.split()[0])
        (root / list_name).write_text("\n".join(lines) + "\n")
    return root


CUHK03_FOLDER_FILES = {
    "bounding_box_train": ["0001_c1_1.png", "0001_c2_6.png"],
    "query": ["0010_c1_2.png"],
    "bounding_box_test": ["0010_c2_8.png", "0011_c1_3.png"],
}


def make_cuhk03_folders(root: Path, variant: str = "labeled") -> Path:
    return make_market(root / variant, CUHK03_FOLDER_FILES)


def make_cuhk03_mat(root: Path, variant: str = "detected") -> Path:
    import scipy.io

    names = ["1_001_1_01.png", "1_001_2_06.png", "2_010_1_01.png", "2_010_2_07.png", "3_011_1_02.png"]
    for name in names:
        write_image(root / f"images_{variant}" / name)
    scipy.io.savemat(root / f"cuhk03_new_protocol_config_{variant}.mat", {
        "filelist": cell(names),
        "labels": np.array([[1], [1], [10], [10], [11]]),
        "camId": np.array([[1], [2], [1], [2], [1]]),
        "train_idx": np.array([[1], [2]]),  # 1-based
        "query_idx": np.array([[3]]),
        "gallery_idx": np.array([[4], [5]]),
    })
    return root


# ---------------------------------------------------------------------------------------------- text

CUHK_PEDES_RECORDS = [
    {"split": "train", "captions": ["a man in red.", "red shirt man."], "file_path": "train_query/p1_s1.jpg",
     "processed_tokens": [["a", "man"], ["red"]], "id": 1},
    {"split": "train", "captions": ["a man in red again."], "file_path": "train_query/p1_s2.jpg",
     "processed_tokens": [["a"]], "id": 1},
    {"split": "val", "captions": ["woman with bag.", "bag woman.", "third caption."], "file_path": "CUHK01/0002.png",
     "processed_tokens": [["w"], ["b"], ["t"]], "id": 2},
    {"split": "test", "captions": ["child in blue.", "blue child."], "file_path": "test_query/p3_s9.jpg",
     "processed_tokens": [["c"], ["b"]], "id": 3},
    {"split": "dev", "captions": ["odd split."], "file_path": "Market/0004_c1s1.jpg",
     "processed_tokens": [["o"]], "id": 4},
]


def make_text_json(root: Path, json_name: str, records: list[dict], path_key: str, image_base: str = "imgs") -> Path:
    for rec in records:
        write_image(root / image_base / rec[path_key] if image_base else root / rec[path_key])
    root.mkdir(parents=True, exist_ok=True)
    (root / json_name).write_text(json.dumps(records))
    return root


ICFG_RECORDS = [
    {"split": "train", "captions": ["man walking."], "file_path": "train/0001/0001_000_01.jpg",
     "processed_tokens": [["man"]], "id": 0},
    {"split": "test", "captions": ["woman standing."], "file_path": "test/0100/0100_001_02.jpg",
     "processed_tokens": [["woman"]], "id": 1},
]

RSTP_RECORDS = [
    {"id": 0, "img_path": "0000_c14_0031.jpg", "captions": ["one.", "two."], "split": "train"},
    {"id": 5, "img_path": "0005_c2_0001.jpg", "captions": ["three.", "four."], "split": "val"},
    {"id": 9, "img_path": "0009_c3_0002.jpg", "captions": ["five.", "six."], "split": "test"},
]

SYNTH_RECORDS = [
    {"id": 7, "file_path": "Part1/7/1.jpg",
     "attributes": ["man,black hair,black shirt,pink shorts,black shoes,unknown"],
     "captions": ["a man with black hair.", "he wears pink shorts."], "prompt_caption": ["a man in a black shirt."]},
    {"id": 8, "file_path": "Part2/8/1.jpg", "attributes": ["woman,unknown,red coat,jeans,boots,handbag"],
     "captions": ["a woman in a red coat.", "she has boots.", "she carries a handbag."],
     "prompt_caption": ["a woman with a handbag."]},
]


# ---------------------------------------------------------------------------------------------- attributes

PA100K_NAMES = [f"attr{i:02d}" for i in range(26)]


def pa100k_labels(n: int, offset: int) -> np.ndarray:
    rng = np.random.default_rng(offset)
    return rng.integers(0, 2, size=(n, 26)).astype(np.uint8)


def make_pa100k(root: Path, image_subdir: str = "data", annotation_subdir: str = "") -> dict[str, np.ndarray]:
    import scipy.io

    sizes = {"train": 3, "val": 1, "test": 2}
    mat: dict[str, object] = {"attributes": cell(PA100K_NAMES)}
    labels: dict[str, np.ndarray] = {}
    k = 1
    for split, n in sizes.items():
        names = [f"{k + i:06d}.jpg" for i in range(n)]
        k += n
        for name in names:
            write_image(root / image_subdir / name)
        labels[split] = pa100k_labels(n, k)
        mat[f"{split}_images_name"] = cell(names)
        mat[f"{split}_label"] = labels[split]
    target = root / annotation_subdir / "annotation.mat" if annotation_subdir else root / "annotation.mat"
    target.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(target, mat)
    return labels


PETA_N, PETA_ATTRS = 6, 40


def make_peta(root: Path) -> np.ndarray:
    """PETA.mat with struct ``peta`` = (data N x (4 + 40), names, (unused), 5 partitions); returns the labels."""
    import scipy.io

    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, size=(PETA_N, PETA_ATTRS))
    data = np.concatenate([np.arange(PETA_N * 4).reshape(PETA_N, 4), labels], axis=1).astype(np.float64)
    parts = cell([
        {"train": np.array([[1], [2], [3]]), "val": np.array([[4]]), "test": np.array([[5], [6]])},
        {"train": np.array([[6], [5]]), "val": np.array([[4]]), "test": np.array([[1], [2], [3]])},
    ] + [{"train": np.array([[1]]), "val": np.array([[2]]), "test": np.array([[3]])}] * 3)
    scipy.io.savemat(root / "PETA.mat", {"peta": {
        "data": data, "attribute": cell([f"peta{i:03d}" for i in range(PETA_ATTRS)]),
        "selected_attribute": np.arange(1, 36).reshape(1, -1), "partition_attribute": parts,
    }})
    for i in range(PETA_N):
        write_image(root / "images" / f"{i + 1:05d}.png")
    return labels


RAPV1_N, RAPV1_ATTRS = 5, 55


def make_rapv1(root: Path) -> np.ndarray:
    import scipy.io

    rng = np.random.default_rng(4)
    labels = rng.integers(0, 3, size=(RAPV1_N, RAPV1_ATTRS))  # includes the value 2
    names = [f"CAM01_2014-02-15_{i:04d}.png" for i in range(RAPV1_N)]
    part = {"trainval": np.array([[1, 3, 4]]), "test": np.array([[2, 5]])}
    (root / "RAP_annotation").mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(root / "RAP_annotation" / "RAP_annotation.mat", {"RAP_annotation": {
            "partion": cell([part] * 5),
            "label": labels.astype(np.float64),
            "attribute_chinese": cell([f"zh{i}" for i in range(RAPV1_ATTRS)]),
            "attribute_eng": cell([f"rap{i:02d}" for i in range(RAPV1_ATTRS)]),
            "position": np.zeros((RAPV1_N, 12)),
            "imagesname": cell(names),
            "attribute_exp": cell([f"exp{i}" for i in range(RAPV1_ATTRS)]),
        }})
    for name in names:
        write_image(root / "RAP_dataset" / name)
    return labels


RAPV2_N, RAPV2_ATTRS = 6, 10
RAPV2_SELECTED = [3, 1, 7]  # 1-based, deliberately not sorted


def make_rapv2(root: Path, identities: bool = True) -> np.ndarray:
    import scipy.io

    rng = np.random.default_rng(5)
    labels = rng.integers(0, 3, size=(RAPV2_N, RAPV2_ATTRS))
    names = [f"CAM{i:02d}-2013-12-23-20131223120147-20131223120735-tarid{i}-frame1-line1.png" for i in range(RAPV2_N)]
    part = {"train_index": np.array([[1, 2, 3]]), "val_index": np.array([[4]]), "test_index": np.array([[5, 6]])}
    fields = {
        "name": cell(names),
        "data": labels.astype(np.float64),
        "attribute": cell([f"v2attr{i}" for i in range(RAPV2_ATTRS)]),
        "selected_attribute": np.array([RAPV2_SELECTED]),
        "partition_attribute": cell([part] * 5),
        "partition_reid": cell([np.zeros((1, 1))]),
    }
    if identities:
        fields["person_identity"] = np.array([[10], [10], [-1], [11], [-1], [12]])
    (root / "RAP_annotation").mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(root / "RAP_annotation" / "RAP_annotation.mat", {"RAP_annotation": fields})
    for name in names:
        write_image(root / "RAP_dataset" / name)
    return labels

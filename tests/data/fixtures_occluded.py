"""Tiny hand-made copies of the occluded / partial ReID layouts and of the PETA_ZS / RAP_ZS pickles.

The zero-shot pickles are written the way Rethinking_of_PAR's ``format_*.py`` writes them: an
``easydict.EasyDict`` dumped with the default protocol. easydict is not a dependency, so
:func:`dump_zs_pickle` writes the global ``easydict.EasyDict`` itself (a pure-Python pickler whose
``save_global`` names the stand-in class that way); everything else is pickled as usual.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np
from fixtures_readers import write_image

# ------------------------------------------------------------------------------------------ Occluded-Duke

OCC_DUKE_LISTS = {
    "train.list": ["0005_c2_f0046182.jpg", "0005_c8_f0046300.jpg", "0007_c1_f0000010.jpg"],
    "query.list": ["0011_c1_f0100000.jpg", "0012_c3_f0200000.jpg"],
    "gallery.list": ["0011_c4_f0100500.jpg", "0012_c5_f0200100.jpg", "0099_c7_f0000001.jpg"],
}
# Where the images sit in the DukeMTMC-reID copy: Occluded-Duke moved some Duke gallery images into its query
# (0012_c3_...), and some Duke query images into its gallery (0012_c5_...)
OCC_DUKE_IN_DUKE = {
    "bounding_box_train": ["0005_c2_f0046182.jpg", "0005_c8_f0046300.jpg", "0007_c1_f0000010.jpg"],
    "query": ["0011_c1_f0100000.jpg", "0012_c5_f0200100.jpg"],
    "bounding_box_test": ["0011_c4_f0100500.jpg", "0012_c3_f0200000.jpg", "0099_c7_f0000001.jpg",
                          "0100_c2_f0000002.jpg"],  # the last one is in no Occluded-Duke list
}
OCC_DUKE_EXPECTED = [("train", 5, 1), ("train", 5, 7), ("train", 7, 0), ("query", 11, 0), ("query", 12, 2),
                     ("gallery", 11, 3), ("gallery", 12, 4), ("gallery", 99, 6)]


def make_occluded_duke_lists(base: Path, lists: dict[str, list[str]] = OCC_DUKE_LISTS) -> Path:
    """``base/Occluded_Duke/*.list`` next to ``base/DukeMTMC-reID``; returns the Occluded_Duke folder."""
    occ = base / "Occluded_Duke"
    occ.mkdir(parents=True, exist_ok=True)
    for name, lines in lists.items():
        (occ / name).write_text("\n".join(lines) + "\n")
    for folder, names in OCC_DUKE_IN_DUKE.items():
        for name in names:
            write_image(base / "DukeMTMC-reID" / folder / name)
    return occ


# ------------------------------------------------------------------------------------ test-only sets

# raw Occluded-REID: one folder per identity, .tif
OCC_REID_RAW = {
    "occluded_body_images": ["001/001_01.tif", "001/001_02.tif", "002/002_01.tif"],
    "whole_body_images": ["001/001_01.tif", "002/002_01.tif", "002/002_02.tif"],
}
# fast-reid's converted Occluded-REID: flat query/ and gallery/ of .jpg
OCC_REID_FASTREID = {"query": ["001_01.jpg", "001_02.jpg", "002_01.jpg"],
                     "gallery": ["001_01.jpg", "002_01.jpg", "002_02.jpg"]}
TEST_ONLY_EXPECTED = [("query", 1, 0), ("query", 1, 0), ("query", 2, 0),
                      ("gallery", 1, 1), ("gallery", 2, 1), ("gallery", 2, 1)]
PARTIAL_REID = {"partial_body_images": ["001_01.jpg", "001_02.jpg", "002_01.jpg"],
                "whole_body_images": ["001_01.jpg", "002_01.jpg", "002_02.jpg"]}


def make_test_only(root: Path, files: dict[str, list[str]]) -> Path:
    for folder, names in files.items():
        for name in names:
            path = root / folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            from PIL import Image

            Image.new("RGB", (8, 16), (40, 90, 160)).save(path, format="TIFF" if name.endswith(".tif") else "JPEG")
    return root


# ------------------------------------------------------------------------------------ PETA_ZS / RAP_ZS


class EasyDict(dict):
    """easydict's behaviour that matters for pickling: keys mirrored as attributes (so ``__dict__`` is pickled)."""

    def __init__(self, d: dict | None = None, **kwargs: Any) -> None:
        super().__init__()
        for k, v in {**(d or {}), **kwargs}.items():
            self[k] = v
            setattr(self, k, v)


class _EasyDictPickler(pickle._Pickler):  # the pure-Python pickler lets save_global be overridden
    def save_global(self, obj: Any, name: str | None = None) -> None:
        if obj is EasyDict:
            self.write(pickle.GLOBAL + b"easydict\nEasyDict\n")
            self.memoize(obj)
            return
        super().save_global(obj, name)


def dump_zs_pickle(obj: Any, protocol: int = 4) -> bytes:
    buf = io.BytesIO()
    _EasyDictPickler(buf, protocol=protocol).dump(obj)
    return buf.getvalue()


PETA_ZS_ATTRS = [f"attr{i:03d}" for i in range(40)]  # 35 evaluated + 5 others


def zs_info(n: int = 6, attrs: list[str] = PETA_ZS_ATTRS, *, label_idx: bool = True, names_as_numpy: bool = False,
            root: str = "/mnt/data1/jiajian/datasets/attribute/PETA/images") -> EasyDict:
    """A PETA_ZS-shaped EasyDict over ``n`` images: train 0..2, val 3, test 4..n-1 (trainval 0..3)."""
    rng = np.random.default_rng(0)
    label = rng.integers(0, 2, size=(n, len(attrs))).astype(np.int64)
    label[0, 0] = 2  # "uncertain" -> 0
    names = [f"{i + 1:05d}.png" for i in range(n)]
    info = EasyDict(
        description="peta",
        reorder="group_order",
        root=root,
        image_name=[np.str_(s) for s in names] if names_as_numpy else names,
        label=label,
        attr_name=[np.str_(a) for a in attrs],
        partition=EasyDict(train=np.arange(3), val=np.array([3]), trainval=np.arange(4), test=np.arange(4, n)),
        weight_train=[np.mean(label[:3] == 1, axis=0).astype(np.float32)],
        weight_trainval=[np.mean(label[:4] == 1, axis=0).astype(np.float32)],
    )
    if label_idx:
        info["label_idx"] = info.label_idx = EasyDict(eval=list(range(35)), color=[], extra=range(35, len(attrs)))
    return info


def make_zs(root: Path, info: EasyDict | None = None, *, image_dir: str = "images", protocol: int = 4) -> Path:
    info = info if info is not None else zs_info()
    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset_zs_run0.pkl").write_bytes(dump_zs_pickle(info, protocol))
    for name in info["image_name"]:
        write_image(root / image_dir / str(name))
    return root

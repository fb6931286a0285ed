"""Market-1501 and DukeMTMC-reID: three image folders, identity and camera in the file name.

Parsing follows torchreid / fast-reid ``process_dir`` with one fix: the regex ``(-?\\d+)_c(\\d+)`` is
applied to the file's *basename* (the references search the full path, so a parent folder named like
``2024_c5`` would be mis-parsed). pid ``-1`` (junk) is dropped in every split, pid ``0`` (distractor) is
kept as a gallery negative, cameras are stored 0-based, pids are kept raw (no train relabelling; see
:meth:`PersonDataset.relabel`). Records are sorted by file name, so the order does not depend on the
file system.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from plipbench.data.readers.base import (
    IMAGE_SUFFIXES,
    INT64_MAX,
    ReaderInfo,
    SafeJoiner,
    locate_root,
    require_utf8,
)
from plipbench.data.records import PersonDataset, PersonRecord
from plipbench.errors import DataError

MARKET_NAME = re.compile(r"^(-?\d+)_c(\d+)")
MARKET_FOLDERS = (("train", "bounding_box_train"), ("query", "query"), ("gallery", "bounding_box_test"))


def read_market_dirs(root: Path) -> list[PersonRecord]:
    """Records of ``root/{bounding_box_train,query,bounding_box_test}`` (train / query / gallery).

    Like the annotation readers (:class:`SafeJoiner`), an image that is a symbolic link must resolve
    inside its folder (the folder itself may be a link), and a file name must be UTF-8.
    """
    records: list[PersonRecord] = []
    for split, folder in MARKET_FOLDERS:
        path = root / folder
        if not path.is_dir():
            raise DataError(path, f"{split} folder not found (expected {folder}/ with <pid>_c<cam>... images)")
        names = sorted(e.name for e in os.scandir(path) if e.name.lower().endswith(IMAGE_SUFFIXES))
        joiner = SafeJoiner(path, path)
        for name in names:
            require_utf8(path, name, "file name")
            m = MARKET_NAME.match(name)
            if m is None:
                raise DataError(path / name, "file name does not match '<pid>_c<camera>...' (e.g. 0002_c1s1_000451_03.jpg)")
            pid, cam = int(m.group(1)), int(m.group(2))
            if pid == -1:
                continue
            if not (-1 <= pid <= INT64_MAX and 1 <= cam <= INT64_MAX):
                raise DataError(path / name, f"pid must be >= -1 and the camera >= 1 (1-based), both fitting a "
                                             f"64-bit integer, got pid {pid}, camera {cam}")
            records.append(PersonRecord(image_path=joiner.join(name, f"{split} image"), pid=pid, camid=cam - 1,
                                        split=split))
    return records


def _is_market_dir(path: Path) -> bool:
    return any((path / folder).is_dir() for _, folder in MARKET_FOLDERS)


MARKET_CANDIDATES = ("market1501/Market-1501-v15.09.15", "Market-1501-v15.09.15", "market1501", "Market-1501",
                     "market-1501", "Market1501")
DUKE_CANDIDATES = ("dukemtmc-reid/DukeMTMC-reID", "DukeMTMC-reID", "dukemtmc-reid", "dukemtmcreid/DukeMTMC-reID",
                   "dukemtmc", "DukeMTMC")


def read_market1501(root: str | Path) -> PersonDataset:
    """Market-1501: train (bounding_box_train) / query / gallery (bounding_box_test).

    ``root`` is the ``Market-1501-v15.09.15`` folder, or a data folder holding it as
    ``market1501/Market-1501-v15.09.15`` (torchreid) or ``Market-1501-v15.09.15`` (fast-reid).
    Junk ``-1_c...`` images are dropped; pid ``0000`` distractors stay in the gallery.
    """
    where = locate_root("market1501", root, MARKET_CANDIDATES, _is_market_dir,
                        "bounding_box_train/, bounding_box_test/ and query/")
    return PersonDataset(name="Market-1501", layout="market1501", root=where, records=read_market_dirs(where))


def read_dukemtmc(root: str | Path) -> PersonDataset:
    """DukeMTMC-reID: same folders and parsing as Market-1501 (names ``0001_c2_f0046182.jpg``, 8 cameras).

    ``root`` is the ``DukeMTMC-reID`` folder, or a data folder holding ``dukemtmc-reid/DukeMTMC-reID``
    (torchreid) or ``DukeMTMC-reID`` (fast-reid).
    """
    where = locate_root("dukemtmc", root, DUKE_CANDIDATES, _is_market_dir,
                        "bounding_box_train/, bounding_box_test/ and query/")
    return PersonDataset(name="DukeMTMC-reID", layout="dukemtmc", root=where, records=read_market_dirs(where))


MARKET_TREE = """\
Market-1501-v15.09.15/            (or <data>/market1501/Market-1501-v15.09.15, torchreid)
  bounding_box_train/  0002_c1s1_000451_03.jpg ...   -> train   (pid 4 digits, camera 1-based)
  bounding_box_test/   0000_c1s1_..., -1_c1s1_...    -> gallery (pid 0 kept as distractor, -1 junk dropped)
  query/               0001_c1s1_001051_00.jpg ...   -> query
"""

DUKE_TREE = """\
DukeMTMC-reID/                    (or <data>/dukemtmc-reid/DukeMTMC-reID, torchreid)
  bounding_box_train/  0001_c2_f0046182.jpg ...      -> train
  bounding_box_test/   ...                           -> gallery
  query/               ...                           -> query
"""

INFOS = (
    ReaderInfo(
        name="market1501",
        description="Market-1501 image ReID (751 train ids, 6 cameras); train / query / gallery.",
        reader=read_market1501,
        tree=MARKET_TREE,
        split_sizes={
            "train": {"images": 12936, "identities": 751},
            "query": {"images": 3368, "identities": 750},
            "gallery": {"images": 15913, "identities": 751},
        },
        folder_names=MARKET_CANDIDATES,
        marker=_is_market_dir,
        kind="reid",
        required_splits=("train", "query", "gallery"),
    ),
    ReaderInfo(
        name="dukemtmc",
        description="DukeMTMC-reID image ReID (702 train ids, 8 cameras; withdrawn by its authors).",
        reader=read_dukemtmc,
        tree=DUKE_TREE,
        split_sizes={
            "train": {"images": 16522, "identities": 702},
            "query": {"images": 2228, "identities": 702},
            "gallery": {"images": 17661, "identities": 1110},
        },
        folder_names=DUKE_CANDIDATES,
        marker=_is_market_dir,
        kind="reid",
        required_splits=("train", "query", "gallery"),
    ),
)

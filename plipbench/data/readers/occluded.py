"""Occluded and partial image ReID: Occluded-Duke (supervised) and the test-only Occluded-REID, Partial-REID
and Partial-iLIDS.

**Occluded-Duke** (``lightas/Occluded-DukeMTMC-Dataset``) ships only name lists,
``Occluded_Duke/{train,query,gallery}.list``, over DukeMTMC-reID images; its ``convert_duke_to_occduke.py``
rebuilds Market-style folders from the Duke zip. The reader takes either:

* the converted folder (``bounding_box_train/``, ``query/``, ``bounding_box_test/``, Duke names), read
  exactly like ``dukemtmc``; or
* the three ``.list`` files, one image per line. Only the line's last path component is used (the name
  carries pid and camera, ``0001_c2_f0046182.jpg``) and it is looked up in all three folders of a
  DukeMTMC-reID copy, since Occluded-Duke moved some Duke gallery images into its query. The Duke copy is
  option ``duke_root`` (relative to the Occluded-Duke folder), else ``DukeMTMC-reID`` (or torchreid's
  ``dukemtmc-reid/DukeMTMC-reID``) in that folder, its parent or its grandparent. A name listed twice, in one
  list or two, or absent from the Duke copy is an error naming the list file and line.

**Occluded-REID, Partial-REID, Partial-iLIDS** have no train split: a query folder of occluded / partial
images and a gallery folder of whole-body ones. Both the raw releases (per-identity folders
``<pid>/<pid>_<nn>.tif``, Occluded-REID) and fast-reid's flat folders (``query/``, ``gallery/``,
``partial_body_images/``, ``whole_body_images/`` of ``*.jpg``) are read. The pid is the leading number of the
file name (fast-reid's ``([-\\d]+)_``), checked against the per-identity folder when there is one. Query
images get camera 0 and gallery images camera 1, so the same-camera filter of the Market evaluator removes
nothing (fast-reid takes the number after the pid as the camera, which would drop any gallery image that
happens to share the query's image number; not reproduced).
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
    search_root,
    text_lines,
)
from plipbench.data.readers.reid_market import DUKE_CANDIDATES, MARKET_FOLDERS, MARKET_NAME, read_market_dirs
from plipbench.data.records import PersonDataset, PersonRecord
from plipbench.errors import DataError

OCC_DUKE_LISTS = (("train", "train.list"), ("query", "query.list"), ("gallery", "gallery.list"))
OCC_DUKE_CANDIDATES = ("Occluded_Duke", "occluded_duke", "Occluded-DukeMTMC-Dataset/Occluded_Duke", "occluded-duke",
                       "Occluded-DukeMTMC", "OccludedDuke")
TEST_ONLY_SUFFIXES = (*IMAGE_SUFFIXES, ".tif", ".tiff")  # the raw Occluded-REID release is .tif
TEST_ONLY_NAME = re.compile(r"^(\d+)_")


def _has_market_dirs(path: Path) -> bool:
    return all((path / folder).is_dir() for _, folder in MARKET_FOLDERS)


def _has_lists(path: Path) -> bool:
    return all((path / name).is_file() for _, name in OCC_DUKE_LISTS)


def _is_occluded_duke(path: Path) -> bool:
    return _has_market_dirs(path) or _has_lists(path)


def _duke_copy(where: Path, duke_root: str) -> Path:
    """The DukeMTMC-reID folder the Occluded-Duke lists refer to (see the module docstring)."""
    if duke_root:
        path = Path(duke_root).expanduser()
        path = path if path.is_absolute() else where / path
        found = search_root(path, DUKE_CANDIDATES, _has_market_dirs) if path.is_dir() else None
        if found is None:
            raise DataError(path, "option duke_root: no DukeMTMC-reID copy here (expected bounding_box_train/, "
                                  "query/ and bounding_box_test/)")
        return found
    for base in (where, where.parent, where.parent.parent):
        if base != where and _has_market_dirs(base):  # Occluded_Duke/ put inside the Duke copy
            return base
        found = next((base / c for c in DUKE_CANDIDATES if _has_market_dirs(base / c)), None)
        if found is not None:
            return found
    raise DataError(where, "the Occluded-Duke lists need the DukeMTMC-reID images: put DukeMTMC-reID/ next to "
                           "Occluded_Duke/ (or inside it), or pass option duke_root=<folder>")


def _duke_index(duke: Path) -> dict[str, Path | None]:
    """File name -> path over the three Duke folders (a name in two folders maps to None: ambiguous)."""
    index: dict[str, Path | None] = {}
    for _, folder in MARKET_FOLDERS:
        path = duke / folder
        joiner = SafeJoiner(path, path)
        for entry in sorted(e.name for e in os.scandir(path) if e.name.lower().endswith(IMAGE_SUFFIXES)):
            require_utf8(path, entry, "file name")
            index[entry] = None if entry in index else joiner.join(entry, "Duke image")
    return index


def _read_lists(where: Path, duke: Path) -> list[PersonRecord]:
    index = _duke_index(duke)
    seen: dict[str, tuple[str, int]] = {}
    records: list[PersonRecord] = []
    for split, list_name in OCC_DUKE_LISTS:
        path = where / list_name
        rows: list[tuple[str, PersonRecord]] = []
        for lineno, line in text_lines(path):
            name = line.strip().replace("\\", "/").rsplit("/", 1)[-1]
            if not name:
                continue
            if name in seen:
                first_list, first_line = seen[name]
                raise DataError(path, f"line {lineno}: image {name} is listed twice (first in {first_list} line "
                                      f"{first_line}); an image belongs to one split")
            seen[name] = (list_name, lineno)
            m = MARKET_NAME.match(name)
            if m is None or not name.lower().endswith(IMAGE_SUFFIXES):
                raise DataError(path, f"line {lineno}: {name!r} is not a Duke image name "
                                      f"'<pid>_c<camera>_f<frame>.jpg' (e.g. 0001_c2_f0046182.jpg)")
            pid, cam = int(m.group(1)), int(m.group(2))
            if not (0 <= pid <= INT64_MAX and 1 <= cam <= INT64_MAX):
                raise DataError(path, f"line {lineno}: pid must be >= 0 and the camera >= 1, got {name!r}")
            if name not in index:
                raise DataError(path, f"line {lineno}: image {name} not found in {duke}/{{bounding_box_train,query,"
                                      f"bounding_box_test}}")
            image = index[name]
            if image is None:
                raise DataError(path, f"line {lineno}: image {name} is in two folders of {duke}; ambiguous")
            rows.append((name, PersonRecord(image_path=image, pid=pid, camid=cam - 1, split=split)))
        records.extend(r for _, r in sorted(rows, key=lambda row: row[0]))
    return records


def read_occluded_duke(root: str | Path, *, duke_root: str = "") -> PersonDataset:
    """Occluded-Duke: the converted folders, else the ``{train,query,gallery}.list`` files over a DukeMTMC-reID
    copy (see the module docstring)."""
    where = locate_root("occluded-duke", root, OCC_DUKE_CANDIDATES, _is_occluded_duke,
                        "bounding_box_train/, query/ and bounding_box_test/ (converted) or train.list, query.list "
                        "and gallery.list")
    options = {"duke_root": duke_root}
    if _has_market_dirs(where):
        records = read_market_dirs(where)
        options["source"] = "folders"
    else:
        duke = _duke_copy(where, duke_root)
        records = _read_lists(where, duke)
        options["source"] = "lists"
        options["duke_images"] = os.path.relpath(duke, where)
    return PersonDataset(name="Occluded-Duke", layout="occluded-duke", root=where, records=records, options=options)


# --------------------------------------------------------------------------------------------------
# Test-only sets


def _test_only_images(folder: Path, split: str, camid: int) -> list[PersonRecord]:
    """Records of ``folder``: images directly in it (fast-reid) or in per-identity sub-folders (raw release)."""
    found: list[tuple[str, str | None]] = []  # (relative path, per-identity folder name)
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        require_utf8(folder, entry.name, "file name")
        if entry.is_dir():
            for sub in sorted(os.scandir(entry.path), key=lambda e: e.name):
                require_utf8(Path(entry.path), sub.name, "file name")
                if sub.is_dir():
                    raise DataError(Path(sub.path), "unexpected folder: expected images directly in the split folder "
                                                    "or in one folder per identity")
                if sub.name.lower().endswith(TEST_ONLY_SUFFIXES):
                    found.append((f"{entry.name}/{sub.name}", entry.name))
        elif entry.name.lower().endswith(TEST_ONLY_SUFFIXES):
            found.append((entry.name, None))
    joiner = SafeJoiner(folder, folder)
    records = []
    for rel, id_folder in found:
        name = rel.rsplit("/", 1)[-1]
        m = TEST_ONLY_NAME.match(name)
        if m is None:
            raise DataError(folder / rel, "file name does not start with '<pid>_' (e.g. 001_01.jpg)")
        pid = int(m.group(1))
        if pid > INT64_MAX:
            raise DataError(folder / rel, f"identity {pid} does not fit a signed 64-bit integer")
        if id_folder is not None and (not id_folder.isdigit() or int(id_folder) != pid):
            raise DataError(folder / rel, f"identity {pid} of the file name differs from its folder {id_folder!r}")
        records.append(PersonRecord(image_path=joiner.join(rel, f"{split} image"), pid=pid, camid=camid, split=split))
    return records


def _test_only_folder(where: Path, names: tuple[str, ...], split: str) -> Path:
    for name in names:
        if (where / name).is_dir():
            return where / name
    raise DataError(where, f"{split} folder not found (expected one of: {', '.join(f'{n}/' for n in names)})")


def _reader(layout: str, title: str, candidates: tuple[str, ...], query: tuple[str, ...], gallery: tuple[str, ...]):
    def marker(path: Path) -> bool:
        return any((path / q).is_dir() for q in query) and any((path / g).is_dir() for g in gallery)

    def read(root: str | Path) -> PersonDataset:
        where = locate_root(layout, root, candidates, marker,
                            f"a query folder ({' or '.join(query)}) and a gallery folder ({' or '.join(gallery)})")
        records = (_test_only_images(_test_only_folder(where, query, "query"), "query", 0)
                   + _test_only_images(_test_only_folder(where, gallery, "gallery"), "gallery", 1))
        return PersonDataset(name=title, layout=layout, root=where, records=records)

    read.__name__ = f"read_{layout.replace('-', '_')}"
    read.__doc__ = (f"{title} (test-only): query from {' or '.join(query)}/, gallery from {' or '.join(gallery)}/; "
                    f"see :mod:`plipbench.data.readers.occluded`.")
    return read, marker


OCC_REID_CANDIDATES = ("Occluded_REID", "OccludedREID", "occluded-reid", "occluded_reid", "Occluded-REID")
PARTIAL_REID_CANDIDATES = ("Partial_REID", "PartialREID", "partial-reid", "partial_reid", "Partial-REID")
PARTIAL_ILIDS_CANDIDATES = ("PartialiLIDS", "Partial_iLIDS", "partial-ilids", "partial_ilids", "Partial-iLIDS")
read_occluded_reid, _is_occluded_reid = _reader(
    "occluded-reid", "Occluded-REID", OCC_REID_CANDIDATES, ("occluded_body_images", "query"),
    ("whole_body_images", "gallery"))
read_partial_reid, _is_partial_reid = _reader(
    "partial-reid", "Partial-REID", PARTIAL_REID_CANDIDATES, ("partial_body_images", "query"),
    ("whole_body_images", "gallery"))
read_partial_ilids, _is_partial_ilids = _reader(
    "partial-ilids", "Partial-iLIDS", PARTIAL_ILIDS_CANDIDATES, ("query", "partial_body_images"),
    ("gallery", "whole_body_images"))


OCC_DUKE_TREE = """\
Occluded_Duke/                    (convert_duke_to_occduke.py's output, Duke names)
  bounding_box_train/ query/ bounding_box_test/      -> train / query / gallery
or the shipped lists over a DukeMTMC-reID copy (option duke_root, else found next to or inside the folder):
Occluded_Duke/train.list query.list gallery.list     one image name per line (0001_c2_f0046182.jpg)
DukeMTMC-reID/bounding_box_train/ query/ bounding_box_test/   the images, looked up in all three folders
"""

OCC_REID_TREE = """\
Occluded_REID/                    (raw release; fast-reid: OccludedREID/query/*.jpg, gallery/*.jpg)
  occluded_body_images/<pid>/<pid>_<nn>.tif   -> query   (camera 0)
  whole_body_images/<pid>/<pid>_<nn>.tif      -> gallery (camera 1)
"""

PARTIAL_REID_TREE = """\
Partial_REID/                     (flat, as fast-reid reads it, or one folder per identity)
  partial_body_images/<pid>_<nn>.jpg   -> query   (camera 0)
  whole_body_images/<pid>_<nn>.jpg     -> gallery (camera 1)
"""

PARTIAL_ILIDS_TREE = """\
PartialiLIDS/                     (fast-reid)
  query/<pid>_<nn>.jpg    -> query   (camera 0)
  gallery/<pid>_<nn>.jpg  -> gallery (camera 1)
"""

INFOS = (
    ReaderInfo(
        name="occluded-duke",
        description="Occluded-Duke occluded image ReID over DukeMTMC-reID (all queries occluded); train / query / "
                    "gallery.",
        reader=read_occluded_duke,
        tree=OCC_DUKE_TREE,
        split_sizes={
            "train": {"images": 15618, "identities": 702},
            "query": {"images": 2210, "identities": 519},
            "gallery": {"images": 17661, "identities": 1110},
        },
        folder_names=OCC_DUKE_CANDIDATES,
        marker=_is_occluded_duke,
        kind="reid",
        required_splits=("train", "query", "gallery"),
        options={"duke_root": ""},
    ),
    ReaderInfo(
        name="occluded-reid",
        description="Occluded-REID (test-only; 200 ids, occluded query vs whole-body gallery).",
        reader=read_occluded_reid,
        tree=OCC_REID_TREE,
        split_sizes={"query": {"images": 1000, "identities": 200}, "gallery": {"images": 1000, "identities": 200}},
        folder_names=OCC_REID_CANDIDATES,
        marker=_is_occluded_reid,
        kind="reid",
        required_splits=("query", "gallery"),
    ),
    ReaderInfo(
        name="partial-reid",
        description="Partial-REID (test-only; 60 ids, partial-body query vs whole-body gallery).",
        reader=read_partial_reid,
        tree=PARTIAL_REID_TREE,
        split_sizes={"query": {"images": 300, "identities": 60}, "gallery": {"images": 300, "identities": 60}},
        folder_names=PARTIAL_REID_CANDIDATES,
        marker=_is_partial_reid,
        kind="reid",
        required_splits=("query", "gallery"),
    ),
    ReaderInfo(
        name="partial-ilids",
        description="Partial-iLIDS (test-only; 119 ids, 238 partial query and 238 whole-body gallery images).",
        reader=read_partial_ilids,
        tree=PARTIAL_ILIDS_TREE,
        split_sizes={"query": {"images": 238, "identities": 119}, "gallery": {"images": 238, "identities": 119}},
        folder_names=PARTIAL_ILIDS_CANDIDATES,
        marker=_is_partial_ilids,
        kind="reid",
        required_splits=("query", "gallery"),
    ),
)

"""MSMT17 (V1 and V2): image folders plus four list files ``<relative path> <label>``.

Parsing follows torchreid / fast-reid: labels are kept as written (query / gallery labels restart at 0
and overlap numerically with train labels, but are different people), the camera is field 2 of the
basename split on ``_`` minus 1 (``0000_000_01_0303morning_0015_0.jpg`` -> camera 0). Train / val lists
point into ``train/`` (V1) or ``mask_train_v2/`` (V2), query / gallery into ``test/`` or ``mask_test_v2/``.

Option ``msmt17_train_with_val`` (default ``False``, like torchreid and fast-reid, which add
``list_val`` only with ``combineall``): when ``True`` the ``list_val`` images are put in split
``"train"`` (reid-strong-baseline / TransReID style, 32,621 train images); when ``False`` they are kept
as split ``"val"`` (so the train split is the 30,248 images of ``list_train``). Option ``version``:
``"auto"`` (V1 first, then V2, like the references), ``"V1"`` or ``"V2"``. Both are recorded in
:attr:`PersonDataset.options`.
"""

from __future__ import annotations

from pathlib import Path

from plipbench.data.readers.base import (
    INT64_MAX,
    ReaderInfo,
    SafeJoiner,
    SplitSizes,
    check_pid,
    locate_root,
    require_dir,
    text_lines,
)
from plipbench.data.records import PersonDataset, PersonRecord
from plipbench.errors import ConfigError, DataError

VERSION_DIRS = {"V1": ("train", "test"), "V2": ("mask_train_v2", "mask_test_v2")}
LISTS = (("train", "list_train.txt", 0), ("val", "list_val.txt", 0), ("query", "list_query.txt", 1),
         ("gallery", "list_gallery.txt", 1))


def _version_of(path: Path) -> str | None:
    if not (path / "list_train.txt").is_file():
        return None
    for version, (train_dir, _) in VERSION_DIRS.items():
        if (path / train_dir).is_dir():
            return version
    return None


def _is_msmt(path: Path) -> bool:
    return _version_of(path) is not None


def _candidates(version: str) -> tuple[str, ...]:
    versions = ("V1", "V2") if version == "auto" else (version,)
    out: list[str] = []
    for prefix in ("msmt17/", ""):
        out.extend(f"{prefix}MSMT17_{v}" for v in versions)
    out.extend(("msmt17", "MSMT17"))
    return tuple(out)


def read_msmt17(root: str | Path, *, msmt17_train_with_val: bool = False, version: str = "auto") -> PersonDataset:
    """MSMT17 V1 or V2 as train (+ val) / query / gallery; see the module docstring for the options.

    ``root`` is the ``MSMT17_V1`` / ``MSMT17_V2`` folder or a data folder holding
    ``msmt17/MSMT17_V1|V2`` (torchreid) or ``MSMT17_V1|V2`` (fast-reid).
    """
    if version not in ("auto", "V1", "V2"):
        raise ConfigError(f"msmt17 option version must be 'auto', 'V1' or 'V2', got {version!r}")
    marker = _is_msmt if version == "auto" else (lambda p: _version_of(p) == version)
    where = locate_root("msmt17", root, _candidates(version), marker,
                        "list_train.txt with train/ (V1) or mask_train_v2/ (V2)")
    found = _version_of(where)
    assert found is not None
    dirs = VERSION_DIRS[found]
    records: list[PersonRecord] = []
    for split, list_name, dir_index in LISTS:
        list_path = where / list_name
        if not list_path.is_file():
            raise DataError(list_path, "MSMT17 list file not found (expected '<relative path> <label>' lines)")
        image_dir = require_dir(where / dirs[dir_index], f"MSMT17 {dirs[dir_index]}")
        joiner = SafeJoiner(image_dir, list_path)
        out_split = "train" if split == "val" and msmt17_train_with_val else split
        for lineno, line in text_lines(list_path):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2:
                raise DataError(list_path, f"line {lineno}: expected '<relative image path> <integer label>', "
                                           f"got {line.strip()!r}")
            rel, label = parts
            try:
                pid = int(label)
                cam = int(Path(rel).name.split("_")[2]) - 1
            except (ValueError, IndexError):
                raise DataError(list_path, f"line {lineno}: expected an integer label and a file name like "
                                           f"0000_000_01_0303morning_0015_0.jpg, got {line.strip()!r}") from None
            check_pid(list_path, f"line {lineno}: label", pid)
            if not 0 <= cam <= INT64_MAX:
                raise DataError(list_path, f"line {lineno}: camera field of {rel!r} must be an integer >= 1 (1-based) that fits 64 bits")
            path = joiner.join(rel, f"line {lineno}")
            records.append(PersonRecord(image_path=path, pid=pid, camid=cam, split=out_split))
    return PersonDataset(
        name=f"MSMT17_{found}", layout="msmt17", root=where, records=records,
        options={"msmt17_train_with_val": bool(msmt17_train_with_val), "version": found},
    )


def _sizes(options: dict) -> SplitSizes:
    sizes: SplitSizes = {
        "query": {"images": 11659, "identities": 3060},
        "gallery": {"images": 82161, "identities": 3060},
    }
    if options.get("msmt17_train_with_val"):
        sizes["train"] = {"images": 32621, "identities": 1041}
    else:
        sizes["train"] = {"images": 30248, "identities": 1041}
        sizes["val"] = {"images": 2373}
    return sizes


MSMT17_TREE = """\
MSMT17_V1/   (or MSMT17_V2/; or <data>/msmt17/MSMT17_V1|V2, torchreid)
  train/<pid>/<img>.jpg          V2: mask_train_v2/<pid>/<img>.jpg
  test/<pid>/<img>.jpg           V2: mask_test_v2/<pid>/<img>.jpg
  list_train.txt  list_val.txt   -> train (+ val, option msmt17_train_with_val), paths under train/
  list_query.txt  list_gallery.txt -> query / gallery, paths under test/
  line: 0000/0000_000_01_0303morning_0015_0.jpg 0   (camera = 3rd '_' field, 1-based)
"""

INFOS = (
    ReaderInfo(
        name="msmt17",
        description="MSMT17 V1/V2 image ReID (1,041 train ids, 15 cameras); list_val joins train only on request.",
        reader=read_msmt17,
        tree=MSMT17_TREE,
        split_sizes=_sizes({}),
        folder_names=_candidates("auto"),
        marker=_is_msmt,
        kind="reid",
        required_splits=("train", "query", "gallery"),
        options={"msmt17_train_with_val": False, "version": "auto"},
        sizes_for=_sizes,
    ),
)

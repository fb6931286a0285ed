"""CUHK03-NP (the new 767/700 protocol), labeled or detected boxes, from either of its two distributions.

* **Market-style folders** (the common re-packaged download): ``cuhk03-np/{labeled,detected}/
  {bounding_box_train,bounding_box_test,query}/0001_c1_5.png``, parsed exactly like Market-1501
  (basename regex, camera ``c1``/``c2`` -> 0/1, raw pids).
* **torchreid's .mat configuration**: ``cuhk03/cuhk03_new_protocol_config_{labeled,detected}.mat`` (keys
  ``filelist``, ``labels``, ``train_idx``, ``query_idx``, ``gallery_idx``; the indices are **1-based** and
  converted to 0-based) next to the PNGs ``cuhk03/images_{labeled,detected}/1_001_1_01.png`` that
  torchreid extracts from ``cuhk-03.mat`` (this reader does not extract them: ``cuhk-03.mat`` is an HDF5
  file and the harness never writes into dataset folders). The camera is the view inside the camera
  pair, ``int(name.split('_')[2]) - 1``, as torchreid does; labels are kept raw.

Options: ``variant`` = ``"labeled"`` (default, like fast-reid; torchreid defaults to detected) or
``"detected"``; ``source`` = ``"auto"`` (folders if present, else the .mat), ``"folders"`` or ``"mat"``.
Both are recorded in :attr:`PersonDataset.options`.
"""

from __future__ import annotations

from pathlib import Path

from plipbench.data.readers.base import (
    ReaderInfo,
    SafeJoiner,
    SplitSizes,
    check_pid,
    load_mat,
    locate_root,
    mat_indices,
    mat_require,
    mat_strings,
    require_dir,
)
from plipbench.data.readers.reid_market import MARKET_FOLDERS, read_market_dirs
from plipbench.data.records import PersonDataset, PersonRecord
from plipbench.errors import ConfigError, DataError

VARIANTS = ("labeled", "detected")
CANDIDATES = ("cuhk03-np", "CUHK03-NP", "cuhk03_np", "cuhk03", "CUHK03")
MAT_KEYS = ("filelist", "labels", "train_idx", "query_idx", "gallery_idx")


def _has_folders(path: Path, variant: str) -> bool:
    return any((path / variant / folder).is_dir() for _, folder in MARKET_FOLDERS)


def _mat_name(variant: str) -> str:
    return f"cuhk03_new_protocol_config_{variant}.mat"


def _has_mat(path: Path, variant: str) -> bool:
    return (path / _mat_name(variant)).is_file()


def _is_cuhk03(path: Path) -> bool:
    return any(_has_folders(path, v) or _has_mat(path, v) for v in VARIANTS)


def read_cuhk03_np(root: str | Path, *, variant: str = "labeled", source: str = "auto") -> PersonDataset:
    """CUHK03-NP train / query / gallery for the ``variant`` boxes; see the module docstring."""
    if variant not in VARIANTS:
        raise ConfigError(f"cuhk03-np option variant must be 'labeled' or 'detected', got {variant!r}")
    if source not in ("auto", "folders", "mat"):
        raise ConfigError(f"cuhk03-np option source must be 'auto', 'folders' or 'mat', got {source!r}")

    def marker(p: Path) -> bool:
        return (source != "mat" and _has_folders(p, variant)) or (source != "folders" and _has_mat(p, variant))

    where = locate_root("cuhk03-np", root, CANDIDATES, marker,
                        f"{variant}/bounding_box_train|bounding_box_test|query/ or {_mat_name(variant)}")
    use_folders = source == "folders" or (source == "auto" and _has_folders(where, variant))
    if use_folders:
        records = read_market_dirs(where / variant)
        used = "folders"
    else:
        records = _read_mat(where, variant)
        used = "mat"
    return PersonDataset(name=f"CUHK03-NP ({variant})", layout="cuhk03-np", root=where, records=records,
                         options={"variant": variant, "source": used})


def _read_mat(where: Path, variant: str) -> list[PersonRecord]:
    import numpy as np

    path = where / _mat_name(variant)
    mat = load_mat(path)
    mat_require(path, mat, MAT_KEYS)
    names = mat_strings(path, "filelist", mat["filelist"])
    labels = np.asarray(mat["labels"]).reshape(-1)
    if labels.shape[0] != len(names):
        raise DataError(path, f"field labels has {labels.shape[0]} entries, expected one per filelist entry "
                              f"({len(names)})")
    image_dir = require_dir(where / f"images_{variant}", f"CUHK03 images_{variant} (PNGs extracted by torchreid)")
    joiner = SafeJoiner(image_dir, path)
    records: list[PersonRecord] = []
    for split, key in (("train", "train_idx"), ("query", "query_idx"), ("gallery", "gallery_idx")):
        for i in mat_indices(path, key, mat[key], len(names)).tolist():
            name = names[i]
            try:
                cam = int(Path(name).name.split("_")[2]) - 1
            except (ValueError, IndexError):
                raise DataError(path, f"filelist entry {i + 1}: expected a name like 1_001_1_01.png, got {name!r}") from None
            pid = labels[i].item() if hasattr(labels[i], "item") else labels[i]
            if not isinstance(pid, int) and not (isinstance(pid, float) and pid.is_integer()):
                raise DataError(path, f"labels entry {i + 1}: expected an integer identity, got {pid!r}")
            check_pid(path, f"labels entry {i + 1}", int(pid))
            records.append(PersonRecord(image_path=joiner.join(name, f"filelist entry {i + 1}"),
                                        pid=int(pid), camid=cam, split=split))
    return records


def _sizes(options: dict) -> SplitSizes:
    if options.get("variant", "labeled") == "detected":
        train, gallery = 7365, 5332
    else:
        train, gallery = 7368, 5328
    return {
        "train": {"images": train, "identities": 767},
        "query": {"images": 1400, "identities": 700},
        "gallery": {"images": gallery, "identities": 700},
    }


CUHK03_TREE = """\
cuhk03-np/                        (market-style download)
  labeled/   bounding_box_train/ bounding_box_test/ query/   0001_c1_5.png ...
  detected/  bounding_box_train/ bounding_box_test/ query/
or, torchreid's layout (option source=mat):
cuhk03/
  cuhk03_new_protocol_config_labeled.mat   cuhk03_new_protocol_config_detected.mat  (1-based indices)
  images_labeled/1_001_1_01.png ...        images_detected/...  (extracted from cuhk-03.mat by torchreid)
"""

INFOS = (
    ReaderInfo(
        name="cuhk03-np",
        description="CUHK03 new protocol (767 train / 700 test ids), labeled (default) or detected boxes.",
        reader=read_cuhk03_np,
        tree=CUHK03_TREE,
        split_sizes=_sizes({}),
        folder_names=CANDIDATES,
        marker=_is_cuhk03,
        kind="reid",
        required_splits=("train", "query", "gallery"),
        options={"variant": "labeled", "source": "auto"},
        sizes_for=_sizes,
    ),
)

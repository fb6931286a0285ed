"""The zero-shot attribute splits PETA_ZS and RAP_ZS (Jia et al. 2021): identity-disjoint partitions of PETA and
RAPv2, shipped by Rethinking_of_PAR as ``data/PETA/dataset_zs_run0.pkl`` and ``data/RAP2/dataset_zs_run0.pkl``.

The pickle is read by :func:`~plipbench.data.readers.safe_pickle.load_restricted` (nothing in it can run
code). Its content (an ``EasyDict``; reference brief ``more-tasks.md`` §4.2):

* ``image_name``: the image file names, resolved in the dataset folder's ``images/`` (PETA) or
  ``RAP_dataset/`` (RAP), option ``image_dir``. The pickle's ``root`` (an absolute path on the authors'
  machine) is ignored;
* ``label``: the (N, A) label matrix; 2 ("uncertain") becomes option ``label_2_as`` (default 0, as
  ``pedes.py``'s ``label[label == 2] = 0``), anything else outside {0, 1} is an error;
* ``attr_name``: the A attribute names;
* ``label_idx.eval`` (optional): the evaluated columns. With option ``attributes="eval"`` (default) the labels
  are re-indexed by it; a file without ``label_idx`` already holds only the evaluated columns (``pedes.py``'s
  zero-shot branch); ``"all"`` keeps every column. PETA_ZS evaluates 35 attributes and RAP_ZS 53 (RAPv2's 54
  minus Age46-60): ``plipbench data check`` compares a real copy with that count
  (:attr:`ReaderInfo.attribute_count`);
* ``partition``: 0-based index arrays ``train``, ``val``, ``trainval``, ``test`` (a list of arrays is read
  at position ``partition``, default 0). By default train / val / test are kept apart, so that a protocol
  selects on val; option ``trainval=true`` trains on ``trainval`` (Rethinking_of_PAR's configs, which then
  select the model on test) and has no val split. An image in two of the kept splits is an error.

No identity labels: ``pid`` is the image's 0-based index in ``image_name`` and ``camid`` is -1, as for PETA.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from plipbench.data.readers.base import ReaderInfo, SafeJoiner, locate_root, require_utf8
from plipbench.data.readers.safe_pickle import load_restricted
from plipbench.data.records import PersonDataset, PersonRecord
from plipbench.errors import ConfigError, DataError

ZS_FILE = "dataset_zs_run0.pkl"
ZS_EVAL = {"peta-zs": 35, "rap-zs": 53}
ZS_IMAGE_DIRS = {"peta-zs": "images", "rap-zs": "RAP_dataset"}
ZS_TITLES = {"peta-zs": "PETA_ZS", "rap-zs": "RAP_ZS"}
PETA_ZS_CANDIDATES = ("PETA", "peta", "PETA_ZS", "peta-zs", "peta_zs")
RAP_ZS_CANDIDATES = ("RAP2", "RAPv2", "rap2", "rapv2", "RAP_ZS", "rap-zs", "rap_zs")


def _field(path: Path, info: Mapping[str, Any], key: str) -> Any:
    if key not in info:
        found = ", ".join(sorted(str(k) for k in info)) or "none"
        raise DataError(path, f"missing key {key!r} (found {found})")
    return info[key]


def _strings(path: Path, key: str, value: Any) -> list[str]:
    import numpy as np

    items = value.tolist() if isinstance(value, np.ndarray) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(s, (str, np.str_)) for s in items):
        raise DataError(path, f"{key}: expected a list of strings, got {type(value).__name__}")
    return [require_utf8(path, str(s), f"{key} entry") for s in items]


def _indices(path: Path, key: str, value: Any, n: int) -> Any:
    """0-based integer indices in ``[0, n)`` as an int64 vector."""
    import numpy as np

    if isinstance(value, range):
        value = list(value)
    arr = np.asarray(value)
    if arr.dtype.kind not in "iuf" or arr.ndim > 1:
        raise DataError(path, f"{key}: expected a vector of integer indices, got {arr.dtype} of shape {arr.shape}")
    arr = arr.reshape(-1)
    if arr.size and (np.any(arr != np.round(arr)) or arr.min() < 0 or arr.max() >= n):
        raise DataError(path, f"{key}: indices must be integers in 0..{n - 1}, got range {arr.min():g}..{arr.max():g}")
    return arr.astype(np.int64)


def _labels(path: Path, value: Any, rows: int, cols: int, label_2_as: int) -> Any:
    import numpy as np

    if not isinstance(value, np.ndarray) or value.ndim != 2 or value.shape != (rows, cols):
        shape = getattr(value, "shape", type(value).__name__)
        raise DataError(path, f"label: expected an array of shape ({rows}, {cols}) (images x attribute names), "
                              f"got {shape}")
    if value.dtype.kind not in "biuf":
        raise DataError(path, f"label: expected numeric labels, got dtype {value.dtype}")
    labels = np.where(value == 2, label_2_as, value)
    bad = np.setdiff1d(np.unique(labels), [0, 1])
    if bad.size:
        raise DataError(path, f"label: labels must be 0, 1 or 2, found {bad[:5].tolist()}")
    return labels.astype(np.int64)


def _partition(path: Path, parts: Any, key: str, k: int) -> Any:
    """``partition[key]``: an index array, or (dataset_all style) a list of them, of which the k-th is taken."""
    import numpy as np

    value = _field(path, parts, key)
    if isinstance(value, list) and value and isinstance(value[0], (np.ndarray, list, range)):
        if k >= len(value):
            raise DataError(path, f"partition.{key}: has {len(value)} partitions, partition {k} requested")
        value = value[k]
    return value


def read_zero_shot(layout: str, root: str | Path, *, file: str = ZS_FILE, image_dir: str = "",
                   attributes: str = "eval", trainval: bool = False, partition: int = 0,
                   label_2_as: int = 0) -> PersonDataset:
    """PETA_ZS (``layout="peta-zs"``) or RAP_ZS (``"rap-zs"``); see the module docstring."""
    if attributes not in ("eval", "all"):
        raise ConfigError(f"{layout} option attributes must be 'eval' or 'all', got {attributes!r}")
    if label_2_as not in (0, 1):
        raise ConfigError(f"{layout} option label_2_as must be 0 or 1, got {label_2_as!r}")
    if not file or "/" in file or "\\" in file or file in (".", ".."):
        raise ConfigError(f"{layout} option file must be a file name in the dataset folder, got {file!r}")
    candidates = PETA_ZS_CANDIDATES if layout == "peta-zs" else RAP_ZS_CANDIDATES
    where = locate_root(layout, root, candidates, lambda p: (p / file).is_file(), file)
    path = where / file
    info = load_restricted(path)
    if not isinstance(info, dict):
        raise DataError(path, f"expected an EasyDict (a mapping) at the top level, got {type(info).__name__}")
    names = _strings(path, "image_name", _field(path, info, "image_name"))
    attr_names = _strings(path, "attr_name", _field(path, info, "attr_name"))
    n = len(names)
    labels = _labels(path, _field(path, info, "label"), n, len(attr_names), label_2_as)
    cols = list(range(len(attr_names)))
    label_idx = info.get("label_idx")
    if attributes == "eval" and label_idx is not None:
        if not isinstance(label_idx, dict):
            raise DataError(path, f"label_idx: expected an EasyDict, got {type(label_idx).__name__}")
        cols = _indices(path, "label_idx.eval", _field(path, label_idx, "eval"), len(attr_names)).tolist()
    parts = _field(path, info, "partition")
    if not isinstance(parts, dict):
        raise DataError(path, f"partition: expected an EasyDict, got {type(parts).__name__}")
    keys = (("train", "trainval"), ("test", "test")) if trainval else (("train", "train"), ("val", "val"),
                                                                       ("test", "test"))
    splits = [(split, _indices(path, f"partition.{key}", _partition(path, parts, key, partition), n))
              for split, key in keys]
    owner: dict[int, str] = {}
    for split, idx in splits:
        for i in idx.tolist():
            if i in owner:
                raise DataError(path, f"image {i} ({names[i]}) is in partition {owner[i]} and {split}; the splits "
                                      f"must be disjoint")
            owner[i] = split
    folder = image_dir or ZS_IMAGE_DIRS[layout]
    images = SafeJoiner(where, path).join(folder, "option image_dir")
    joiner = SafeJoiner(images, path)
    rows = labels[:, cols].tolist()
    records = [PersonRecord(image_path=joiner.join(names[i], f"image_name[{i}]"), pid=i, split=split,
                            attributes=tuple(rows[i]))
               for split, idx in splits for i in idx.tolist()]
    return PersonDataset(name=ZS_TITLES[layout], layout=layout, root=where, records=records,
                         attribute_names=[attr_names[c] for c in cols],
                         options={"file": file, "image_dir": folder, "attributes": attributes, "trainval": trainval,
                                  "partition": partition, "label_2_as": label_2_as})


def read_peta_zs(root: str | Path, **options: Any) -> PersonDataset:
    """PETA_ZS: ``PETA/dataset_zs_run0.pkl`` over ``PETA/images/`` (35 evaluated attributes)."""
    return read_zero_shot("peta-zs", root, **options)


def read_rap_zs(root: str | Path, **options: Any) -> PersonDataset:
    """RAP_ZS: ``RAP2/dataset_zs_run0.pkl`` over ``RAP2/RAP_dataset/`` (53 evaluated attributes)."""
    return read_zero_shot("rap-zs", root, **options)


PETA_ZS_TREE = """\
PETA/                             (Rethinking_of_PAR's data/PETA)
  dataset_zs_run0.pkl   EasyDict: image_name, label (N x A), attr_name, [label_idx.eval], partition
                        {train, val, trainval, test}; read without running code; its absolute root is ignored
  images/00001.png ... 19000.png
"""

RAP_ZS_TREE = """\
RAP2/                             (Rethinking_of_PAR's data/RAP2)
  dataset_zs_run0.pkl   as PETA_ZS; 53 evaluated attributes (RAPv2's 54 minus Age46-60)
  RAP_dataset/*.png
"""

_ZS_OPTIONS = {"file": ZS_FILE, "image_dir": "", "attributes": "eval", "trainval": False, "partition": 0,
               "label_2_as": 0}

INFOS = (
    ReaderInfo(
        name="peta-zs",
        description="PETA_ZS zero-shot (identity-disjoint) PETA split from dataset_zs_run0.pkl (35 attributes).",
        reader=read_peta_zs,
        tree=PETA_ZS_TREE,
        split_sizes={},  # not published in what the reference brief read
        folder_names=PETA_ZS_CANDIDATES,
        marker=lambda p: (p / ZS_FILE).is_file(),
        kind="attributes",
        required_splits=("train", "test"),
        options=dict(_ZS_OPTIONS),
        attribute_count=ZS_EVAL["peta-zs"],
    ),
    ReaderInfo(
        name="rap-zs",
        description="RAP_ZS zero-shot (identity-disjoint) RAPv2 split from dataset_zs_run0.pkl (53 attributes).",
        reader=read_rap_zs,
        tree=RAP_ZS_TREE,
        split_sizes={},  # not published in what the reference brief read
        folder_names=RAP_ZS_CANDIDATES,
        marker=lambda p: (p / ZS_FILE).is_file(),
        kind="attributes",
        required_splits=("train", "test"),
        options=dict(_ZS_OPTIONS),
        attribute_count=ZS_EVAL["rap-zs"],
    ),
)

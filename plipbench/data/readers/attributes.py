"""Pedestrian attribute datasets: PA-100K, PETA, RAPv1, RAPv2 (MATLAB annotation files).

Conventions (Rethinking_of_PAR, the reference for the PLIP tables, unless said otherwise):

* :attr:`PersonRecord.attributes` is the 0/1 label vector in the order of
  :attr:`PersonDataset.attribute_names`. Option ``attributes="eval"`` (default) keeps the evaluated
  columns (PETA: the first 35 of 105; RAPv1: the first 51 of 92; RAPv2: the 54 ``selected_attribute``
  columns, 1-based in the file); ``"all"`` keeps every column. PA-100K always has its 26.
* PETA and RAP ship 5 random partitions; option ``partition`` (default 0, like Rethinking_of_PAR)
  chooses one. When the file distinguishes train / val / test they are kept (PA-100K, PETA, RAPv2);
  RAPv1 only has trainval / test, and its trainval goes to split ``"train"``.
* RAP labels may be 2 ("uncertain"); option ``label_2_as`` (default 0, as Rethinking_of_PAR's
  ``label[label == 2] = 0``) decides what they become (0 or 1). Any other value outside {0, 1} is an error.
* No identity labels: ``pid`` is the image's 0-based index in the annotation file (unique per image; for
  PA-100K the index in train, then val, then test order); ``camid`` is -1. RAPv2 uses its
  ``person_identity`` field when present; negative (unknown) identities there get fresh ids above the
  largest known one, so they never collide with a real person.
* Every index read from a .mat is 1-based and converted to 0-based, with a range check.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from plipbench.data.readers.base import (
    ReaderInfo,
    SafeJoiner,
    first_existing,
    load_mat,
    locate_root,
    mat_indices,
    mat_labels,
    mat_require,
    mat_strings,
    struct_fields,
    unwrap,
)
from plipbench.data.records import PersonDataset, PersonRecord
from plipbench.errors import ConfigError, DataError


def _check_options(layout: str, attributes: str, partition: int, label_2_as: int | None = None) -> None:
    if attributes not in ("eval", "all"):
        raise ConfigError(f"{layout} option attributes must be 'eval' or 'all', got {attributes!r}")
    if isinstance(partition, bool) or not isinstance(partition, int) or not 0 <= partition <= 4:
        raise ConfigError(f"{layout} option partition must be an integer in 0..4, got {partition!r}")
    if label_2_as is not None and label_2_as not in (0, 1):
        raise ConfigError(f"{layout} option label_2_as must be 0 or 1, got {label_2_as!r}")


def _binary(path: Path, field: str, labels: Any, label_2_as: int | None = None) -> Any:
    """Labels as a 0/1 int matrix; 2 -> ``label_2_as`` when given, anything else outside {0, 1} is an error."""
    import numpy as np

    if label_2_as is not None:
        labels = np.where(labels == 2, label_2_as, labels)
    bad = np.setdiff1d(np.unique(labels), [0, 1])
    if bad.size:
        raise DataError(path, f"field {field}: labels must be 0/1{' (or 2)' if label_2_as is not None else ''}, "
                              f"found {bad[:5].tolist()}")
    return labels


def _records(joiner: SafeJoiner, names: Sequence[str], labels: Any, pids: Sequence[int],
             splits: Sequence[tuple[str, Any]], where: str) -> list[PersonRecord]:
    rows = labels.tolist()
    out: list[PersonRecord] = []
    for split, idx in splits:
        for i in idx.tolist():
            out.append(PersonRecord(image_path=joiner.join(names[i], f"{where} {i + 1}"), pid=int(pids[i]),
                                    split=split, attributes=tuple(rows[i])))
    return out


def _partition(path: Path, name: str, cell: Any, k: int) -> Any:
    import numpy as np

    parts = np.asarray(cell).reshape(-1)
    if k >= parts.size:
        raise DataError(path, f"{name}: has {parts.size} partitions, partition {k} requested")
    return unwrap(parts[k])


# --------------------------------------------------------------------------------------------------
# PA-100K

PA100K_CANDIDATES = ("PA-100K", "pa100k", "PA100K", "PA100k", "pa-100k")
PA100K_SPLITS = ("train", "val", "test")


def _pa100k_annotation(p: Path) -> Path | None:
    return first_existing([p / "annotation.mat", p / "annotation" / "annotation.mat"])


def read_pa100k(root: str | Path) -> PersonDataset:
    """PA-100K from ``annotation.mat`` (train / val / test, 26 attributes).

    The image folder is searched in ``data/release_data/release_data/``, ``release_data/release_data/``
    and ``data/``: the first that holds the first listed image, else the first that exists.
    """
    import numpy as np

    where = locate_root("pa100k", root, PA100K_CANDIDATES, lambda p: _pa100k_annotation(p) is not None,
                        "annotation.mat or annotation/annotation.mat")
    path = _pa100k_annotation(where)
    assert path is not None
    mat = load_mat(path)
    keys = ["attributes"] + [f"{s}_images_name" for s in PA100K_SPLITS] + [f"{s}_label" for s in PA100K_SPLITS]
    mat_require(path, mat, keys)
    attr_names = mat_strings(path, "attributes", mat["attributes"])
    names: list[str] = []
    labels = []
    splits = []
    for s in PA100K_SPLITS:
        split_names = mat_strings(path, f"{s}_images_name", mat[f"{s}_images_name"])
        split_labels = mat_labels(path, f"{s}_label", mat[f"{s}_label"], len(split_names), len(attr_names))
        labels.append(_binary(path, f"{s}_label", split_labels))
        splits.append((s, np.arange(len(names), len(names) + len(split_names))))
        names.extend(split_names)
    candidates = [where / "data" / "release_data" / "release_data", where / "release_data" / "release_data",
                  where / "data"]
    image_dir = next((d for d in candidates if names and (d / names[0]).is_file()), None)
    if image_dir is None:
        image_dir = next((d for d in candidates if d.is_dir()), None)
    if image_dir is None:
        raise DataError(where, "PA-100K image folder not found: expected one of "
                               + ", ".join(str(d.relative_to(where)) for d in candidates))
    all_labels = np.concatenate(labels, axis=0) if labels else np.zeros((0, len(attr_names)), dtype=np.int64)
    records = _records(SafeJoiner(image_dir, path), names, all_labels, range(len(names)), splits, "image")
    return PersonDataset(name="PA-100K", layout="pa100k", root=where, records=records, attribute_names=attr_names,
                         options={"image_dir": str(image_dir.relative_to(where))})


# --------------------------------------------------------------------------------------------------
# PETA

PETA_CANDIDATES = ("PETA", "peta")
PETA_EVAL = 35


def read_peta(root: str | Path, *, partition: int = 0, attributes: str = "eval") -> PersonDataset:
    """PETA from ``PETA.mat`` (struct ``peta``, read by position) and ``images/00001.png ...``.

    Positions: ``[0]`` the N x (4 + 105) matrix (columns 0-3 metadata, labels from column 4), ``[1]`` the
    105 attribute names, ``[3]`` the 5 partitions, each a struct of 1-based train / val / test indices.
    Image ``i`` (0-based) is ``images/{i + 1:05d}.png``.
    """
    import numpy as np

    _check_options("peta", attributes, partition)
    where = locate_root("peta", root, PETA_CANDIDATES, lambda p: (p / "PETA.mat").is_file(), "PETA.mat")
    path = where / "PETA.mat"
    mat = load_mat(path)
    mat_require(path, mat, ["peta"])
    rec = struct_fields(path, "peta", mat["peta"], 4, "0 data, 1 attribute names, 3 partitions")
    all_names = mat_strings(path, "peta[1] (attribute names)", rec[1])
    data = np.asarray(unwrap(rec[0]))
    if data.ndim != 2 or data.shape[1] != 4 + len(all_names):
        raise DataError(path, f"peta[0] (data) has shape {data.shape}, expected (N, {4 + len(all_names)}): "
                              f"4 metadata columns + one per attribute name")
    n = data.shape[0]
    labels = _binary(path, "peta[0]", mat_labels(path, "peta[0]", data[:, 4:], n, len(all_names)))
    cols = list(range(min(PETA_EVAL, len(all_names)))) if attributes == "eval" else list(range(len(all_names)))
    part = struct_fields(path, f"peta[3][{partition}]", _partition(path, "peta[3]", rec[3], partition), 3,
                         "train, val, test indices")
    splits = [(s, mat_indices(path, f"peta[3][{partition}].{s}", part[j], n))
              for j, s in enumerate(("train", "val", "test"))]
    names = [f"{i + 1:05d}.png" for i in range(n)]
    joiner = SafeJoiner(where / "images", path)
    records = _records(joiner, names, labels[:, cols], range(n), splits, "image")
    return PersonDataset(name="PETA", layout="peta", root=where, records=records,
                         attribute_names=[all_names[c] for c in cols],
                         options={"partition": partition, "attributes": attributes})


# --------------------------------------------------------------------------------------------------
# RAP v1 and v2

RAPV1_CANDIDATES = ("RAP", "rap", "RAPv1", "rapv1", "RAP1", "rap1")
RAPV2_CANDIDATES = ("RAPv2", "rapv2", "RAP2", "rap2", "RAP_v2", "RAP")
RAPV1_EVAL = 51
RAPV2_FIELDS = ("name", "data", "attribute", "selected_attribute", "partition_attribute")


def _rap_annotation(p: Path) -> Path | None:
    return first_existing([p / "RAP_annotation" / "RAP_annotation.mat", p / "RAP_annotation.mat"])


def _rap_root(layout: str, root: str | Path, candidates: tuple[str, ...]) -> tuple[Path, Path, Any]:
    where = locate_root(layout, root, candidates, lambda p: _rap_annotation(p) is not None,
                        "RAP_annotation/RAP_annotation.mat")
    path = _rap_annotation(where)
    assert path is not None
    mat = load_mat(path)
    mat_require(path, mat, ["RAP_annotation"])
    return where, path, unwrap(mat["RAP_annotation"])


def read_rapv1(root: str | Path, *, partition: int = 0, attributes: str = "eval", label_2_as: int = 0) -> PersonDataset:
    """RAPv1 from ``RAP_annotation/RAP_annotation.mat`` (struct read by position) and ``RAP_dataset/``.

    Positions: ``[0]`` the 5 partitions (each a struct of 1-based trainval / test index rows), ``[1]`` the
    N x 92 labels, ``[3]`` the English attribute names, ``[5]`` the image names. trainval -> ``"train"``.
    """
    import numpy as np

    _check_options("rapv1", attributes, partition, label_2_as)
    where, path, rec = _rap_root("rapv1", root, RAPV1_CANDIDATES)
    field_names = getattr(getattr(rec, "dtype", None), "names", None) or ()
    if "selected_attribute" in field_names or "partition_attribute" in field_names:
        raise DataError(path, "this is a RAPv2 annotation (named fields selected_attribute / partition_attribute); "
                              "use layout rapv2")
    rec = struct_fields(path, "RAP_annotation", rec, 6,
                        "0 partitions, 1 labels, 2 Chinese names, 3 English names, 4 position, 5 image names")
    all_names = mat_strings(path, "RAP_annotation[3] (English names)", rec[3])
    images = mat_strings(path, "RAP_annotation[5] (image names)", rec[5])
    raw = mat_labels(path, "RAP_annotation[1] (labels)", rec[1], len(images), len(all_names))
    labels = _binary(path, "RAP_annotation[1]", raw, label_2_as)
    n = len(images)
    part = struct_fields(path, f"RAP_annotation[0][{partition}]", _partition(path, "RAP_annotation[0]", rec[0],
                                                                              partition), 2, "trainval, test indices")
    splits = [("train", mat_indices(path, f"RAP_annotation[0][{partition}].trainval", part[0], n)),
              ("test", mat_indices(path, f"RAP_annotation[0][{partition}].test", part[1], n))]
    cols = list(range(min(RAPV1_EVAL, len(all_names)))) if attributes == "eval" else list(range(len(all_names)))
    records = _records(SafeJoiner(where / "RAP_dataset", path), images, labels[:, cols], np.arange(n), splits,
                       "image")
    return PersonDataset(name="RAPv1", layout="rapv1", root=where, records=records,
                         attribute_names=[all_names[c] for c in cols],
                         options={"partition": partition, "attributes": attributes, "label_2_as": label_2_as})


def read_rapv2(root: str | Path, *, partition: int = 0, attributes: str = "eval", label_2_as: int = 0) -> PersonDataset:
    """RAPv2 from ``RAP_annotation/RAP_annotation.mat`` (named fields) and ``RAP_dataset/``.

    Fields: ``name`` (image names), ``data`` (N x 152 labels), ``attribute`` (152 names),
    ``selected_attribute`` (the 54 evaluated columns, 1-based), ``partition_attribute`` (5 structs of
    1-based ``train_index`` / ``val_index`` / ``test_index``), optional ``person_identity``.
    """
    import numpy as np

    _check_options("rapv2", attributes, partition, label_2_as)
    where, path, rec = _rap_root("rapv2", root, RAPV2_CANDIDATES)
    field_names = getattr(getattr(rec, "dtype", None), "names", None) or ()
    missing = [f for f in RAPV2_FIELDS if f not in field_names]
    if missing:
        raise DataError(path, f"struct RAP_annotation: missing field(s) {', '.join(missing)} "
                              f"(found {', '.join(field_names) or 'none'}); a RAPv1 file? use layout rapv1")
    images = mat_strings(path, "name", rec["name"])
    all_names = mat_strings(path, "attribute", rec["attribute"])
    n = len(images)
    labels = _binary(path, "data", mat_labels(path, "data", rec["data"], n, len(all_names)), label_2_as)
    if attributes == "eval":
        cols = mat_indices(path, "selected_attribute", rec["selected_attribute"], len(all_names)).tolist()
    else:
        cols = list(range(len(all_names)))
    part = _partition(path, "partition_attribute", rec["partition_attribute"], partition)
    part_fields = getattr(getattr(part, "dtype", None), "names", None) or ()
    split_keys = (("train", "train_index"), ("val", "val_index"), ("test", "test_index"))
    missing = [k for _, k in split_keys if k not in part_fields]
    if missing:
        raise DataError(path, f"partition_attribute[{partition}]: missing field(s) {', '.join(missing)}")
    splits = [(s, mat_indices(path, f"partition_attribute[{partition}].{k}", part[k], n)) for s, k in split_keys]
    if "person_identity" in field_names:
        ids = np.asarray(unwrap(rec["person_identity"])).reshape(-1).astype(np.int64)
        if ids.size != n:
            raise DataError(path, f"person_identity has {ids.size} entries, expected one per image ({n})")
        unknown = ids < 0
        if unknown.any():
            start = int(ids[~unknown].max()) + 1 if (~unknown).any() else 0
            ids[unknown] = start + np.arange(int(unknown.sum()))
        pids = ids.tolist()
    else:
        pids = list(range(n))
    records = _records(SafeJoiner(where / "RAP_dataset", path), images, labels[:, cols], pids, splits, "image")
    return PersonDataset(name="RAPv2", layout="rapv2", root=where, records=records,
                         attribute_names=[all_names[c] for c in cols],
                         options={"partition": partition, "attributes": attributes, "label_2_as": label_2_as})


PA100K_TREE = """\
PA-100K/
  annotation.mat   (or annotation/annotation.mat) keys: attributes (26x1 cell), {train,val,test}_images_name
                   (Nx1 cells, 000001.jpg), {train,val,test}_label (Nx26, 0/1)
  data/release_data/release_data/000001.jpg ...  (or release_data/release_data/, or data/ directly)
"""

PETA_TREE = """\
PETA/
  PETA.mat      struct peta: [0] N x (4+105) (labels from column 4), [1] 105 names,
                [3] 5 partitions of 1-based train/val/test indices (first 35 attributes evaluated)
  images/00001.png ... 19000.png
"""

RAPV1_TREE = """\
RAP/
  RAP_annotation/RAP_annotation.mat   struct RAP_annotation: [0] 5 partitions (1-based trainval/test),
                                      [1] N x 92 labels, [3] English names, [5] image names (first 51 evaluated)
  RAP_dataset/*.png
"""

RAPV2_TREE = """\
RAPv2/
  RAP_annotation/RAP_annotation.mat   struct RAP_annotation with fields name, data (N x 152), attribute,
                                      selected_attribute (54, 1-based), partition_attribute (5 x train/val/test
                                      _index, 1-based), person_identity
  RAP_dataset/*.png
"""

_ATTR_OPTIONS = {"partition": 0, "attributes": "eval"}

INFOS = (
    ReaderInfo(
        name="pa100k",
        description="PA-100K pedestrian attributes (26 attributes, fixed 80k / 10k / 10k split).",
        reader=read_pa100k,
        tree=PA100K_TREE,
        split_sizes={
            "train": {"images": 80000, "identities": 80000},
            "val": {"images": 10000, "identities": 10000},
            "test": {"images": 10000, "identities": 10000},
        },
        folder_names=PA100K_CANDIDATES,
        marker=lambda p: _pa100k_annotation(p) is not None,
        kind="attributes",
        required_splits=("train", "test"),
    ),
    ReaderInfo(
        name="peta",
        description="PETA pedestrian attributes (35 evaluated of 105; 5 partitions, partition 0 by default).",
        reader=read_peta,
        tree=PETA_TREE,
        split_sizes={
            "train": {"images": 9500, "identities": 9500},
            "val": {"images": 1900, "identities": 1900},
            "test": {"images": 7600, "identities": 7600},
        },
        folder_names=PETA_CANDIDATES,
        marker=lambda p: (p / "PETA.mat").is_file(),
        kind="attributes",
        required_splits=("train", "test"),
        options=dict(_ATTR_OPTIONS),
    ),
    ReaderInfo(
        name="rapv1",
        description="RAPv1 pedestrian attributes (51 evaluated of 92; trainval -> train; label 2 -> 0).",
        reader=read_rapv1,
        tree=RAPV1_TREE,
        split_sizes={
            "train": {"images": 33268, "identities": 33268},
            "test": {"images": 8317, "identities": 8317},
        },
        folder_names=RAPV1_CANDIDATES,
        marker=lambda p: _rap_annotation(p) is not None,
        kind="attributes",
        required_splits=("train", "test"),
        options={**_ATTR_OPTIONS, "label_2_as": 0},
    ),
    ReaderInfo(
        name="rapv2",
        description="RAPv2 pedestrian attributes (54 selected of 152; train / val / test; label 2 -> 0).",
        reader=read_rapv2,
        tree=RAPV2_TREE,
        split_sizes={
            "train": {"images": 50957},
            "val": {"images": 16986},
            "test": {"images": 16985},
        },
        folder_names=RAPV2_CANDIDATES,
        marker=lambda p: _rap_annotation(p) is not None,
        kind="attributes",
        required_splits=("train", "test"),
        options={**_ATTR_OPTIONS, "label_2_as": 0},
    ),
)

"""Records of the person-search datasets (CUHK-SYSU, PRW): scene images with several annotated persons.

A person-search dataset is not a list of person crops, so it has its own records: a
:class:`PersonSearchDataset` holds the ``train`` and ``gallery`` scene images (:class:`SceneImage`: every
annotated box and its identity), the :class:`SearchQuery` list, and, for CUHK-SYSU, the per-query gallery
protocol of one ``TestG*.mat`` (:class:`CuhkSysuProtocol`). :meth:`PersonSearchDataset.evaluation_inputs`
gives the arguments of :func:`plipbench.metrics.evaluate_cuhk_sysu` / :func:`plipbench.metrics.evaluate_prw`
besides the features, so a reader's output plugs straight into the scorer.

Conventions shared by both readers:

* boxes are ``[x1, y1, x2, y2]`` float64 (the files hold ``[x, y, w, h]``; ``x2 = x + w``), kept as read
  (SeqNet truncates them to int32, which only matters for non-integer annotations, e.g. PRW's);
* a box with ``w <= 0`` or ``h <= 0`` is dropped (SeqNet's ``valid_index`` on CUHK-SYSU) and counted in
  ``dropped_boxes``;
* a person without identity has pid :data:`UNLABELED` (-1; SeqNet uses 5555, OIM -1);
* ``camid`` is 0-based (PRW ``c1`` -> 0), -1 where the dataset has no cameras (CUHK-SYSU).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from plipbench.data.readers.base import unwrap
from plipbench.errors import DataError

UNLABELED = -1


@dataclass(frozen=True)
class SceneImage:
    """One scene image: ``boxes`` (n, 4) ``[x1, y1, x2, y2]`` and ``pids`` (n,) int64 (:data:`UNLABELED` for
    persons without identity)."""

    name: str
    image_path: Path
    boxes: np.ndarray
    pids: np.ndarray
    camid: int = -1


@dataclass(frozen=True)
class SearchQuery:
    """One query person: its scene image, its box ``[x1, y1, x2, y2]`` and identity; ``gallery_index`` is the
    position of its scene image in :attr:`PersonSearchDataset.gallery`, -1 if the image is not there."""

    name: str
    image_path: Path
    box: np.ndarray
    pid: int
    camid: int = -1
    gallery_index: int = -1


@dataclass(frozen=True)
class CuhkSysuProtocol:
    """The galleries of one ``TestG{gallery_size}.mat`` (``gallery_size=-1``: the full set, from ``TestG50``).

    ``images[i]``: query i's gallery entries as indices into the dataset's gallery, in file order.
    ``targets[i]``: entry position -> the query person's box ``[x1, y1, x2, y2]`` in that entry (the entries
    whose ``idlocate`` is non-empty).
    """

    gallery_size: int
    source: Path
    images: list[np.ndarray]
    targets: list[dict[int, np.ndarray]]


@dataclass
class PersonSearchDataset:
    name: str
    layout: str
    root: Path
    train: list[SceneImage]
    gallery: list[SceneImage]
    queries: list[SearchQuery]
    protocol: CuhkSysuProtocol | None = None
    options: dict = field(default_factory=dict)
    dropped_boxes: int = 0

    def summary(self) -> dict[str, dict[str, int]]:
        """Images, boxes and labelled identities of each split; queries and their identities."""
        out = {}
        for split, scenes in (("train", self.train), ("gallery", self.gallery)):
            pids = np.concatenate([s.pids for s in scenes]) if scenes else np.zeros(0, dtype=np.int64)
            out[split] = {"images": len(scenes), "boxes": int(len(pids)),
                          "identities": len(set(pids[pids != UNLABELED].tolist()))}
        out["query"] = {"images": len(self.queries), "identities": len({q.pid for q in self.queries})}
        return out

    def evaluation_inputs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`~plipbench.metrics.evaluate_cuhk_sysu` (CUHK-SYSU) or
        :func:`~plipbench.metrics.evaluate_prw` (PRW) besides ``query_features`` and ``gallery``, whose
        entries follow :attr:`queries` and :attr:`gallery`."""
        query_images = np.array([q.gallery_index for q in self.queries], dtype=np.int64)
        if self.protocol is not None:
            return {"protocol_images": self.protocol.images, "protocol_targets": self.protocol.targets,
                    "gallery_size": self.protocol.gallery_size, "query_images": query_images}
        return {
            "query_frames": query_images,
            "query_pids": np.array([q.pid for q in self.queries], dtype=np.int64),
            "query_cams": np.array([q.camid for q in self.queries], dtype=np.int64),
            "frame_pids": [s.pids for s in self.gallery],
            "frame_boxes": [s.boxes for s in self.gallery],
            "frame_cams": np.array([s.camid for s in self.gallery], dtype=np.int64),
        }


def mat_field(rec: Any, name: str, position: int) -> Any:
    """Field ``name`` of a MATLAB struct record (by name when the record has names, else by position)."""
    rec = unwrap(rec)
    names = getattr(getattr(rec, "dtype", None), "names", None)
    if names and name in names:
        return rec[name]
    if names is not None and len(names) > position:
        return rec[position]
    if isinstance(rec, (tuple, np.void)) and len(rec) > position:
        return rec[position]
    raise KeyError(name)


def struct_records(x: Any) -> np.ndarray:
    """A MATLAB struct array (or a cell of structs) as a 1-D array of records, whatever its shape."""
    arr = np.asarray(x)
    return arr.reshape(-1)


def mat_xywh(path: Path, where: str, value: Any, allow_empty: bool = False) -> np.ndarray | None:
    """A MATLAB ``[x, y, w, h]`` as float64 (4,), as stored; ``None`` for an empty one when allowed."""
    try:
        arr = np.asarray(unwrap(value), dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise DataError(path, f"{where}: expected a numeric box [x, y, w, h], got {type(value).__name__}") from None
    if arr.size == 0 and allow_empty:
        return None
    if arr.size != 4 or not np.all(np.isfinite(arr)):
        raise DataError(path, f"{where}: expected a box of 4 finite numbers [x, y, w, h], got {arr.tolist()}")
    return arr


def to_xyxy(xywh: np.ndarray) -> np.ndarray:
    """``[x, y, w, h]`` rows -> ``[x1, y1, x2, y2]`` (``x2 = x + w``, as every reference loader does)."""
    xywh = np.asarray(xywh, dtype=np.float64)
    return np.concatenate([xywh[..., :2], xywh[..., :2] + xywh[..., 2:]], axis=-1)


def valid_boxes(xywh: np.ndarray) -> np.ndarray:
    """Mask of the ``[x, y, w, h]`` rows with positive width and height (SeqNet's ``valid_index``)."""
    return (xywh[:, 2] > 0) & (xywh[:, 3] > 0) if len(xywh) else np.zeros(0, dtype=bool)

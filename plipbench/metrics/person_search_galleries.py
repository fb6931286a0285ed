"""The CUHK-SYSU and PRW galleries of SeqNet's person-search evaluation, and their entry points.

:func:`cuhk_sysu_galleries` and :func:`prw_galleries` turn a dataset's protocol into one
:class:`~plipbench.metrics.person_search.QueryGallery` per query, built lazily (a PRW or CUHK-SYSU full-set
gallery is every test image, so they are never all held at once). :func:`evaluate_cuhk_sysu` and
:func:`evaluate_prw` score with them and record every option in ``protocol``.

CUHK-SYSU (``eval_search_cuhk``): query i is scored against the gallery of ``TestG{gallery_size}.mat``,
entry by entry; an entry whose ``idlocate`` is non-empty holds the target. ``gallery_size=-1`` is the full
set: ``TestG50``'s gallery plus every other test image (except the query's own) as negatives.

PRW (``eval_search_prw``): the gallery is every test frame except the query's own; with
``ignore_cam_id=True`` (the reference's default, "according to CUHK-SYSU") same-camera frames stay in it,
with ``False`` it is cross-camera only. A frame holds the target when its annotation has the query pid.
Should a pid be annotated twice in one frame, the reference's target is the first box (``boxes[pids ==
pid].ravel()`` read as one box): ``duplicate_pid="first"``; ``"any"`` accepts a hit on either (still one
true positive per frame).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from plipbench.metrics._checks import MetricInputError, check_option
from plipbench.metrics.person_search import (
    DUPLICATE_ENTRIES,
    DUPLICATE_PID,
    FULL_SET_COUNTING,
    QueryGallery,
    evaluate_person_search,
)

CUHK_SYSU_GALLERY_SIZES = (50, 100, 500, 1000, 2000, 4000, -1)


def _index_vector(name: str, values: Any, n: int, allow_missing: bool = False) -> np.ndarray:
    arr = np.asarray(values).reshape(-1)
    if arr.size and arr.dtype.kind not in "iu":
        raise MetricInputError(f"{name}: expected integer gallery image indices, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    low = -1 if allow_missing else 0
    bad = (arr < low) | (arr >= n)
    if bad.any():
        what = "a gallery image index (or -1: not in the gallery)" if allow_missing else "a gallery image index"
        raise MetricInputError(f"{name}[{int(np.flatnonzero(bad)[0])}]: {int(arr[bad][0])} is not {what} in "
                               f"0..{n - 1}")
    return arr


class _LazyGalleries(Sequence):
    def __init__(self, n: int, build) -> None:
        self._n, self._build = n, build

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self._build(j) for j in range(*i.indices(self._n))]
        if not -self._n <= i < self._n:
            raise IndexError(i)
        return self._build(i % self._n)


def cuhk_sysu_galleries(protocol_images: Sequence[Any], protocol_targets: Sequence[Mapping[int, Any]], *,
                        num_gallery_images: int, gallery_size: int = 100, query_images: Any = None,
                        full_set_counting: str = "oim", duplicate_entries: str = "once") -> Sequence[QueryGallery]:
    """CUHK-SYSU galleries from a ``TestG*.mat`` protocol.

    ``protocol_images[i]``: query i's gallery entries as gallery image indices, in file order.
    ``protocol_targets[i]``: entry position -> target box ``[x1, y1, x2, y2]``, for the entries whose
    ``idlocate`` is non-empty. ``query_images[i]``: gallery index of query i's own image, -1 if it is not a
    gallery image (needed for ``gallery_size=-1``, where ``protocol_*`` are ``TestG50``'s).
    """
    check_option("gallery_size", gallery_size, CUHK_SYSU_GALLERY_SIZES)
    check_option("full_set_counting", full_set_counting, FULL_SET_COUNTING)
    check_option("duplicate_entries", duplicate_entries, DUPLICATE_ENTRIES)
    n = len(protocol_images)
    if len(protocol_targets) != n:
        raise MetricInputError(f"protocol_targets: {len(protocol_targets)} entries for {n} queries")
    full = gallery_size == -1
    if full and query_images is None:
        raise MetricInputError("query_images: required for the full set (gallery_size=-1), to leave out each "
                               "query's own image")
    queries = (_index_vector("query_images", query_images, num_gallery_images, allow_missing=True)
               if query_images is not None else None)
    if queries is not None and len(queries) != n:
        raise MetricInputError(f"query_images: {len(queries)} entries for {n} queries")

    def build(i: int) -> QueryGallery:
        entries = _index_vector(f"protocol_images[{i}]", protocol_images[i], num_gallery_images)
        _, first_pos = np.unique(entries, return_index=True)
        keep = np.sort(first_pos)  # first occurrence of each image, file order
        first_entries = set(keep.tolist())
        images = entries[keep]
        targets: dict[int, Any] = {}
        counted = 0
        for pos, box in sorted(dict(protocol_targets[i]).items()):
            if not 0 <= int(pos) < len(entries):
                raise MetricInputError(f"protocol_targets[{i}]: entry {pos} outside the {len(entries)} gallery "
                                       f"entries of the query")
            counted += 1
            img = int(entries[int(pos)])
            # "once": an image holds the target if any of its entries does; "seqnet": its first entry decides
            if duplicate_entries == "once" or int(pos) in first_entries:
                targets.setdefault(img, box)
        num_targets = counted if duplicate_entries == "seqnet" else len(targets)
        negatives = np.zeros(0, dtype=np.int64)
        if full:
            others = np.ones(num_gallery_images, dtype=bool)
            if queries[i] >= 0:
                others[queries[i]] = False
            if full_set_counting == "seqnet":  # every other image first, the protocol's own included again
                negatives = np.flatnonzero(others)
            else:
                others[images] = False
                images = np.concatenate([images, np.flatnonzero(others)])
        return QueryGallery(images=images, targets=targets, num_targets=num_targets, negatives_first=negatives)

    return _LazyGalleries(n, build)


def prw_galleries(query_frames: Any, query_pids: Any, query_cams: Any, frame_pids: Sequence[Any],
                  frame_boxes: Sequence[Any], frame_cams: Any, *, ignore_cam_id: bool = True,
                  duplicate_pid: str = "first") -> Sequence[QueryGallery]:
    """PRW galleries: every test frame but the query's own (cross-camera only with ``ignore_cam_id=False``).

    ``query_frames[i]``: the gallery index of query i's frame (it must be a gallery frame). ``frame_pids[f]``
    and ``frame_boxes[f]`` (k, 4) ``[x1, y1, x2, y2]``: frame f's annotation (unlabeled persons with a pid
    no query has, e.g. -1). ``frame_cams``, ``query_cams``: camera ids.
    """
    check_option("duplicate_pid", duplicate_pid, DUPLICATE_PID)
    n_frames = len(frame_pids)
    if len(frame_boxes) != n_frames:
        raise MetricInputError(f"frame_boxes: {len(frame_boxes)} frames, frame_pids has {n_frames}")
    cams = np.asarray(frame_cams).reshape(-1)
    if len(cams) != n_frames:
        raise MetricInputError(f"frame_cams: {len(cams)} cameras for {n_frames} frames")
    frames = _index_vector("query_frames", query_frames, n_frames)
    pids = np.asarray(query_pids).reshape(-1)
    qcams = np.asarray(query_cams).reshape(-1)
    if not len(frames) == len(pids) == len(qcams):
        raise MetricInputError(f"query_frames, query_pids, query_cams: lengths {len(frames)}, {len(pids)}, "
                               f"{len(qcams)} differ")
    wanted = set(pids.tolist())
    occurrences: dict[int, dict[int, np.ndarray]] = {}  # pid -> frame -> its boxes, in annotation order
    for f in range(n_frames):
        p = np.asarray(frame_pids[f]).reshape(-1)
        b = np.asarray(frame_boxes[f], dtype=np.float64).reshape(-1, 4) if len(p) else np.zeros((0, 4))
        if len(b) != len(p):
            raise MetricInputError(f"frame_boxes[{f}]: {len(b)} boxes for {len(p)} pids")
        for pid in set(p.tolist()) & wanted:
            occurrences.setdefault(pid, {})[f] = b[p == pid]

    def build(i: int) -> QueryGallery:
        keep = np.ones(n_frames, dtype=bool) if ignore_cam_id else cams != qcams[i]
        keep[frames[i]] = False
        targets = {f: (boxes[:1] if duplicate_pid == "first" else boxes)
                   for f, boxes in occurrences.get(int(pids[i]), {}).items() if keep[f]}
        return QueryGallery(images=np.flatnonzero(keep), targets=targets)

    return _LazyGalleries(len(frames), build)


def evaluate_cuhk_sysu(query_features: Any, gallery: Sequence[Any], protocol_images: Sequence[Any],
                       protocol_targets: Sequence[Mapping[int, Any]], *, gallery_size: int = 100,
                       query_images: Any = None, full_set_counting: str = "oim", duplicate_entries: str = "once",
                       det_thresh: float = 0.5, cbgm: bool = False, k1: int = 10, k2: int = 3,
                       query_context: Sequence[Any] | None = None, confidence_weighted: bool = False,
                       chunk_bytes: int | None = None) -> dict:
    """SeqNet's ``eval_search_cuhk`` (CBGM defaults k1=10, k2=3); see :func:`cuhk_sysu_galleries` and
    :func:`~plipbench.metrics.person_search.evaluate_person_search` for the arguments."""
    galleries = cuhk_sysu_galleries(protocol_images, protocol_targets, num_gallery_images=len(gallery),
                                    gallery_size=gallery_size, query_images=query_images,
                                    full_set_counting=full_set_counting, duplicate_entries=duplicate_entries)
    protocol = {"dataset": "cuhk-sysu", "gallery_size": gallery_size, "duplicate_entries": duplicate_entries,
                **({"full_set_counting": full_set_counting} if gallery_size == -1 else {})}
    extra = {} if chunk_bytes is None else {"chunk_bytes": chunk_bytes}
    return evaluate_person_search(query_features, gallery, galleries, det_thresh=det_thresh, cbgm=cbgm, k1=k1,
                                  k2=k2, query_context=query_context, confidence_weighted=confidence_weighted,
                                  protocol=protocol, **extra)


def evaluate_prw(query_features: Any, gallery: Sequence[Any], query_frames: Any, query_pids: Any,
                 query_cams: Any, frame_pids: Sequence[Any], frame_boxes: Sequence[Any], frame_cams: Any, *,
                 ignore_cam_id: bool = True, duplicate_pid: str = "first", det_thresh: float = 0.5,
                 cbgm: bool = False, k1: int = 30, k2: int = 4, query_context: Sequence[Any] | None = None,
                 confidence_weighted: bool = False, chunk_bytes: int | None = None) -> dict:
    """SeqNet's ``eval_search_prw`` (CBGM defaults k1=30, k2=4); see :func:`prw_galleries` and
    :func:`~plipbench.metrics.person_search.evaluate_person_search` for the arguments."""
    if len(gallery) != len(frame_pids):
        raise MetricInputError(f"gallery: {len(gallery)} images, but {len(frame_pids)} annotated frames")
    galleries = prw_galleries(query_frames, query_pids, query_cams, frame_pids, frame_boxes, frame_cams,
                              ignore_cam_id=ignore_cam_id, duplicate_pid=duplicate_pid)
    protocol = {"dataset": "prw", "ignore_cam_id": bool(ignore_cam_id), "duplicate_pid": duplicate_pid,
                "gallery": "every test frame but the query's own" + ("" if ignore_cam_id else ", other cameras only")}
    extra = {} if chunk_bytes is None else {"chunk_bytes": chunk_bytes}
    return evaluate_person_search(query_features, gallery, galleries, det_thresh=det_thresh, cbgm=cbgm, k1=k1,
                                  k2=k2, query_context=query_context, confidence_weighted=confidence_weighted,
                                  protocol=protocol, **extra)

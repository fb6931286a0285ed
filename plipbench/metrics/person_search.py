"""Person search: SeqNet's evaluation (``eval_search_cuhk`` / ``eval_search_prw``), ported to NumPy.

The reference is ``SeqNet@edec285:eval_func.py`` as ``../shared/reference/more-tasks.md`` §1.4 describes it
(SOLIDER-PersonSearch and GLCNet share it). For each query:

- the gallery is a list of scene images, each with its detections (boxes ``[x1, y1, x2, y2]``, scores,
  features); detections with ``score < det_thresh`` are dropped;
- a detection's similarity to the query is the dot product of their features;
- in a gallery image that holds the target (ground-truth box ``[x1, y1, x2, y2]``, ``w = x2 - x1``,
  ``h = y2 - y1``) the detections are sorted by similarity, descending, and **only the first** whose IoU
  with the target reaches ``min(0.5, w*h / ((w+10)*(h+10)))`` is a true positive; every other box is a
  negative. IoU areas are ``(x2-x1)(y2-y1)``, without +1;
- ``count_gt`` is the number of gallery images that hold the target, detected or not, ``count_tp`` the
  number of true positives; ``recall = count_tp / count_gt``;
- ``AP = average_precision_score(y_true, y_score) * recall`` over all boxes of all gallery images
  (sklearn's step AP, tied scores grouped into one threshold), 0 when nothing is found;
- top-k = whether a true positive is among the k best boxes; ties are ordered as the reference's
  ``np.argsort(y_score)[::-1]`` orders them on small arrays: the later box (in the order below) first;
- mAP and top-k are means over queries.

Box order (it matters for tied scores in top-k only): the gallery images in protocol order, each image's
boxes in detection order, except that the boxes of an image holding the target are sorted by similarity
(descending, ties later-first), as the reference does.

CBGM (``cbgm=True``, ``utils/km.py``): the images of the ``k1`` best boxes are re-scored. For each, the
``k2`` first context boxes of the query image (``query_context``, the query box first) and the image's
boxes form a bipartite graph weighted by feature dot products; a maximum-weight matching (Kuhn-Munkres;
here ``scipy.optimize.linear_sum_assignment``, which finds the same optimum) is found, and the box matched
to the query box gets the *largest* matched weight as its similarity.

Where this port differs from the reference (each is a recorded option or convention):

- ``gallery_size=-1`` (CUHK-SYSU full set) crashes in SeqNet; GLCNet's fix scores the protocol images
  twice (once as negatives, once properly). ``full_set_counting="oim"`` (default) scores every image
  once, as OIM's ``psdb.py`` does; ``"seqnet"`` reproduces the double counting. With CBGM, ``"oim"``
  re-scores over the whole full-set gallery, ``"seqnet"`` over the protocol images only.
- A gallery image listed twice in a protocol counts once (``duplicate_entries="once"``); SeqNet skips the
  second copy but counts it in ``count_gt`` again (``"seqnet"``).
- A query whose gallery holds no target image (PRW cross-camera galleries can have none) makes the
  reference divide by zero. Here it is skipped: its AP is NaN and it is left out of the means
  (``num_skipped``).
- Top-k ties use a stable order (NumPy's default ``argsort`` is stable only below 17 elements).

Everything is NumPy (scipy only for CBGM's matching). Memory is bounded: similarities are computed for a
chunk of queries at a time (a dense product when a query's gallery is most of the boxes, a gather
otherwise), and a query's gallery is built only when it is scored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from plipbench.metrics._checks import MetricInputError, check_positive_int

TOPK = (1, 5, 10)
CHUNK_BYTES = 64 * 2**20
IOU_RULE = "min(0.5, w*h / ((w+10)*(h+10))) of the target box; IoU areas (x2-x1)(y2-y1), no +1"
TP_RULE = "per gallery image, the first detection in descending similarity that reaches the IoU threshold"
AP_RULE = "sklearn average_precision_score over all gallery boxes x recall (count_tp / count_gt); 0 if no hit"
TIE_RULE = "descending score; tied boxes: the later one in gallery order first (stable argsort, reversed)"
FULL_SET_COUNTING = ("oim", "seqnet")
DUPLICATE_ENTRIES = ("once", "seqnet")
DUPLICATE_PID = ("first", "any")
_EMPTY = np.zeros(0, dtype=np.int64)


@dataclass(frozen=True)
class Detections:
    """The detections of one scene image: ``boxes`` (n, 4) ``[x1, y1, x2, y2]``, ``scores`` (n,), ``features``
    (n, D). For the ground-truth-box ("oracle detector") protocol use :meth:`from_boxes`."""

    boxes: Any
    scores: Any
    features: Any

    @classmethod
    def from_boxes(cls, boxes: Any, features: Any) -> Detections:
        """Annotated boxes as detections with score 1 (SeqNet ``EVAL_USE_GT``, OIM ``--use_gt``)."""
        return cls(boxes, np.ones(len(np.asarray(boxes).reshape(-1, 4))), features)


@dataclass(frozen=True)
class QueryGallery:
    """What one query is scored against.

    ``images``: gallery image indices in scoring order, each at most once. ``targets``: image index ->
    (k, 4) target boxes ``[x1, y1, x2, y2]`` (k is 1 except with ``duplicate_pid="any"``), for the images
    of ``images`` that hold the query person. ``num_targets``: ``count_gt``, by default the number of
    ``images`` with a target. ``negatives_first``: images scored as all-negative boxes *before*
    ``images`` and never re-scored by CBGM (SeqNet's full-set loop; empty otherwise).
    """

    images: Any
    targets: Mapping[int, Any] = field(default_factory=dict)
    num_targets: int | None = None
    negatives_first: Any = ()


# --------------------------------------------------------------------------------------------------
# input checks


def _float_array(name: str, values: Any, ndim: int) -> np.ndarray:
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    try:
        arr = np.asarray(values)
    except (TypeError, ValueError):
        raise MetricInputError(f"{name}: expected a numeric array, got {type(values).__name__}") from None
    if arr.dtype.kind not in "fiu" or arr.dtype == np.bool_:
        raise MetricInputError(f"{name}: expected real numbers, got dtype {arr.dtype}")
    if arr.ndim != ndim:
        raise MetricInputError(f"{name}: expected a {ndim}-D array, got shape {arr.shape}")
    if arr.dtype.kind != "f":
        arr = arr.astype(np.float64)
    elif arr.dtype.itemsize < 4:  # float16: compute in float32
        arr = arr.astype(np.float32)
    if not np.all(np.isfinite(arr)):
        raise MetricInputError(f"{name}: contains NaN or infinite values")
    return arr


def _check_boxes(name: str, boxes: Any, positive: bool = False) -> np.ndarray:
    arr = np.asarray(boxes)
    if arr.size == 0:
        return np.zeros((0, 4), dtype=np.float64)
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    arr = _float_array(name, arr, 2).astype(np.float64)
    if arr.shape[1] != 4:
        raise MetricInputError(f"{name}: expected boxes of 4 numbers [x1, y1, x2, y2], got shape {arr.shape}")
    if positive and np.any((arr[:, 2] <= arr[:, 0]) | (arr[:, 3] <= arr[:, 1])):
        raise MetricInputError(f"{name}: a target box needs x2 > x1 and y2 > y1 ([x1, y1, x2, y2]), got "
                               f"{arr.tolist()}")
    return arr


class _PackedGallery:
    """All kept detections in one array, image by image (``offsets``), checked once."""

    def __init__(self, gallery: Sequence[Any], dim: int, det_thresh: float, confidence_weighted: bool) -> None:
        if isinstance(gallery, (str, bytes)) or not hasattr(gallery, "__len__"):
            raise MetricInputError(f"gallery: expected a sequence of Detections, one per gallery image, got "
                                   f"{type(gallery).__name__}")
        if len(gallery) == 0:
            raise MetricInputError("gallery: no gallery image")
        boxes, feats, counts, dtypes = [], [], np.zeros(len(gallery), dtype=np.int64), []
        for i, det in enumerate(gallery):
            b, s, f = self._unpack(i, det, dim)
            keep = s >= det_thresh
            if confidence_weighted:
                f = f * s[:, None].astype(f.dtype)
            boxes.append(b[keep])
            feats.append(f[keep])
            counts[i] = int(keep.sum())
            dtypes.append(f.dtype)
        dtype = np.result_type(*dtypes) if dtypes else np.float64
        self.boxes = np.concatenate(boxes) if boxes else np.zeros((0, 4))
        self.features = np.concatenate([f.astype(dtype, copy=False) for f in feats]) if feats else None
        self.offsets = np.concatenate([[0], np.cumsum(counts)])
        self.n_images = len(gallery)
        self.n_boxes = int(self.offsets[-1])
        self.dtype = dtype

    @staticmethod
    def _unpack(i: int, det: Any, dim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if isinstance(det, Detections):
            b, s, f = det.boxes, det.scores, det.features
        elif isinstance(det, (tuple, list)) and len(det) == 3:
            b, s, f = det
        else:
            raise MetricInputError(f"gallery[{i}]: expected Detections(boxes, scores, features) or a 3-tuple, got "
                                   f"{type(det).__name__}")
        boxes = _check_boxes(f"gallery[{i}].boxes", b)
        if np.any((boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])):
            raise MetricInputError(f"gallery[{i}].boxes: a box has x2 < x1 or y2 < y1; expected [x1, y1, x2, y2]")
        n = len(boxes)
        scores = _float_array(f"gallery[{i}].scores", np.asarray(s).reshape(-1), 1)
        if len(scores) != n:
            raise MetricInputError(f"gallery[{i}].scores: {len(scores)} scores for {n} boxes")
        feats = np.asarray(f.detach().cpu().numpy() if hasattr(f, "detach") else f)
        if n == 0 and feats.size == 0:
            return boxes, scores, np.zeros((0, dim))
        feats = _float_array(f"gallery[{i}].features", feats, 2)
        if feats.shape != (n, dim):
            raise MetricInputError(f"gallery[{i}].features: shape {feats.shape}, expected ({n}, {dim}) "
                                   f"({n} boxes, query feature dimension {dim})")
        return boxes, scores, feats

    def box_ranges(self, images: np.ndarray) -> np.ndarray:
        """Indices of the kept boxes of ``images``, image after image, in detection order."""
        if len(images) == 0:
            return _EMPTY
        starts, ends = self.offsets[images], self.offsets[images + 1]
        lengths = ends - starts
        total = int(lengths.sum())
        if total == 0:
            return _EMPTY
        # arange per image without a Python loop: a running index minus each image's start shift
        shift = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
        return np.arange(total, dtype=np.int64) + shift


def _check_query_gallery(i: int, g: Any, n_images: int, position: np.ndarray
                         ) -> tuple[np.ndarray, dict[int, np.ndarray], int, np.ndarray]:
    """The query's images, targets, count_gt and negatives, checked (``position``: scratch space, one slot per
    gallery image)."""
    if not isinstance(g, QueryGallery):
        raise MetricInputError(f"galleries[{i}]: expected a QueryGallery, got {type(g).__name__}")

    def indices(name: str, values: Any) -> np.ndarray:
        arr = np.asarray(values).reshape(-1)
        if arr.size and arr.dtype.kind not in "iu":
            raise MetricInputError(f"galleries[{i}].{name}: expected integer image indices, got dtype {arr.dtype}")
        arr = arr.astype(np.int64)
        if arr.size and (arr.min() < 0 or arr.max() >= n_images):
            raise MetricInputError(f"galleries[{i}].{name}: image index {int(arr[(arr < 0) | (arr >= n_images)][0])}"
                                   f" outside 0..{n_images - 1} (the gallery has {n_images} images)")
        return arr

    images = indices("images", g.images)
    position[:] = -1
    position[images] = np.arange(len(images))
    if len(images) and np.count_nonzero(position >= 0) != len(images):
        raise MetricInputError(f"galleries[{i}].images: an image is listed twice (each image is scored once)")
    negatives = indices("negatives_first", g.negatives_first)
    targets: dict[int, np.ndarray] = {}
    for key, boxes in dict(g.targets).items():
        if not isinstance(key, (int, np.integer)) or not 0 <= key < n_images or position[key] < 0:
            raise MetricInputError(f"galleries[{i}].targets: image {key} is not in the query's images")
        arr = _check_boxes(f"galleries[{i}].targets[{key}]", boxes, positive=True)
        if len(arr):
            targets[int(key)] = arr
    count_gt = len(targets) if g.num_targets is None else g.num_targets
    if isinstance(count_gt, bool) or not isinstance(count_gt, (int, np.integer)) or count_gt < len(targets):
        raise MetricInputError(f"galleries[{i}].num_targets: expected an integer >= {len(targets)} (the images "
                               f"with a target), got {g.num_targets!r}")
    return images, targets, int(count_gt), negatives


# --------------------------------------------------------------------------------------------------
# scoring


def _iou(boxes: np.ndarray, target: np.ndarray) -> np.ndarray:
    """IoU of each box with one target, areas without +1 (the reference's ``_compute_iou``)."""
    w = np.maximum(np.minimum(boxes[:, 2], target[2]) - np.maximum(boxes[:, 0], target[0]), 0.0)
    h = np.maximum(np.minimum(boxes[:, 3], target[3]) - np.maximum(boxes[:, 1], target[1]), 0.0)
    inter = w * h
    union = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
             + (target[2] - target[0]) * (target[3] - target[1]) - inter)
    return inter / np.maximum(union, np.finfo(np.float64).tiny)  # the target has area, so union > 0


def adaptive_iou_threshold(w: Any, h: Any) -> Any:
    """``min(0.5, w*h / ((w+10)*(h+10)))``: the reference's threshold, lower for boxes under ~100 px."""
    w, h = np.asarray(w, dtype=np.float64), np.asarray(h, dtype=np.float64)
    return np.minimum(0.5, (w * h) / ((w + 10.0) * (h + 10.0)))


def _first_match(boxes: np.ndarray, sims: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, int]:
    """The image's box order (similarity descending, ties later-first) and the position in that order of the
    true positive (-1 if none)."""
    order = np.argsort(sims, kind="stable")[::-1]
    hit = np.zeros(len(order), dtype=bool)
    for t in targets:
        thr = adaptive_iou_threshold(t[2] - t[0], t[3] - t[1])
        hit |= _iou(boxes[order], t) >= thr
    pos = np.flatnonzero(hit)
    return order, (int(pos[0]) if len(pos) else -1)


def sklearn_average_precision(scores: np.ndarray, positive: np.ndarray) -> float:
    """``sklearn.metrics.average_precision_score(y_true, scores)`` where ``positive`` are the indices of the
    positives: ``sum_n (R_n - R_{n-1}) P_n`` over the distinct score thresholds, tied scores grouped.
    Costs O(N log P) (one binary search of every score among the positives' distinct scores)."""
    if len(positive) == 0:
        return 0.0
    thresholds = np.unique(scores[positive])  # ascending
    # number of positives and of all boxes at or above each threshold
    pos_at = np.bincount(np.searchsorted(thresholds, scores[positive], side="right") - 1,
                         minlength=len(thresholds))
    slot = np.searchsorted(thresholds, scores, side="right") - 1  # -1: below every positive
    all_at = np.bincount(slot[slot >= 0], minlength=len(thresholds))
    tp = np.cumsum(pos_at[::-1])
    n = np.cumsum(all_at[::-1])
    recall_step = pos_at[::-1] / len(positive)
    return float(np.sum(recall_step * tp / n))


def _top_rank(scores: np.ndarray, positive: np.ndarray) -> int:
    """0-based rank of the best positive under ``argsort(scores, stable)[::-1]``."""
    best = scores[positive].max()
    last = positive[scores[positive] == best].max()
    return int(np.count_nonzero(scores > best) + np.count_nonzero(scores[last + 1:] == best))


def _segments(images: np.ndarray, packed: _PackedGallery) -> tuple[np.ndarray, np.ndarray]:
    """Per query: the image of each of its boxes, and where each image's boxes start (and end) among them."""
    counts = np.diff(packed.offsets)[images]
    return np.repeat(images, counts), np.concatenate([[0], np.cumsum(counts)])


def _cbgm(sims: np.ndarray, box_image: np.ndarray, starts: np.ndarray, position: np.ndarray,
          gallery_features: np.ndarray, box_index: np.ndarray, context: np.ndarray, k1: int, k2: int) -> None:
    """Re-score in place the images of the ``k1`` best boxes (SeqNet's CBGM)."""
    from scipy.optimize import linear_sum_assignment

    if len(sims) == 0:
        return
    top = np.argsort(sims, kind="stable")[-k1:]
    ctx = context[:k2]
    for img in np.unique(box_image[top]).tolist():
        p = position[img]
        where = np.arange(starts[p], starts[p + 1])
        weights = ctx @ gallery_features[box_index[where]].T
        rows, cols = linear_sum_assignment(weights, maximize=True)
        max_val = weights[rows, cols].max()
        matched = cols[rows == 0]
        if len(matched):  # the query box (row 0) is matched unless the query side is the larger one
            sims[where[matched[0]]] = max_val


def evaluate_person_search(query_features: Any, gallery: Sequence[Any], galleries: Sequence[QueryGallery], *,
                           det_thresh: float = 0.5, cbgm: bool = False, k1: int = 10, k2: int = 3,
                           query_context: Sequence[Any] | None = None, confidence_weighted: bool = False,
                           topk: Sequence[int] = TOPK, chunk_bytes: int = CHUNK_BYTES,
                           protocol: Mapping[str, Any] | None = None) -> dict:
    """SeqNet's person-search scores (fractions) for any galleries (see the module docstring).

    ``query_features``: (Q, D), one per query, from its ground-truth box. ``gallery``: one
    :class:`Detections` (or ``(boxes, scores, features)``) per gallery image. ``galleries``: one
    :class:`QueryGallery` per query (:func:`cuhk_sysu_galleries` and :func:`prw_galleries` build them).
    ``query_context`` (CBGM only): per query, (k, D) features of the query image's detections, the query
    box first. ``confidence_weighted``: multiply gallery features by their scores first (SeqNet's CWS; its
    model does this itself). Returns ``mAP``, ``top-k`` for each ``k``, ``per_query_ap`` (NaN for a skipped
    query), ``per_query_recall``, ``per_query_first_hit_rank`` (0-based rank of the query's first true positive
    among its ranked boxes, -1 when none or skipped: ``top-k`` is the mean of ``0 <= rank < k``), ``num_queries``, ``num_skipped`` and ``protocol``.

    The brief's worked example (three target images, hits in two of them)::

        >>> f = lambda *v: np.array(v, dtype=float)[:, None]
        >>> box = [0, 0, 40, 100]
        >>> gal = [Detections.from_boxes([box], f(0.9)), Detections.from_boxes([box, [50, 0, 90, 100]], f(0.8, 0.7)),
        ...        Detections.from_boxes([[50, 0, 90, 100]], f(0.6)), Detections.from_boxes([box], f(0.5))]
        >>> tg = {0: [box], 1: [[50, 0, 90, 100]], 2: [box]}
        >>> r = evaluate_person_search(np.ones((1, 1)), gal, [QueryGallery(np.arange(4), tg)])
        >>> round(r["mAP"], 4), r["top-1"], r["top-5"]
        (0.5556, 1.0, 1.0)
    """
    q = _float_array("query_features", query_features, 2)
    if q.shape[0] == 0 or q.shape[1] == 0:
        raise MetricInputError(f"query_features: empty array of shape {q.shape}")
    n_query, dim = q.shape
    if not isinstance(det_thresh, (int, float, np.floating)) or isinstance(det_thresh, bool) \
            or not np.isfinite(det_thresh):
        raise MetricInputError(f"det_thresh: expected a finite number, got {det_thresh!r}")
    ks = tuple(check_positive_int("topk", k) for k in topk)
    k1, k2 = check_positive_int("k1", k1), check_positive_int("k2", k2)
    chunk_bytes = check_positive_int("chunk_bytes", chunk_bytes)
    packed = _PackedGallery(gallery, dim, float(det_thresh), confidence_weighted)
    if not hasattr(galleries, "__len__") or len(galleries) != n_query:
        raise MetricInputError(f"galleries: {len(galleries) if hasattr(galleries, '__len__') else 'no'} "
                               f"galleries for {n_query} queries (one QueryGallery per query)")
    contexts = None
    if cbgm:
        if query_context is None or len(query_context) != n_query:
            raise MetricInputError("query_context: CBGM needs, per query, the features of the query image's "
                                   "detections (query box first), one entry per query")
        contexts = [_float_array(f"query_context[{i}]", query_context[i], 2) for i in range(n_query)]
        for i, c in enumerate(contexts):
            if c.shape[0] == 0 or c.shape[1] != dim:
                raise MetricInputError(f"query_context[{i}]: shape {c.shape}, expected (k >= 1, {dim})")

    qf = q.astype(np.result_type(q.dtype, packed.dtype), copy=False)
    gf = packed.features.astype(qf.dtype, copy=False) if packed.n_boxes else np.zeros((0, dim), qf.dtype)
    aps = np.full(n_query, np.nan)
    recalls = np.full(n_query, np.nan)
    hits = np.zeros((n_query, len(ks)), dtype=bool)
    ranks = np.full(n_query, -1, dtype=np.int64)
    chunk = max(1, chunk_bytes // max(1, 8 * packed.n_boxes))
    scratch = np.empty(packed.n_images, dtype=np.int64)
    position = np.empty(packed.n_images, dtype=np.int64)  # image -> its place in the query's images
    for start in range(0, n_query, chunk):
        stop = min(n_query, start + chunk)
        specs = [_check_query_gallery(i, galleries[i], packed.n_images, scratch) for i in range(start, stop)]
        main_idx = [packed.box_ranges(s[0]) for s in specs]
        neg_idx = [packed.box_ranges(s[3]) for s in specs]
        wanted = sum(len(a) + len(b) for a, b in zip(main_idx, neg_idx, strict=True))
        dense = qf[start:stop] @ gf.T if wanted > 0.3 * (stop - start) * packed.n_boxes else None
        for j, (images, targets, count_gt, _neg) in enumerate(specs):
            i = start + j
            if dense is not None:
                sims, neg_sims = dense[j, main_idx[j]].copy(), dense[j, neg_idx[j]]
            else:
                sims, neg_sims = gf[main_idx[j]] @ qf[i], gf[neg_idx[j]] @ qf[i]
            if count_gt == 0:
                continue
            box_image, starts = _segments(images, packed)
            position[images] = np.arange(len(images))
            if contexts is not None:
                _cbgm(sims, box_image, starts, position, gf, main_idx[j], contexts[i], k1, k2)
            ap, recall, rank = _score_query(sims, neg_sims, starts, position, main_idx[j], packed.boxes, targets,
                                            count_gt)
            aps[i], recalls[i] = ap, recall
            hits[i] = [rank is not None and rank < k for k in ks]
            ranks[i] = -1 if rank is None else rank
    valid = ~np.isnan(aps)
    if not valid.any():
        raise MetricInputError("galleries: no query has a target image in its gallery; nothing to score")
    out: dict[str, Any] = {"mAP": float(aps[valid].mean())}
    for c, k in enumerate(ks):
        out[f"top-{k}"] = float(hits[valid, c].mean())
    out.update({
        "per_query_ap": aps,
        "per_query_recall": recalls,
        "per_query_first_hit_rank": ranks,
        "num_queries": int(valid.sum()),
        "num_skipped": int((~valid).sum()),
        "protocol": {
            "protocol": "seqnet-person-search",
            **(dict(protocol) if protocol else {}),
            "det_thresh": float(det_thresh),
            "cbgm": bool(cbgm),
            **({"k1": k1, "k2": k2, "cbgm_matching": "maximum-weight bipartite matching; the query box's match "
                "gets the largest matched weight"} if cbgm else {}),
            "similarity": "dot product of the features" + (" x detection score (CWS)" if confidence_weighted else ""),
            "confidence_weighted": bool(confidence_weighted),
            "iou_threshold": IOU_RULE,
            "true_positive": TP_RULE,
            "ap": AP_RULE,
            "top_k": list(ks),
            "tie_order": TIE_RULE,
            "query_without_target": "skipped (AP NaN, left out of the means); the reference divides by zero",
        },
    })
    return out


def _score_query(sims: np.ndarray, neg_sims: np.ndarray, starts: np.ndarray, position: np.ndarray,
                 box_index: np.ndarray, boxes: np.ndarray, targets: dict[int, np.ndarray], count_gt: int
                 ) -> tuple[float, float, int | None]:
    order = np.arange(len(sims))
    positives: list[int] = []
    for img, target in targets.items():
        p = position[img]
        where = np.arange(starts[p], starts[p + 1])
        if len(where) == 0:
            continue  # target image without a kept detection: counted in count_gt only
        local, hit = _first_match(boxes[box_index[where]], sims[where], target)
        order[where] = where[local]  # the image's boxes sorted by similarity (the reference reorders them)
        if hit >= 0:
            positives.append(len(neg_sims) + int(where[hit]))
    scores = np.concatenate([neg_sims, sims[order]])
    count_tp = len(positives)
    recall = count_tp / count_gt
    if count_tp == 0:
        return 0.0, recall, None
    pos = np.asarray(positives, dtype=np.int64)
    return sklearn_average_precision(scores, pos) * recall, recall, _top_rank(scores, pos)

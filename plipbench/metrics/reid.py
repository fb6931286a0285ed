"""Image ReID metrics: CMC, mAP and mINP under the Market-1501 and CUHK03 protocols.

Conventions (each one recorded in the returned ``protocol`` dict):

- Distances ascend (smaller = more similar). From features, ``metric="euclidean"`` is the *squared*
  euclidean distance (torchreid ``euclidean_squared_distance``, its default) and ``"cosine"`` is ``1 - cos``
  (fast-reid's default ``TEST.METRIC``).
- Ranking order is deterministic: ascending distance, ties broken by ascending gallery index (a stable
  sort). The references use unstable ``argsort``, so they agree with this only on tie-free data.
- Market-1501 protocol (torchreid / fast-reid ``eval_market1501``): for each query, gallery items with the
  same id *and* the same camera are removed; same-id items from other cameras are the positives; every
  other item (other ids, distractor id 0, same-camera items of other ids) is a negative. Queries without
  any positive are skipped and not counted (``num_valid_queries``).
- ``ap="noninterp"``: AP = mean over hits of precision at the hit (torchreid / fast-reid). ``ap="market-trapz"``:
  the official Market-1501 MATLAB / layumi / PLIP trapezoid AP, and CMC, mAP and mINP are then divided by
  *all* queries (skipped queries count as 0), as that code does.
- mINP (fast-reid, AGW): INP = number of positives / 1-based rank of the last positive.
- CMC padding: CMC is computed from each query's first-hit rank, so a query whose kept list is shorter than
  ``max_rank`` is padded with its last value (1, since a valid query has a hit). torchreid produces ragged
  rows (Python) or stale buffer values (Cython) there. The returned CMC always has length ``max_rank``.
- ``junk_pids``: gallery items with these ids are removed from every ranking (the official Market-1501
  code's junk id -1). Default none: plipbench readers drop id -1 at load time, as torchreid does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from plipbench.metrics._checks import (
    MetricInputError,
    as_label_vector,
    check_length,
    check_option,
    check_positive_int,
)
from plipbench.metrics._ranking import (
    TIE_ORDER,
    DistanceSource,
    FeatureSource,
    MatrixSource,
    cmc_from_first_hits,
    per_query_scores,
    query_ranges,
    rank_positives,
    resolve_chunk_size,
)

AP_VARIANTS = ("noninterp", "market-trapz")
REID_METRICS = ("euclidean", "cosine")
CMC_PADDING = "a query with fewer than max_rank kept gallery items is padded with its last CMC value"


def _make_source(distmat, query_features, gallery_features, metric: str, rerank: dict | None,
                 chunk_size: int | None) -> tuple[DistanceSource, dict | None]:
    check_option("metric", metric, REID_METRICS)
    have_features = query_features is not None or gallery_features is not None
    if distmat is not None and have_features:
        raise MetricInputError("distmat: give either distmat or query_features/gallery_features, not both")
    if distmat is None and not have_features:
        raise MetricInputError("distmat: give a distance matrix or both query_features and gallery_features")
    if have_features and (query_features is None or gallery_features is None):
        missing = "query_features" if query_features is None else "gallery_features"
        raise MetricInputError(f"{missing}: required when features are given instead of distmat")
    if rerank is not None:
        if distmat is not None:
            raise MetricInputError("rerank: needs query_features and gallery_features, not a distance matrix")
        from plipbench.metrics.rerank import KReciprocalReranker

        if not isinstance(rerank, dict):
            raise MetricInputError(f"rerank: expected a dict with k1, k2, lambda_value, got {type(rerank).__name__}")
        unknown = set(rerank) - {"k1", "k2", "lambda_value"}
        if unknown:
            raise MetricInputError(f"rerank: unknown keys {sorted(unknown)}; expected k1, k2, lambda_value")
        reranker = KReciprocalReranker(query_features, gallery_features, metric=metric, chunk_size=chunk_size,
                                       **rerank)
        return reranker, reranker.params
    if distmat is not None:
        return MatrixSource("distmat", distmat), None
    return FeatureSource(query_features, gallery_features, metric), None


def _labels(source: DistanceSource, q_pids, g_pids, q_camids, g_camids):
    qp, gp = as_label_vector("q_pids", q_pids), as_label_vector("g_pids", g_pids)
    qc, gc = as_label_vector("q_camids", q_camids), as_label_vector("g_camids", g_camids)
    what_q = "the number of queries (distmat rows / query_features)"
    what_g = "the gallery size (distmat columns / gallery_features)"
    check_length("q_pids", qp, source.n_query, what_q)
    check_length("q_camids", qc, source.n_query, what_q)
    check_length("g_pids", gp, source.n_gallery, what_g)
    check_length("g_camids", gc, source.n_gallery, what_g)
    return qp, gp, qc, gc


def _protocol(name: str, source: DistanceSource, metric: str, max_rank: int, ap: str, denominator: str,
              rerank_params: dict | None, junk: Sequence[int], **extra: Any) -> dict:
    return {
        "protocol": name,
        "ap": ap,
        "tie_order": TIE_ORDER,
        "camera_filtering": "remove gallery items with the same id and the same camera as the query",
        "skipped_queries": "queries without a valid positive are skipped",
        "denominator": denominator,
        "metric": metric if not isinstance(source, MatrixSource) else "precomputed distmat",
        "max_rank": max_rank,
        "cmc_padding": CMC_PADDING,
        "junk_pids": [int(j) for j in junk],
        "rerank": rerank_params,
        **extra,
    }


def evaluate_reid(
    distmat=None,
    *,
    query_features=None,
    gallery_features=None,
    metric: str = "euclidean",
    q_pids,
    g_pids,
    q_camids,
    g_camids,
    max_rank: int = 50,
    ap: str = "noninterp",
    chunk_size: int | None = None,
    return_per_query: bool = False,
    rerank: dict | None = None,
    junk_pids: Sequence[int] = (),
) -> dict:
    """CMC, mAP and mINP of image ReID under the Market-1501 protocol (see the module docstring).

    Give either ``distmat`` (num_query x num_gallery, ascending distances) or ``query_features`` and
    ``gallery_features`` (then distances use ``metric`` and only one query chunk of the distance matrix is held
    at a time; ``chunk_size`` queries per chunk, chosen from a ~256 MiB budget when None).

    ``rerank=dict(k1=20, k2=6, lambda_value=0.3)`` applies k-reciprocal re-ranking (Zhong et al. 2017) to the
    ``metric`` distances first (features only; see :class:`plipbench.metrics.rerank.KReciprocalReranker`).

    Returns ``cmc`` (array of length ``max_rank``, fractions), ``mAP``, ``mINP``, ``num_queries``,
    ``num_valid_queries`` and ``protocol``; with ``return_per_query`` also ``per_query`` = dict of arrays
    ``AP``, ``INP``, ``first_hit_rank`` (0-based rank of the first positive in the kept list, -1 when the
    query is skipped) and ``valid``.

    Example (the same-camera worked example of the reference brief)::

        >>> r = evaluate_reid(np.array([[0.1, 0.2, 0.3, 0.4, 0.5, 0.6]]), q_pids=[7], q_camids=[1],
        ...                   g_pids=[7, 3, 7, 7, 5, 7], g_camids=[1, 2, 2, 1, 3, 4], max_rank=5)
        >>> round(r["mAP"], 4), r["cmc"][:2].tolist(), r["mINP"]
        (0.5, [0.0, 1.0], 0.5)
    """
    import torch

    check_option("ap", ap, AP_VARIANTS)
    max_rank = check_positive_int("max_rank", max_rank)
    source, rerank_params = _make_source(distmat, query_features, gallery_features, metric, rerank, chunk_size)
    qp, gp, qc, gc = _labels(source, q_pids, g_pids, q_camids, g_camids)
    junk = [int(j) for j in junk_pids]
    chunk = resolve_chunk_size(chunk_size, source.n_gallery)

    gp_t, gc_t = torch.from_numpy(gp), torch.from_numpy(gc)
    g_junk = torch.from_numpy(np.isin(gp, junk))
    parts: list[dict[str, np.ndarray]] = []
    n_pos_all: list[np.ndarray] = []
    for start, stop in query_ranges(source.n_query, chunk):
        dist = source.chunk(start, stop)
        same_id = gp_t[None, :] == torch.from_numpy(qp[start:stop])[:, None]
        same_cam = gc_t[None, :] == torch.from_numpy(qc[start:stop])[:, None]
        pos = same_id & ~same_cam & ~g_junk
        neg = ~same_id & ~g_junk
        pr = rank_positives(dist, pos, neg)
        parts.append(per_query_scores(pr, ap))
        n_pos_all.append(pr.n_pos)
    per_q = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    valid = np.concatenate(n_pos_all) > 0
    num_valid = int(valid.sum())
    if num_valid == 0:
        raise MetricInputError(
            "q_pids: no query has a positive in the gallery (same id, different camera); nothing to evaluate"
        )
    denominator = num_valid if ap == "noninterp" else source.n_query
    result = {
        "cmc": cmc_from_first_hits(per_q["first_hit_rank"], max_rank, denominator),
        "mAP": float(per_q["AP"][valid].sum() / denominator),
        "mINP": float(per_q["INP"][valid].sum() / denominator),
        "num_queries": int(source.n_query),
        "num_valid_queries": num_valid,
        "protocol": _protocol(
            "market1501", source, metric, max_rank, ap,
            "valid queries" if ap == "noninterp" else "all queries (skipped queries count 0)",
            rerank_params, junk, chunk_size=chunk,
        ),
    }
    if return_per_query:
        per_q["valid"] = valid
        result["per_query"] = per_q
    return result


def evaluate_reid_cuhk03(
    distmat=None,
    *,
    query_features=None,
    gallery_features=None,
    metric: str = "euclidean",
    q_pids,
    g_pids,
    q_camids,
    g_camids,
    max_rank: int = 50,
    num_repeats: int = 10,
    seed: int = 0,
    chunk_size: int | None = None,
    return_per_query: bool = False,
) -> dict:
    """CMC (single-gallery-shot), mAP and mINP under the classic CUHK03 protocol (torchreid ``eval_cuhk03``).

    Same removal and skipping as :func:`evaluate_reid`. Then, ``num_repeats`` times per valid query, one kept
    gallery item is drawn uniformly at random for every gallery identity and the CMC is computed on that
    sampled list (in ranking order); CMC is averaged over repeats. AP and INP use the full kept list (not
    sampled). Sampling uses its own ``np.random.default_rng(seed)`` (torchreid uses the unseeded global RNG);
    draws are made per query in query order, so results do not depend on ``chunk_size``. ``first_hit_rank``
    in ``per_query`` is the full-list rank; the per-query sampled rank-1 is in ``per_query["rank1"]``.
    """
    import torch

    max_rank = check_positive_int("max_rank", max_rank)
    num_repeats = check_positive_int("num_repeats", num_repeats)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise MetricInputError(f"seed: expected an integer, got {seed!r}")
    source, _ = _make_source(distmat, query_features, gallery_features, metric, None, chunk_size)
    qp, gp, qc, gc = _labels(source, q_pids, g_pids, q_camids, g_camids)

    ids, g_group = np.unique(gp, return_inverse=True)
    members = np.argsort(g_group, kind="stable")  # gallery indices grouped by id, index order inside a group
    sizes = np.bincount(g_group, minlength=len(ids))
    starts = np.cumsum(sizes) - sizes
    n_ids = len(ids)
    chunk = resolve_chunk_size(chunk_size, max(source.n_gallery, num_repeats * n_ids))
    rng = np.random.default_rng(seed)

    gp_t, gc_t = torch.from_numpy(gp), torch.from_numpy(gc)
    parts, n_pos_all, cmc_rows = [], [], []
    for start, stop in query_ranges(source.n_query, chunk):
        dist = source.chunk(start, stop)
        same_id = gp_t[None, :] == torch.from_numpy(qp[start:stop])[:, None]
        same_cam = gc_t[None, :] == torch.from_numpy(qc[start:stop])[:, None]
        pr = rank_positives(dist, same_id & ~same_cam, ~same_id)
        parts.append(per_query_scores(pr, "noninterp"))
        n_pos_all.append(pr.n_pos)

        b = stop - start
        u = rng.random((b, num_repeats, n_ids))  # one draw per (query, repeat, gallery id)
        chosen = members[starts + np.minimum((u * sizes).astype(np.int64), sizes - 1)]
        own_group = np.full(b, -1)
        for row in range(b):
            q = start + row
            where = np.searchsorted(ids, qp[q])
            if pr.n_pos[row] == 0:
                continue
            own = members[starts[where]:starts[where] + sizes[where]]
            own = own[gc[own] != qc[q]]  # the query's own id keeps only its other-camera images
            pick = np.minimum((u[row, :, where] * len(own)).astype(np.int64), len(own) - 1)
            chosen[row, :, where] = own[pick]
            own_group[row] = where
        d = dist.numpy() if dist.dtype == torch.float64 else dist.double().numpy()
        d_chosen = np.take_along_axis(d[:, None, :], chosen.reshape(b, 1, -1), axis=2).reshape(b, num_repeats, n_ids)
        cmc_chunk = np.zeros((b, max_rank))
        for row in np.flatnonzero(own_group >= 0):
            g = own_group[row]
            d_own, i_own = d_chosen[row, :, g][:, None], chosen[row, :, g][:, None]
            before = (d_chosen[row] < d_own) | ((d_chosen[row] == d_own) & (chosen[row] < i_own))
            rank = before.sum(1)  # the own id never counts: its pick is not before itself
            cmc_chunk[row] = (rank[:, None] <= np.arange(max_rank)[None, :]).mean(0)
        cmc_rows.append(cmc_chunk)

    per_q = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    valid = np.concatenate(n_pos_all) > 0
    num_valid = int(valid.sum())
    if num_valid == 0:
        raise MetricInputError(
            "q_pids: no query has a positive in the gallery (same id, different camera); nothing to evaluate"
        )
    cmc_all = np.concatenate(cmc_rows)
    result = {
        "cmc": cmc_all[valid].sum(0) / num_valid,
        "mAP": float(per_q["AP"][valid].mean()),
        "mINP": float(per_q["INP"][valid].mean()),
        "num_queries": int(source.n_query),
        "num_valid_queries": num_valid,
        "protocol": _protocol(
            "cuhk03-single-gallery-shot", source, metric, max_rank, "noninterp", "valid queries", None, (),
            num_repeats=num_repeats, seed=int(seed),
            sampling="one kept gallery item per identity, uniformly at random, per repeat; AP on the full list",
            chunk_size=chunk,
        ),
    }
    if return_per_query:
        per_q["valid"] = valid
        per_q["rank1"] = cmc_all[:, 0]
        result["per_query"] = per_q
    return result

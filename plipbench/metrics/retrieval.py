"""Text-to-image (and image-to-text) person retrieval metrics: R@k, mAP, mINP (IRRA ``utils/metrics.py: rank``).

Protocol: every query is ranked against the whole gallery by cosine similarity, descending; no camera
filtering and nothing removed; averages run over *all* queries. Features are L2-normalised here
(``F.normalize``), as IRRA does before ``q @ g.T``.

Image-to-text retrieval is the same call with the roles swapped: pass the image features (and their ids)
as the query side and the caption features (and their ids) as the gallery side, or the transposed
similarity matrix (IRRA ``i2t_metric=True``).

Ties: ranking order is descending similarity, ties broken by ascending gallery index (a stable sort).

A query with no relevant gallery item (IRRA would produce NaN / crash) is counted with AP 0, INP 0 and no
hit; their number is reported as ``num_queries_without_match``. R@k for k larger than the gallery is the
fraction of queries with any hit (the CMC is padded with its last value).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from plipbench.metrics._checks import MetricInputError, as_label_vector, check_length, check_positive_int
from plipbench.metrics._ranking import (
    TIE_ORDER,
    FeatureSource,
    MatrixSource,
    per_query_scores,
    query_ranges,
    rank_positives,
    resolve_chunk_size,
)


def evaluate_retrieval(
    similarity=None,
    *,
    query_features=None,
    gallery_features=None,
    q_pids,
    g_pids,
    ks: Sequence[int] = (1, 5, 10),
    chunk_size: int | None = None,
    return_per_query: bool = False,
) -> dict:
    """R@k, mAP and mINP of person retrieval under the IRRA protocol (see the module docstring).

    Give ``similarity`` (num_query x num_gallery, larger = more similar) or ``query_features`` and
    ``gallery_features`` (cosine similarity, computed one query chunk at a time). Returns ``R@k`` for every k in
    ``ks``, ``mAP``, ``mINP`` (fractions), ``num_queries``, ``num_queries_without_match``, ``protocol`` and, with
    ``return_per_query``, ``per_query`` = dict of arrays ``AP``, ``INP``, ``first_hit_rank`` (0-based, -1 when the
    query has no relevant gallery item) and ``has_match``.

    Example (the IRRA worked example of the reference brief)::

        >>> r = evaluate_retrieval(np.array([[0.9, 0.8, 0.1, 0.7], [0.2, 0.6, 0.5, 0.4]]),
        ...                        q_pids=[1, 2], g_pids=[2, 1, 2, 1], ks=(1, 2))
        >>> r["R@1"], r["R@2"], round(r["mAP"], 4), round(r["mINP"], 4)
        (0.0, 1.0, 0.5417, 0.5833)
    """
    import torch

    if isinstance(ks, (int, np.integer)):
        ks = (ks,)
    ks = tuple(check_positive_int("ks", k) for k in ks)
    if not ks:
        raise MetricInputError("ks: expected at least one cutoff")
    have_features = query_features is not None or gallery_features is not None
    if similarity is not None and have_features:
        raise MetricInputError("similarity: give either similarity or query_features/gallery_features, not both")
    if similarity is None:
        if query_features is None or gallery_features is None:
            missing = "query_features" if query_features is None else "gallery_features"
            raise MetricInputError(f"{missing}: required when no similarity matrix is given")
        source = FeatureSource(query_features, gallery_features, "neg_cosine")
    else:
        source = MatrixSource("similarity", similarity, negate=True)
    qp, gp = as_label_vector("q_pids", q_pids), as_label_vector("g_pids", g_pids)
    check_length("q_pids", qp, source.n_query, "the number of queries (similarity rows / query_features)")
    check_length("g_pids", gp, source.n_gallery, "the gallery size (similarity columns / gallery_features)")
    chunk = resolve_chunk_size(chunk_size, source.n_gallery)

    gp_t = torch.from_numpy(gp)
    parts, n_pos_all = [], []
    for start, stop in query_ranges(source.n_query, chunk):
        dist = source.chunk(start, stop)
        pos = gp_t[None, :] == torch.from_numpy(qp[start:stop])[:, None]
        pr = rank_positives(dist, pos, ~pos)
        parts.append(per_query_scores(pr, "noninterp"))
        n_pos_all.append(pr.n_pos)
    per_q = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    has_match = np.concatenate(n_pos_all) > 0
    first = per_q["first_hit_rank"]
    n = source.n_query
    result: dict = {f"R@{k}": float(((first >= 0) & (first < k)).sum() / n) for k in ks}
    result.update(
        mAP=float(per_q["AP"].mean()),
        mINP=float(per_q["INP"].mean()),
        num_queries=int(n),
        num_queries_without_match=int((~has_match).sum()),
        protocol={
            "protocol": "irra-rank",
            "similarity": source.description if similarity is not None else "cosine (L2-normalised features)",
            "ap": "noninterp",
            "tie_order": TIE_ORDER.replace("ascending distance", "descending similarity"),
            "camera_filtering": "none",
            "denominator": "all queries",
            "queries_without_match": "counted with AP 0, INP 0 and no hit",
            "ks": list(ks),
            "chunk_size": chunk,
        },
    )
    if return_per_query:
        per_q["has_match"] = has_match
        result["per_query"] = per_q
    return result

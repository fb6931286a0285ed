"""Chunked ranking core shared by the ReID and retrieval metrics.

Nothing here sorts a whole gallery row. For each query the only ranks the metrics need are those of
its positives (AP, INP, CMC via the first hit), and positives are few. With the positives' distances
sorted, every kept negative is placed among them with one binary search (``torch.searchsorted``);
a histogram of those slots gives, for the i-th positive, the number of kept negatives ranked before
it, so its 0-based rank in the kept list is ``i + negatives_before[i]``. This is O(G log P) per query
and never holds more than one query chunk of the query x gallery matrix.

Ranking order: ascending distance, ties broken by gallery index (what a stable sort gives). Ties between
a negative and a positive are resolved exactly on that rule.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from plipbench.metrics._checks import MetricInputError, as_float_matrix, check_finite, check_positive_int

DEFAULT_CHUNK_BYTES = 128 * 2**20
# bytes of temporaries per query x gallery element in one chunk (distances, masks, slots, histogram keys)
_BYTES_PER_ELEMENT = 40
_DENSE_FRACTION = 0.3  # above this share of candidates, skip packing them
TIE_ORDER = "ascending distance, ties broken by ascending gallery index (stable sort)"


def auto_chunk_size(n_gallery: int, bytes_per_element: int = _BYTES_PER_ELEMENT,
                    budget: int = DEFAULT_CHUNK_BYTES) -> int:
    """Number of queries per chunk so that one chunk's temporaries stay within ``budget`` bytes."""
    return max(1, budget // max(1, bytes_per_element * n_gallery))


def resolve_chunk_size(chunk_size: int | None, n_gallery: int, bytes_per_element: int = _BYTES_PER_ELEMENT) -> int:
    if chunk_size is None:
        return auto_chunk_size(n_gallery, bytes_per_element)
    return check_positive_int("chunk_size", chunk_size)


class DistanceSource:
    """Produces query chunks of an ascending distance matrix (smaller = more similar)."""

    n_query: int
    n_gallery: int
    description: str

    def chunk(self, start: int, stop: int):  # pragma: no cover - interface
        raise NotImplementedError


class MatrixSource(DistanceSource):
    """A precomputed distance matrix, or a similarity matrix (``negate=True``: descending similarity)."""

    def __init__(self, name: str, matrix, negate: bool = False) -> None:
        self.name = name
        self.matrix = as_float_matrix(name, matrix)
        self.negate = negate
        self.n_query, self.n_gallery = self.matrix.shape
        self.description = "precomputed similarity (descending)" if negate else "precomputed distance (ascending)"

    def chunk(self, start: int, stop: int):
        block = self.matrix[start:stop]
        check_finite(self.name, block)
        return -block if self.negate else block


def check_features(query_features, gallery_features):
    import torch

    qf = as_float_matrix("query_features", query_features)
    gf = as_float_matrix("gallery_features", gallery_features)
    if qf.shape[1] != gf.shape[1]:
        raise MetricInputError(
            f"query_features: feature dimension {qf.shape[1]} does not match gallery_features ({gf.shape[1]})"
        )
    check_finite("query_features", qf)
    check_finite("gallery_features", gf)
    dtype = torch.promote_types(qf.dtype, gf.dtype)
    return qf.to(dtype), gf.to(dtype)


class FeatureSource(DistanceSource):
    """Distances computed chunk by chunk from features.

    metric: "euclidean" = squared euclidean ``|q|^2 + |g|^2 - 2 q.g`` (torchreid ``euclidean_squared_distance``),
    "cosine" = ``1 - cos`` (torchreid ``cosine_distance``), "neg_cosine" = ``-cos`` (retrieval: cosine similarity
    ranked descending). Computed in the features' dtype (float32 unless float64 features are given).
    """

    def __init__(self, query_features, gallery_features, metric: str) -> None:
        import torch.nn.functional as F

        qf, gf = check_features(query_features, gallery_features)
        self.metric = metric
        if metric in ("cosine", "neg_cosine"):
            qf, gf = F.normalize(qf, p=2, dim=1), F.normalize(gf, p=2, dim=1)
            self.gf_t = gf.t().contiguous()
        elif metric == "euclidean":
            self.gf_t = gf.t().contiguous()
            self.g_sq = (gf * gf).sum(1)
            self.q_sq = (qf * qf).sum(1)
        else:  # pragma: no cover - callers validate
            raise MetricInputError(f"metric: unknown value {metric!r}")
        self.qf = qf
        self.n_query, self.n_gallery = qf.shape[0], gf.shape[0]
        self.description = metric
        self.dtype = qf.dtype

    def chunk(self, start: int, stop: int):
        import torch

        q = self.qf[start:stop]
        if self.metric == "euclidean":
            d = self.q_sq[start:stop, None] + self.g_sq[None, :]
            return torch.addmm(d, q, self.gf_t, beta=1, alpha=-2)
        sim = q @ self.gf_t
        if self.metric == "cosine":
            return sim.neg_().add_(1.0)
        return sim.neg_()


@dataclass
class PositiveRanks:
    """Per query: number of positives, and the sorted 0-based ranks of its positives in the kept list."""

    n_pos: np.ndarray  # (B,) int64
    ranks: np.ndarray  # (B, P) int64, only the first n_pos[b] entries of row b are meaningful


def _row_count(mask):
    """Number of true entries per row of a (B, G) bool tensor, as int64. Summing the bytes as int32 is
    about ten times faster than ``mask.sum(1)``, which widens every bool to int64 first."""
    import torch

    return mask.view(torch.uint8).sum(1, dtype=torch.int32).to(torch.int64)


def rank_positives(dist, pos, neg) -> PositiveRanks:
    """Ranks of the positives of each query in its kept list.

    ``dist`` (B, G) ascending distances; ``pos`` (B, G) bool positives; ``neg`` (B, G) bool kept negatives.
    Items neither positive nor negative are removed from the ranking. Rank order is (distance, gallery index).
    """
    import torch

    b_size, g_size = dist.shape
    n_pos = _row_count(pos)
    pmax = int(n_pos.max()) if b_size else 0
    if pmax == 0:
        return PositiveRanks(n_pos.numpy(), np.zeros((b_size, 0), dtype=np.int64))
    rows, cols = pos.nonzero(as_tuple=True)  # row-major: gallery index ascending within a row
    start = torch.cumsum(n_pos, 0) - n_pos
    slot = torch.arange(rows.numel()) - start[rows]
    inf = torch.tensor(float("inf"), dtype=dist.dtype)
    pos_d = torch.full((b_size, pmax), float("inf"), dtype=dist.dtype)
    pos_d[rows, slot] = dist[rows, cols]
    pos_i = torch.full((b_size, pmax), g_size, dtype=torch.int64)
    pos_i[rows, slot] = cols
    pos_d, order = torch.sort(pos_d, dim=1, stable=True)  # stable: equal distances keep index order
    pos_i = torch.gather(pos_i, 1, order)

    # Only negatives not farther than a query's last positive can precede one of its positives.
    last = pos_d.gather(1, (n_pos - 1).clamp(min=0)[:, None])
    cand = neg & (dist <= last)
    n_cand = _row_count(cand)
    if int(n_cand.sum()) > _DENSE_FRACTION * b_size * g_size:
        vals = torch.where(neg, dist, inf)  # dense: removed items and positives go after every positive
        cols = None
    else:  # sparse: pack each row's candidates to the left
        cmax = max(1, int(n_cand.max()))
        rows, cols_flat = cand.nonzero(as_tuple=True)
        slot = torch.arange(rows.numel()) - (torch.cumsum(n_cand, 0) - n_cand)[rows]
        vals = torch.full((b_size, cmax), float("inf"), dtype=dist.dtype)
        vals[rows, slot] = dist[rows, cols_flat]
        cols = torch.full((b_size, cmax), g_size, dtype=torch.int64)
        cols[rows, slot] = cols_flat
    slots = torch.searchsorted(pos_d, vals)  # number of positives with a strictly smaller distance
    at = torch.gather(pos_d, 1, slots.clamp(max=pmax - 1))
    tie = (at == vals) & (vals != inf)  # inputs are finite (checked): inf only marks left-out slots
    if bool(tie.any()):
        # a negative with the same distance as some positive: it goes first iff its index is smaller
        tr, tc = tie.nonzero(as_tuple=True)
        v = vals[tr, tc][:, None]
        gidx = tc if cols is None else cols[tr, tc]
        seq, idx = pos_d[tr], pos_i[tr]
        slots[tr, tc] = (seq < v).sum(1) + ((seq == v) & (idx < gidx[:, None])).sum(1)
    slots += (torch.arange(b_size) * (pmax + 1))[:, None]
    counts = torch.bincount(slots.view(-1), minlength=b_size * (pmax + 1)).view(b_size, pmax + 1)
    negatives_before = torch.cumsum(counts, 1)[:, :pmax]
    ranks = torch.arange(pmax)[None, :] + negatives_before
    return PositiveRanks(n_pos.numpy(), ranks.numpy())


def per_query_scores(pr: PositiveRanks, ap: str = "noninterp") -> dict[str, np.ndarray]:
    """AP, INP and first-hit rank per query (0 / 0 / -1 for queries without positives).

    noninterp AP = mean over hits of (i+1)/(r_i+1) (torchreid / fast-reid / IRRA); "market-trapz" AP =
    mean over hits of ((i/r_i, or 1 when r_i == 0) + (i+1)/(r_i+1)) / 2 (official Market-1501 code).
    INP = n_pos / (rank of the last positive + 1) (fast-reid, AGW).
    """
    n_pos, ranks = pr.n_pos, pr.ranks.astype(np.float64)
    b_size, pmax = ranks.shape
    has = n_pos > 0
    ap_q = np.zeros(b_size)
    inp_q = np.zeros(b_size)
    first = np.full(b_size, -1, dtype=np.int64)
    if pmax == 0:
        return {"AP": ap_q, "INP": inp_q, "first_hit_rank": first}
    i = np.arange(pmax, dtype=np.float64)[None, :]
    slot_ok = i < n_pos[:, None]
    precision = (i + 1.0) / (ranks + 1.0)
    if ap == "noninterp":
        terms = precision
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            old = np.where(ranks == 0, 1.0, i / np.where(ranks == 0, 1.0, ranks))
        terms = (old + precision) / 2.0
    sums = np.where(slot_ok, terms, 0.0).sum(1)
    ap_q[has] = sums[has] / n_pos[has]
    last = ranks[np.arange(b_size), np.maximum(n_pos - 1, 0)]
    inp_q[has] = n_pos[has] / (last[has] + 1.0)
    first[has] = pr.ranks[has, 0]
    return {"AP": ap_q, "INP": inp_q, "first_hit_rank": first}


def query_ranges(n_query: int, chunk_size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, n_query, chunk_size):
        yield start, min(n_query, start + chunk_size)


def cmc_from_first_hits(first_hit: np.ndarray, max_rank: int, denominator: int) -> np.ndarray:
    """CMC[k] = (number of queries whose first hit is at 0-based rank <= k) / denominator.

    Queries whose ranking is shorter than ``max_rank`` are thereby padded with their last value (1 once a
    hit happened), instead of the ragged rows / stale values torchreid produces.
    """
    hits = first_hit[first_hit >= 0]
    counts = np.bincount(np.minimum(hits, max_rank), minlength=max_rank + 1)[:max_rank]
    return np.cumsum(counts).astype(np.float64) / max(denominator, 1)

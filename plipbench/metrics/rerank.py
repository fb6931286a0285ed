"""k-reciprocal re-ranking (Zhong et al., CVPR 2017), without dense N x N matrices.

Follows the reference ``re_ranking(q_g_dist, q_q_dist, g_g_dist, k1, k2, lambda_value)`` (torchreid
``reid/utils/rerank.py``, from zhunzhong07/person-re-ranking) applied to the ``metric`` distances of all
query + gallery features (N = Q + G), as torchreid's engine does:

1. original distance ``od[i, j] = d(i, j)^2 / max_k d(i, k)^2`` (the reference squares its input and
   normalises each row by its maximum; its transpose is the same thing for a symmetric ``d``);
2. ``V[i]``: Gaussian weights ``exp(-od[i, j])`` (normalised to sum 1) over the k-reciprocal set of i
   (k1 neighbours), expanded by the round(k1/2)-reciprocal sets of its members that overlap it by more
   than 2/3; then query expansion: ``V[i]`` = mean of ``V`` over the k2 nearest neighbours of i;
3. Jaccard distance ``1 - sum min(V_i, V_j) / sum max(V_i, V_j)``, written as ``1 - m / (2 - m)``;
4. final distance = ``(1 - lambda) * jaccard + lambda * od`` for query x gallery.

What is kept small: only the top max(k1 + 1, k2) neighbour lists (N x K), the row maxima, and V as a
sparse matrix (about N x k1 x k1/2 entries at most); the query x gallery result is produced one query
chunk at a time. What is still O(N^2): the time of one pass over all N x N distances (for the neighbour
lists and row maxima), computed chunk by chunk, and the query x gallery distances (one chunk at a time).
Computation runs in float64 (the reference uses float32), so values agree with it to about 1e-6.

Ranking ties inside the neighbour lists are broken by index (stable order), like the evaluation.
"""

from __future__ import annotations

import numpy as np

from plipbench.metrics._checks import MetricInputError, check_positive_int
from plipbench.metrics._ranking import DEFAULT_CHUNK_BYTES, DistanceSource, check_features

_MAX_EXPANSION = 1 << 24  # (query, gallery) Jaccard terms held at once


class KReciprocalReranker(DistanceSource):
    """Re-ranked query x gallery distances, produced one query chunk at a time with :meth:`chunk`."""

    def __init__(self, query_features, gallery_features, *, metric: str = "euclidean", k1: int = 20, k2: int = 6,
                 lambda_value: float = 0.3, chunk_size: int | None = None) -> None:
        import torch
        import torch.nn.functional as F

        if metric not in ("euclidean", "cosine"):
            raise MetricInputError(f"metric: unknown value {metric!r}; expected 'euclidean' or 'cosine'")
        qf, gf = check_features(query_features, gallery_features)
        k1 = check_positive_int("rerank.k1", k1)
        k2 = check_positive_int("rerank.k2", k2)
        try:
            lam = float(lambda_value)
        except (TypeError, ValueError):
            raise MetricInputError(f"rerank.lambda_value: expected a number in [0, 1], got {lambda_value!r}") from None
        if not 0.0 <= lam <= 1.0:
            raise MetricInputError(f"rerank.lambda_value: expected a number in [0, 1], got {lambda_value!r}")
        x = torch.cat([qf, gf]).to(torch.float64)
        if metric == "cosine":
            x = F.normalize(x, p=2, dim=1)
        self.x, self.metric = x, metric
        self.sq = (x * x).sum(1)
        self.n_query, self.n_gallery = qf.shape[0], gf.shape[0]
        n = x.shape[0]
        n_neigh = max(k1 + 1, k2)
        if n_neigh > n:
            raise MetricInputError(f"rerank.k1: k1 + 1 = {k1 + 1} (and k2 = {k2}) must not exceed query + gallery size {n}")
        self.k1, self.k2, self.lam = k1, k2, lam
        self.description = f"k-reciprocal re-ranking of {metric}"
        self.params = {
            "method": "k-reciprocal re-ranking (Zhong et al. 2017), torchreid re_ranking semantics",
            "k1": k1, "k2": k2, "lambda_value": lam, "base_distance": metric,
            "original_distance": "base distance squared, divided by its row maximum over query + gallery",
        }
        rows_per_chunk = chunk_size or max(1, DEFAULT_CHUNK_BYTES // (24 * n))
        self._neighbours(n_neigh, rows_per_chunk)
        self._build_v()

    def _dist(self, rows, cols=None):
        """Base distances between the rows ``rows`` (a slice) and ``cols`` (a slice, default all)."""
        import torch

        cols = slice(None) if cols is None else cols
        xr, xc = self.x[rows], self.x[cols]
        if self.metric == "euclidean":
            return torch.addmm(self.sq[rows][:, None] + self.sq[cols][None, :], xr, xc.t(), beta=1, alpha=-2)
        return 1.0 - xr @ xc.t()

    def _pair_od(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        import torch

        ti, tj = torch.from_numpy(i), torch.from_numpy(j)
        dot = (self.x[ti] * self.x[tj]).sum(1)
        d = self.sq[ti] + self.sq[tj] - 2 * dot if self.metric == "euclidean" else 1.0 - dot
        return ((d * d) / self.rowmax[ti]).numpy()

    def _neighbours(self, n_neigh: int, rows_per_chunk: int) -> None:
        import torch

        n = self.x.shape[0]
        rank = torch.empty((n, n_neigh), dtype=torch.int64)
        rowmax = torch.empty(n, dtype=torch.float64)
        for s in range(0, n, rows_per_chunk):
            e = min(n, s + rows_per_chunk)
            od = self._dist(slice(s, e)).square_()
            m = od.max(1).values
            od /= m[:, None]
            rowmax[s:e] = m
            vals, idx = torch.topk(od, n_neigh, dim=1, largest=False, sorted=True)
            # exact (distance, index) order: re-sort the selection, and redo rows with ties at the boundary
            idx, perm = torch.sort(idx, dim=1)
            vals = torch.gather(vals, 1, perm)
            vals, perm = torch.sort(vals, dim=1, stable=True)
            idx = torch.gather(idx, 1, perm)
            crowded = ((od <= vals[:, -1:]).sum(1) > n_neigh).nonzero().flatten()
            for r in crowded.tolist():
                idx[r] = torch.sort(od[r], stable=True).indices[:n_neigh]
            rank[s:e] = idx
        self.rank, self.rowmax = rank.numpy(), rowmax

    @staticmethod
    def _reciprocal(rank: np.ndarray, k: int, rows_per_block: int = 4096) -> np.ndarray:
        """k-reciprocal neighbours of every row, padded with -1: j in top-(k+1) of i and i in top-(k+1) of j."""
        top = rank[:, : k + 1]
        out = np.full_like(top, -1)
        for s in range(0, len(top), rows_per_block):
            fwd = top[s:s + rows_per_block]
            back = top[fwd]  # (b, k+1, k+1)
            ok = (back == np.arange(s, s + len(fwd))[:, None, None]).any(-1)
            out[s:s + len(fwd)] = np.where(ok, fwd, -1)
        return out

    def _build_v(self) -> None:
        import scipy.sparse as sp

        n = self.x.shape[0]
        kr = self._reciprocal(self.rank, self.k1)
        krh = self._reciprocal(self.rank, int(round(self.k1 / 2.0)))  # np.around: half to even, like round()
        rows_all, cols_all = [], []
        block = max(1, (1 << 22) // (kr.shape[1] ** 2 * krh.shape[1]))
        for s in range(0, n, block):
            own = kr[s:s + block]  # (b, k1+1)
            cand = krh[np.where(own >= 0, own, 0)]  # (b, k1+1, kh+1)
            valid = (cand >= 0) & (own >= 0)[..., None]
            inter = ((cand[..., None] == own[:, None, None, :]) & valid[..., None]).any(-1).sum(-1)
            accept = inter > 2.0 / 3 * valid.sum(-1)
            extra = np.where(valid & accept[..., None], cand, -1).reshape(len(own), -1)
            members = np.sort(np.concatenate([own, extra], axis=1), axis=1)
            first = np.ones_like(members, dtype=bool)
            first[:, 1:] = members[:, 1:] != members[:, :-1]
            r, c = np.nonzero(first & (members >= 0))
            rows_all.append(r + s)
            cols_all.append(members[r, c])
        rows, cols = np.concatenate(rows_all), np.concatenate(cols_all)
        w = np.exp(-self._pair_od(rows, cols))
        w /= np.bincount(rows, weights=w, minlength=n)[rows]
        v = sp.csr_matrix((w, (rows, cols)), shape=(n, n))
        if self.k2 != 1:
            qe = sp.csr_matrix(
                (np.full(n * self.k2, 1.0 / self.k2), (np.repeat(np.arange(n), self.k2), self.rank[:, : self.k2].ravel())),
                shape=(n, n),
            )
            v = (qe @ v).tocsr()
        self.v_csr, self.v_csc = v, v.tocsc()

    def _jaccard(self, start: int, stop: int) -> np.ndarray:
        q, g, b = self.n_query, self.n_gallery, stop - start
        vq = self.v_csr[start:stop].tocoo()
        csc = self.v_csc
        lens = (csc.indptr[vq.col + 1] - csc.indptr[vq.col]).astype(np.int64)
        total = int(lens.sum())
        offsets = np.repeat(csc.indptr[vq.col].astype(np.int64) - (np.cumsum(lens) - lens), lens)
        pos = offsets + np.arange(total)
        j = csc.indices[pos]
        keep = j >= q
        m = np.minimum(np.repeat(vq.data, lens)[keep], csc.data[pos][keep])
        flat = np.repeat(vq.row.astype(np.int64), lens)[keep] * g + (j[keep] - q)
        tm = np.bincount(flat, weights=m, minlength=b * g).reshape(b, g)
        return 1.0 - tm / (2.0 - tm)

    def chunk(self, start: int, stop: int):
        """Re-ranked distances of queries ``start:stop`` to the whole gallery (float64 torch tensor)."""
        import torch

        nnz_per_row = max(1.0, self.v_csr.nnz / self.v_csr.shape[0])
        step = max(1, int(_MAX_EXPANSION // (nnz_per_row * nnz_per_row + self.n_gallery)))
        out = []
        for s in range(start, stop, step):
            e = min(stop, s + step)
            od = self._dist(slice(s, e), slice(self.n_query, None)).square_() / self.rowmax[s:e, None]
            jac = torch.from_numpy(self._jaccard(s, e))
            out.append(jac * (1.0 - self.lam) + od * self.lam)
        return torch.cat(out)

    def distances(self) -> np.ndarray:
        """The whole query x gallery re-ranked distance matrix (for small data and tests)."""
        return self.chunk(0, self.n_query).numpy()

"""Bootstrap confidence intervals for per-query scores, and paired comparisons of two systems.

Percentile bootstrap (Efron & Tibshirani): resample queries with replacement ``n_resamples`` times, compute
the statistic on each resample, and take the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2``
quantiles. Resampling is vectorised in blocks so memory stays bounded for large query sets. Each function
uses its own ``np.random.default_rng(seed)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np

from plipbench.metrics._checks import MetricInputError, check_positive_int

_BLOCK_ELEMENTS = 1 << 22  # resampled values held at once


def _scores(name: str, values) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise MetricInputError(f"{name}: expected a 1-D array of per-query scores, got shape {arr.shape}")
    if arr.size == 0:
        raise MetricInputError(f"{name}: empty; need at least one per-query score")
    if not np.all(np.isfinite(arr)):
        raise MetricInputError(f"{name}: contains NaN or infinite values")
    return arr


def _check(n_resamples: int, confidence: float) -> int:
    n_resamples = check_positive_int("n_resamples", n_resamples, minimum=2)
    if not (0.0 < float(confidence) < 1.0):
        raise MetricInputError(f"confidence: expected a value strictly between 0 and 1, got {confidence!r}")
    return n_resamples


def _index_blocks(rng: np.random.Generator, n: int, n_resamples: int) -> Iterator[np.ndarray]:
    block = max(1, _BLOCK_ELEMENTS // n)
    for start in range(0, n_resamples, block):
        yield rng.integers(0, n, size=(min(block, n_resamples - start), n))


def bootstrap_ci(
    per_query_scores: Sequence[float] | np.ndarray,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    statistic: Callable[..., np.ndarray] = np.mean,
) -> dict:
    """Percentile bootstrap CI of ``statistic`` over per-query scores.

    ``statistic`` must accept ``axis=`` (like ``np.mean``, ``np.median``). Returns ``point`` (statistic of the
    original sample), ``low``, ``high``, ``std_error`` (std of the bootstrap distribution, ddof=1), and the
    settings used.
    """
    x = _scores("per_query_scores", per_query_scores)
    n_resamples = _check(n_resamples, confidence)
    rng = np.random.default_rng(seed)
    boot = np.concatenate([statistic(x[idx], axis=1) for idx in _index_blocks(rng, len(x), n_resamples)])
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(boot, [alpha, 1.0 - alpha])
    return {
        "point": float(statistic(x)),
        "low": float(low),
        "high": float(high),
        "std_error": float(np.std(boot, ddof=1)),
        "n": int(len(x)),
        "n_resamples": n_resamples,
        "confidence": float(confidence),
        "method": "percentile bootstrap",
        "seed": int(seed),
    }


def paired_bootstrap(
    scores_a: Sequence[float] | np.ndarray,
    scores_b: Sequence[float] | np.ndarray,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    statistic: Callable[..., np.ndarray] = np.mean,
) -> dict:
    """Paired bootstrap of ``statistic(a) - statistic(b)`` over the same queries.

    Both systems are resampled with the *same* query indices. Returns ``difference`` (on the original
    sample), ``low``/``high`` (percentile CI), ``std_error`` and a two-sided ``p_value`` for "no difference":
    the bootstrap distribution is shifted to mean zero (null hypothesis) and
    ``p = (1 + #{|d*_b - d| >= |d|}) / (n_resamples + 1)``.
    """
    a = _scores("scores_a", scores_a)
    b = _scores("scores_b", scores_b)
    if len(a) != len(b):
        raise MetricInputError(f"scores_b: length {len(b)} does not match scores_a ({len(a)}); scores must be paired")
    n_resamples = _check(n_resamples, confidence)
    rng = np.random.default_rng(seed)
    diffs = np.concatenate(
        [statistic(a[idx], axis=1) - statistic(b[idx], axis=1) for idx in _index_blocks(rng, len(a), n_resamples)]
    )
    observed = float(statistic(a) - statistic(b))
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(diffs, [alpha, 1.0 - alpha])
    extreme = np.abs(diffs - observed) >= abs(observed) - 1e-12 * max(1.0, abs(observed))
    return {
        "difference": observed,
        "low": float(low),
        "high": float(high),
        "std_error": float(np.std(diffs, ddof=1)),
        "p_value": float((1 + extreme.sum()) / (n_resamples + 1)),
        "n": int(len(a)),
        "n_resamples": n_resamples,
        "confidence": float(confidence),
        "method": "paired percentile bootstrap; p-value from the null-shifted bootstrap distribution",
        "seed": int(seed),
    }


def hits_at_k(first_hit_rank: Sequence[int] | np.ndarray, ks: Sequence[int] | int = (1, 5, 10)) -> dict[str, np.ndarray]:
    """Per-query R@k / rank-k indicators (0.0 or 1.0) from 0-based first-hit ranks (-1 = no hit).

    Feed ``result["per_query"]["first_hit_rank"]`` (for ReID, restrict to ``per_query["valid"]`` first, as the
    CMC does) and pass the indicators to :func:`bootstrap_ci` or :func:`paired_bootstrap`.
    """
    r = np.asarray(first_hit_rank)
    if r.ndim != 1 or r.dtype.kind not in "iu":
        raise MetricInputError(f"first_hit_rank: expected a 1-D integer array, got shape {r.shape}, dtype {r.dtype}")
    if isinstance(ks, (int, np.integer)):
        ks = (ks,)
    return {f"R@{int(k)}": ((r >= 0) & (r < check_positive_int("ks", k))).astype(np.float64) for k in ks}

"""Confidence intervals and paired comparisons from a result's per-query data.

Conventions (all seeded, so a leaderboard is the same every time it is built):

* **Per-query scores.** For retrieval/ReID results the score of one query is ``R@k = 0 <= first_hit_rank < k``,
  ``AP`` for ``mAP`` and ``INP`` for ``mINP``; the task's metric is the mean over queries, so the CI is a
  percentile bootstrap of the mean. For attribute results the metric is not a mean over images (mA is a mean of
  per-attribute recalls), so images are resampled and the metric is recomputed from ``probs`` and ``labels`` with
  :func:`plipbench.metrics.evaluate_attributes`.
* **CI.** 95% percentile bootstrap, 1000 resamples, seed 0 by default. Mean-type metrics use
  :func:`plipbench.metrics.bootstrap_ci` / :func:`plipbench.metrics.paired_bootstrap`; attribute metrics use the
  same resampling scheme here, with the metric recomputed on each resample.
* **Paired comparison.** One set of resampled query indices is drawn and applied to both systems, and the
  difference ``a - b`` is recomputed on each resample. The CI is the percentile interval of those differences;
  the two-sided p-value (the convention of :func:`plipbench.metrics.paired_bootstrap`) shifts the bootstrap
  distribution to the null: ``p = (1 + #{|d* - d| >= |d|}) / (n_resamples + 1)``. Identical systems get p = 1.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from plipbench.errors import ConfigError
from plipbench.evaluation.results import TaskResult

DEFAULT_RESAMPLES = 1000
DEFAULT_CONFIDENCE = 0.95
DEFAULT_SEED = 0
ATTRIBUTE_METRICS = ("mA", "Acc", "Prec", "Rec", "F1")
# Bound on index-matrix memory: resamples are drawn in blocks of at most this many int64 elements.
_BLOCK_ELEMENTS = 4_000_000

_RECALL_AT = re.compile(r"^(?:r@|rank-?|top-?|recall@)(\d+)$", re.IGNORECASE)


def recall_k(metric: str) -> int | None:
    """``"R@5"`` (also ``Rank-5``, ``top5``, ``recall@5``) -> 5; anything else -> None."""
    match = _RECALL_AT.match(metric.strip())
    return int(match.group(1)) if match else None


def per_query_metric(result: TaskResult, metric: str | None = None) -> Any | None:
    """The per-query scores whose mean is ``metric`` (default: the main score), or None when not derivable.

    Attribute metrics are not means over images and return None here; see :func:`attribute_statistic`.
    """
    import numpy as np

    metric = metric or result.main_score
    if not result.per_query:
        return None
    k = recall_k(metric)
    if k is not None and "first_hit_rank" in result.per_query:
        ranks = np.asarray(result.per_query_arrays()["first_hit_rank"])
        return ((ranks >= 0) & (ranks < k)).astype(np.float64)
    name = {"mAP": "AP", "mINP": "INP"}.get(metric)
    if name is not None and name in result.per_query:
        return np.asarray(result.per_query_arrays()[name], dtype=np.float64)
    return None


def _evaluate_attributes() -> Callable[[Any, Any], dict[str, float]]:
    from plipbench.metrics import evaluate_attributes

    return evaluate_attributes


def attribute_statistic(result: TaskResult, metric: str | None = None) -> tuple[int, Callable[[Any], float]] | None:
    """``(n_images, f)`` where ``f(indices)`` recomputes ``metric`` on the images ``indices``; None if unavailable."""
    import numpy as np

    metric = metric or result.main_score
    if metric not in ATTRIBUTE_METRICS or not {"probs", "labels"} <= set(result.per_query):
        return None
    arrays = result.per_query_arrays()
    probs, labels = np.asarray(arrays["probs"]), np.asarray(arrays["labels"])
    evaluate = _evaluate_attributes()

    def statistic(indices: Any) -> float:
        return float(evaluate(probs[indices], labels[indices])[metric])

    return len(probs), statistic


def _index_blocks(n_items: int, n_resamples: int, seed: int):
    """Yield blocks of resampled index rows (shape ``(b, n_items)``), seeded, bounded in memory."""
    import numpy as np

    rng = np.random.default_rng(seed)
    rows_per_block = max(1, _BLOCK_ELEMENTS // max(1, n_items))
    done = 0
    while done < n_resamples:
        rows = min(rows_per_block, n_resamples - done)
        yield rng.integers(0, n_items, size=(rows, n_items))
        done += rows


def _check_resampling(n_resamples: int, confidence: float) -> None:
    if n_resamples < 2:
        raise ConfigError(f"--n-resamples must be >= 2, got {n_resamples}")
    if not 0.0 < confidence < 1.0:
        raise ConfigError(f"confidence must be in (0, 1), got {confidence}")


def _interval(point: float, replicates: Any, confidence: float) -> dict[str, float]:
    import numpy as np

    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(replicates, [alpha, 1.0 - alpha])
    return {"point": float(point), "low": float(low), "high": float(high),
            "std_error": float(np.std(replicates, ddof=1)) if len(replicates) > 1 else 0.0}


def bootstrap_mean_ci(values: Any, *, n_resamples: int = DEFAULT_RESAMPLES, confidence: float = DEFAULT_CONFIDENCE,
                      seed: int = DEFAULT_SEED) -> dict[str, float]:
    """Percentile bootstrap CI of the mean of per-query ``values``: keys point, low, high, std_error."""
    from plipbench.metrics import bootstrap_ci

    _check_resampling(n_resamples, confidence)
    ci = bootstrap_ci(values, n_resamples=n_resamples, confidence=confidence, seed=seed)
    return {key: ci[key] for key in ("point", "low", "high", "std_error")}


def bootstrap_statistic_ci(n_items: int, statistic: Callable[[Any], float], *, n_resamples: int = DEFAULT_RESAMPLES,
                           confidence: float = DEFAULT_CONFIDENCE, seed: int = DEFAULT_SEED) -> dict[str, float]:
    """Percentile bootstrap CI of ``statistic(indices)`` over resampled item indices (e.g. attribute mA)."""
    import numpy as np

    _check_resampling(n_resamples, confidence)
    if n_items < 1:
        raise ConfigError("cannot bootstrap zero items")
    replicates = [statistic(row) for idx in _index_blocks(n_items, n_resamples, seed) for row in idx]
    return _interval(statistic(np.arange(n_items)), np.asarray(replicates), confidence)


def result_ci(result: TaskResult, metric: str | None = None, *, n_resamples: int = DEFAULT_RESAMPLES,
              confidence: float = DEFAULT_CONFIDENCE, seed: int = DEFAULT_SEED) -> dict[str, float] | None:
    """The bootstrap CI of ``metric`` (default: main score) of one result, or None without per-query data.

    ``point`` is the bootstrap's own full-sample estimate; the leaderboard displays the stored score.
    """
    values = per_query_metric(result, metric)
    if values is not None:
        ci = bootstrap_mean_ci(values, n_resamples=n_resamples, confidence=confidence, seed=seed)
        return {**ci, "n": int(len(values))}
    attr = attribute_statistic(result, metric)
    if attr is not None:
        n_items, statistic = attr
        ci = bootstrap_statistic_ci(n_items, statistic, n_resamples=n_resamples, confidence=confidence, seed=seed)
        return {**ci, "n": int(n_items)}
    return None


def _p_value(differences: Any, observed: float) -> float:
    """Two-sided p-value of "no difference" from the null-shifted bootstrap distribution (as in metrics.stats)."""
    import numpy as np

    extreme = np.abs(differences - observed) >= abs(observed) - 1e-12 * max(1.0, abs(observed))
    return float((1 + np.count_nonzero(extreme)) / (len(differences) + 1))


def paired_difference(result_a: TaskResult, result_b: TaskResult, metric: str | None = None, *,
                      n_resamples: int = DEFAULT_RESAMPLES, confidence: float = DEFAULT_CONFIDENCE,
                      seed: int = DEFAULT_SEED) -> dict[str, float] | None:
    """Paired bootstrap of ``metric(a) - metric(b)`` on the same queries: keys difference, low, high, p_value, n.

    Returns None when either result lacks per-query data. Raises :class:`ConfigError` when the two results have a
    different number of queries (they cannot be paired).
    """
    import numpy as np

    _check_resampling(n_resamples, confidence)
    metric = metric or result_a.main_score
    values_a, values_b = per_query_metric(result_a, metric), per_query_metric(result_b, metric)
    if values_a is not None and values_b is not None:
        from plipbench.metrics import paired_bootstrap

        _check_same_queries(result_a, result_b, len(values_a), len(values_b))
        out = paired_bootstrap(values_a, values_b, n_resamples=n_resamples, confidence=confidence, seed=seed)
        return {key: out[key] for key in ("difference", "low", "high", "std_error", "p_value", "n")}
    attr_a, attr_b = attribute_statistic(result_a, metric), attribute_statistic(result_b, metric)
    if attr_a is None or attr_b is None:
        return None
    _check_same_queries(result_a, result_b, attr_a[0], attr_b[0])
    n, stat_a, stat_b = attr_a[0], attr_a[1], attr_b[1]
    diffs = np.asarray([stat_a(row) - stat_b(row) for idx in _index_blocks(n, n_resamples, seed) for row in idx])
    everything = np.arange(n)
    observed = stat_a(everything) - stat_b(everything)
    ci = _interval(observed, diffs, confidence)
    return {"difference": float(observed), "low": ci["low"], "high": ci["high"], "std_error": ci["std_error"],
            "p_value": _p_value(diffs, observed), "n": int(n)}


def _check_same_queries(a: TaskResult, b: TaskResult, n_a: int, n_b: int) -> None:
    if n_a != n_b:
        raise ConfigError(
            f"cannot pair {a.backbone!r} and {b.backbone!r} on task {a.task!r} ({a.protocol}): "
            f"{n_a} vs {n_b} per-query scores; a paired comparison needs the same queries in the same order"
        )

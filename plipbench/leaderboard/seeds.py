"""Leaderboard cells over training seeds, and the two-level bootstrap that counts both sources of noise.

A **cell** is one (backbone, task, protocol) with the results of all its seeds. Its value is the mean of the
per-seed scores. A result's ``seed`` is ``None`` when nothing in it depends on a seed (fixed weights and an
untrained protocol): such a cell is one deterministic run.

**Two-level bootstrap.** Each of the ``n_resamples`` replicates

1. draws one resample of the test queries (images for attributes), *shared by every seed*: all seeds are scored
   on the same test set, so the test-sample noise they share must not average out over seeds;
2. draws ``S`` seeds with replacement among the cell's ``S`` seeds;
3. recomputes the metric of each drawn seed on the query resample and averages them.

The 95% interval is the percentile interval of the replicates. **Small-S correction:** a plain bootstrap of ``S``
values has variance ``(S-1)/S * s^2/S`` (two thirds of the unbiased ``s^2/S`` at ``S = 3``), so within each
replicate the drawn seeds' deviations from the replicate's all-seed mean are scaled by ``sqrt(S/(S-1))``.
With one seed of a trained model there is no seed level: the interval counts test samples only, and the cell is
flagged ``training_variance_unknown`` (a comparison then makes no significance claim).

**Paired comparison** of two backbones on one (task, protocol): the same query resample is applied to both. When
both have the same seeds (two or more), seeds are paired too: the seed draw is shared and the per-seed
differences are resampled; otherwise each side draws its own seeds. The p-value is the two-sided null-shifted
bootstrap p-value of :mod:`plipbench.leaderboard.significance`.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

from plipbench.errors import ConfigError
from plipbench.evaluation.results import TaskResult

# Bound on the query-weight matrix of one block (float64 elements): memory stays flat at MSMT17's 11,659 queries.
_BLOCK_ELEMENTS = 4_000_000
# Query draws of up to this many elements (n_resamples x N; 32 MiB each, 8 kept) are reused across the cells.
_CACHE_ELEMENTS = 4_000_000


def _name(result: TaskResult) -> str:
    return result.source_path or result.file_name()


@dataclass
class Cell:
    """The results of one (backbone, task, protocol), one per seed, sorted by seed."""

    backbone: str
    task: str
    protocol: str
    results: list[TaskResult]

    @property
    def first(self) -> TaskResult:
        return self.results[0]

    @property
    def metric(self) -> str:
        return self.first.main_score

    @property
    def seeds(self) -> list[int | None]:
        return [r.seed for r in self.results]

    @property
    def n_seeds(self) -> int:
        return len(self.results)

    @property
    def seeded(self) -> bool:
        return any(s is not None for s in self.seeds)

    @property
    def training_variance_unknown(self) -> bool:
        return self.seeded and self.n_seeds < 2

    def values(self, metric: str | None = None) -> list[float]:
        metric = metric or self.metric
        return [float(r.scores[metric]) for r in self.results if metric in r.scores]

    def mean(self, metric: str | None = None) -> float:
        values = self.values(metric)
        return float(sum(values) / len(values)) if values else math.nan


def _recipe(result: TaskResult) -> str | None:
    recipe = (result.provenance.backbone or {}).get("pretraining_recipe")
    return str(recipe) if recipe is not None else None


def _weights_key(result: TaskResult) -> str:
    """What must agree between the seeds of one backbone: the pre-training recipe (without its seed) for a backbone
    pre-trained per seed, else the weights themselves."""
    recipe = _recipe(result)
    if recipe is not None:
        return f"pre-training recipe {recipe[:12]}"
    return f"weights {str((result.provenance.backbone or {}).get('fingerprint'))[:12]}"


def _refuse_mix(what: str, results: list[TaskResult], key: Any) -> None:
    groups: dict[Any, TaskResult] = {}
    for r in results:
        groups.setdefault(key(r), r)
    if len(groups) > 1:
        (ka, a), (kb, b) = list(groups.items())[:2]
        raise ConfigError(f"results of {a.backbone!r} on {a.task!r} ({a.protocol}) come from different {what}: "
                          f"{_name(a)} ({ka}) and {_name(b)} ({kb}); keep one set of seeds in the results folder")


def group_cells(results: list[TaskResult]) -> dict[tuple[str, str, str], Cell]:
    """Group results into cells, refusing folders whose seeds do not belong together.

    Refused (ConfigError naming the files): two results for the same seed; a seeded and an unseeded result in one
    cell; seeds from different task specs, datasets, main scores or weights (a backbone pre-trained per seed must
    share its pre-training recipe); and one backbone name whose results (of one seed) come from different weights.
    """
    cells: dict[tuple[str, str, str], list[TaskResult]] = {}
    for r in results:
        cells.setdefault((r.backbone, r.task, r.protocol), []).append(r)
    out: dict[tuple[str, str, str], Cell] = {}
    for key, members in cells.items():
        seen: dict[int | None, TaskResult] = {}
        for r in members:
            if r.seed in seen:
                raise ConfigError(f"two results for backbone {r.backbone!r}, task {r.task!r}, protocol {r.protocol!r}"
                                  f", seed {r.seed}: {_name(seen[r.seed])} and {_name(r)}; keep one of them")
            seen[r.seed] = r
        if None in seen and len(seen) > 1:
            unseeded = seen[None]
            other = next(r for s, r in seen.items() if s is not None)
            raise ConfigError(f"{_name(unseeded)} has no seed but {_name(other)} has seed {other.seed}: one cell "
                              "cannot mix a deterministic run with seeded runs")
        _refuse_mix("task specs", members, lambda r: f"spec {r.provenance.task_spec_hash[:12]}")
        _refuse_mix("datasets", members, lambda r: f"dataset {r.provenance.dataset_fingerprint[:12]}")
        _refuse_mix("main scores", members, lambda r: r.main_score)
        _refuse_mix("weights", members, _weights_key)
        out[key] = Cell(*key, sorted(members, key=lambda r: -1 if r.seed is None else r.seed))
    by_backbone: dict[tuple[str, Any], list[TaskResult]] = {}
    for r in results:
        per_seed = _recipe(r) is not None  # pre-trained per seed: seed s is its own model
        by_backbone.setdefault((r.backbone, r.seed if per_seed else "all"), []).append(r)
    for (backbone, _), members in by_backbone.items():
        fingerprints: dict[str, TaskResult] = {}
        for r in members:
            fingerprints.setdefault(str((r.provenance.backbone or {}).get("fingerprint")), r)
        if len(fingerprints) > 1:
            (fa, a), (fb, b) = list(fingerprints.items())[:2]
            raise ConfigError(f"backbone {backbone!r}: {_name(a)} and {_name(b)} were made by different weights "
                              f"(fingerprints {fa[:12]} and {fb[:12]}); give them different names or rerun one")
    return out


# -- per-seed statistics under query weights -----------------------------------------------------------------------
class SeedStatistic:
    """A cell's metric for every seed under weights on the test items: ``weighted(W)`` has shape ``(S, b)``.

    ``W`` is ``(b, N)``: how often each of the ``N`` test items is drawn in each of ``b`` resamples (rows sum to N).
    Mean-type metrics (R@k, mAP, mINP) are ``W @ v / N``; attribute metrics are recomputed from ``probs`` and
    ``labels`` (vectorised for the default ``rethinking`` convention, by expansion otherwise).
    """

    def __init__(self, n_items: int, weighted: Any) -> None:
        self.n_items, self._weighted = n_items, weighted

    def weighted(self, weights: Any) -> Any:
        return self._weighted(weights)


def cell_statistic(cell: Cell, metric: str | None = None) -> SeedStatistic | None:
    """The :class:`SeedStatistic` of ``metric`` (default: main score), or None when a seed lacks per-query data."""
    import numpy as np

    from plipbench.leaderboard import significance

    metric = metric or cell.metric
    per_seed = [significance.per_query_metric(r, metric) for r in cell.results]
    if all(v is not None for v in per_seed):
        lengths = {len(v) for v in per_seed}
        if len(lengths) != 1:
            raise ConfigError(f"{cell.backbone!r} on {cell.task!r} ({cell.protocol}): the seeds have "
                              f"{sorted(lengths)} per-query scores; every seed must score the same queries")
        values = np.stack([np.asarray(v, dtype=np.float64) for v in per_seed])  # (S, N)
        n = values.shape[1]
        return SeedStatistic(n, lambda w: values @ np.asarray(w, dtype=np.float64).T / n)
    if metric in PARSING_METRICS:
        return _parsing_statistic(cell, metric)
    if metric not in significance.ATTRIBUTE_METRICS:
        return None
    arrays = [r.per_query_arrays() if {"probs", "labels"} <= set(r.per_query) else None for r in cell.results]
    if any(a is None for a in arrays):
        return None
    labels = np.asarray(arrays[0]["labels"])
    for a, r in zip(arrays, cell.results, strict=True):
        if np.asarray(a["labels"]).shape != labels.shape or not np.array_equal(a["labels"], labels):
            raise ConfigError(f"{_name(r)}: its test labels differ from {_name(cell.first)}'s; every seed must "
                              "score the same test images")
    probs = np.stack([np.asarray(a["probs"], dtype=np.float64) for a in arrays])  # (S, N, L)
    options = cell.first.provenance.metric_protocol or {}
    return SeedStatistic(len(labels), attribute_weighted(probs, labels, metric, options))


PARSING_METRICS = ("mIoU", "pixel_accuracy", "mean_accuracy")


def _parsing_statistic(cell: Cell, metric: str) -> SeedStatistic | None:
    """Parsing scores under image weights: every seed's per-image ``tp``, ``pos`` (ground truth) and ``res``
    (predicted) pixel counts per class, summed with the weights, then SCHP's formulas (linear sums, so a resample
    equals :func:`plipbench.metrics.evaluate_parsing` on the resampled images exactly)."""
    import numpy as np

    arrays = [r.per_query_arrays() if {"tp", "pos", "res"} <= set(r.per_query) else None for r in cell.results]
    if any(a is None for a in arrays):
        return None
    stacks = {k: np.stack([np.asarray(a[k], dtype=np.float64) for a in arrays]) for k in ("tp", "pos", "res")}
    if len({v.shape for v in stacks.values()}) != 1 or not np.array_equal(
            stacks["pos"], np.broadcast_to(stacks["pos"][:1], stacks["pos"].shape)):
        raise ConfigError(f"{cell.backbone!r} on {cell.task!r} ({cell.protocol}): the seeds' label maps differ; "
                          "every seed must score the same test images")
    tp, pos, res = stacks["tp"], stacks["pos"], stacks["res"]  # (S, N, C)

    def weighted(weights: Any) -> Any:
        w = np.asarray(weights, dtype=np.float64)  # (b, N)
        t, p, r = (np.einsum("bn,snc->sbc", w, x) for x in (tp, pos, res))
        if metric == "mIoU":
            return (t / np.maximum(1.0, p + r - t)).mean(axis=2)
        if metric == "pixel_accuracy":
            return t.sum(axis=2) / np.maximum(1.0, p.sum(axis=2))
        return (t / np.maximum(1.0, p)).mean(axis=2)

    return SeedStatistic(tp.shape[1], weighted)


def attribute_weighted(probs: Any, labels: Any, metric: str, options: dict[str, Any]) -> Any:
    """``f(W) -> (S, b)``: attribute ``metric`` of every seed's ``probs`` (S, N, L) under item weights ``W``.

    The ``rethinking`` convention (plipbench's default) is linear in the weights and is computed with matrix
    products; it equals :func:`plipbench.metrics.evaluate_attributes` on the expanded resample exactly (tested).
    Other conventions expand each weight row into indices and call ``evaluate_attributes``.
    """
    import numpy as np

    from plipbench.metrics import evaluate_attributes
    from plipbench.metrics.attributes import EPS

    convention = options.get("convention", "rethinking")
    threshold = float(options.get("threshold", 0.5))
    rule = ">=" if ">=" in str(options.get("threshold_rule", ">")) else ">"
    gt = np.asarray(labels).astype(bool)
    preds = probs >= threshold if rule == ">=" else probs > threshold  # (S, N, L)

    if convention != "rethinking":
        def expanded(weights: Any) -> Any:
            w = np.rint(np.asarray(weights)).astype(np.int64)
            out = np.empty((len(probs), len(w)))
            for j, row in enumerate(w):
                idx = np.repeat(np.arange(len(row)), row)
                for s in range(len(probs)):
                    out[s, j] = evaluate_attributes(probs[s][idx], labels[idx], threshold=threshold,
                                                    convention=convention, threshold_rule=rule)[metric]
            return out

        return expanded

    gt_f, not_gt_f = gt.astype(np.float64), (~gt).astype(np.float64)
    n = gt.shape[0]

    def weighted(weights: Any) -> Any:
        w = np.asarray(weights, dtype=np.float64)  # (b, N)
        out = np.empty((len(preds), len(w)))
        n_pos, n_neg = w @ gt_f, w @ not_gt_f  # (b, L)
        for s, pred in enumerate(preds):
            if metric == "mA":
                tp = w @ (gt & pred).astype(np.float64)
                tn = w @ (~gt & ~pred).astype(np.float64)
                out[s] = ((tp / (n_pos + EPS) + tn / (n_neg + EPS)) / 2.0).mean(axis=1)
                continue
            inter = (gt & pred).sum(1).astype(np.float64)
            union = (gt | pred).sum(1).astype(np.float64)
            acc = w @ (inter / (union + EPS)) / n
            prec = w @ (inter / (pred.sum(1) + EPS)) / n
            rec = w @ (inter / (gt.sum(1) + EPS)) / n
            out[s] = {"Acc": acc, "Prec": prec, "Rec": rec,
                      "F1": 2 * prec * rec / (prec + rec + EPS)}[metric]
        return out

    return weighted


# -- the two-level bootstrap ---------------------------------------------------------------------------------------
def _query_weight_blocks(n_items: int, n_resamples: int, seed: int) -> Any:
    if n_items * n_resamples <= _CACHE_ELEMENTS:
        return _cached_query_weight_blocks(n_items, n_resamples, seed)
    return _draw_query_weight_blocks(n_items, n_resamples, seed)


@functools.lru_cache(maxsize=8)
def _cached_query_weight_blocks(n_items: int, n_resamples: int, seed: int) -> tuple[Any, ...]:
    return tuple(_draw_query_weight_blocks(n_items, n_resamples, seed))


def _draw_query_weight_blocks(n_items: int, n_resamples: int, seed: int) -> Any:
    """Resample counts ``(b, N)`` of N items drawn with replacement (rows sum to N), in blocks bounded in memory.

    Drawn from their own stream (``default_rng([seed, 0])``) and cached, so every cell and comparison with N test
    items in one leaderboard reuses the same draws (each remains a valid bootstrap; the build stays fast).
    """
    import numpy as np

    rng = np.random.default_rng([seed, 0])
    rows = max(1, _BLOCK_ELEMENTS // max(1, n_items))
    done = 0
    while done < n_resamples:
        b = min(rows, n_resamples - done)
        draws = rng.integers(0, n_items, size=(b, n_items)) + (np.arange(b) * n_items)[:, None]
        block = np.bincount(draws.ravel(), minlength=b * n_items).reshape(b, n_items).astype(np.float64)
        block.flags.writeable = False
        yield block
        done += b


def seed_weights(rng: Any, n_seeds: int, b: int) -> Any:
    """``(b, S)`` counts of each seed among ``S`` seeds drawn with replacement (rows sum to S)."""
    import numpy as np

    draws = rng.integers(0, n_seeds, size=(b, n_seeds)) + (np.arange(b) * n_seeds)[:, None]
    return np.bincount(draws.ravel(), minlength=b * n_seeds).reshape(b, n_seeds).astype(np.float64)


def combine_seeds(per_seed: Any, counts: Any) -> Any:
    """Replicate values ``(b,)`` from per-seed values ``(S, b)`` and seed counts ``(b, S)``, with the small-S
    variance correction (see the module docstring)."""
    import numpy as np

    n_seeds = per_seed.shape[0]
    mean = per_seed.mean(axis=0)
    if n_seeds < 2:
        return mean
    scale = math.sqrt(n_seeds / (n_seeds - 1))
    drawn = (counts.T / n_seeds * (per_seed - mean)).sum(axis=0)
    return mean + scale * np.asarray(drawn)


def _percentiles(replicates: Any, confidence: float) -> tuple[float, float]:
    import numpy as np

    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(replicates, [alpha, 1.0 - alpha])
    return float(low), float(high)


def cell_interval(cell: Cell, metric: str | None = None, *, n_resamples: int, confidence: float,
                  seed: int) -> dict[str, Any] | None:
    """Mean over seeds and its two-level bootstrap interval: keys mean, low, high, std_error, n, n_seeds, values,
    seeds, training_variance_unknown. None when the cell has no per-query data."""
    import numpy as np

    stat = cell_statistic(cell, metric)
    if stat is None:
        return None
    rng = np.random.default_rng([seed, 1])  # the seed draws; query draws come from [seed, 0]
    replicates = []
    for weights in _query_weight_blocks(stat.n_items, n_resamples, seed):
        per_seed = stat.weighted(weights)
        replicates.append(combine_seeds(per_seed, seed_weights(rng, cell.n_seeds, len(weights))))
    values = np.concatenate(replicates)
    low, high = _percentiles(values, confidence)
    return {"mean": cell.mean(metric), "low": low, "high": high, "std_error": float(np.std(values, ddof=1)),
            "n": stat.n_items, "n_seeds": cell.n_seeds, "values": cell.values(metric), "seeds": cell.seeds,
            "training_variance_unknown": cell.training_variance_unknown}


def paired_cells(a: Cell, b: Cell, metric: str | None = None, *, n_resamples: int, confidence: float,
                 seed: int) -> dict[str, Any] | None:
    """Two-level paired bootstrap of ``mean(a) - mean(b)``: keys difference, low, high, std_error, p_value, n,
    paired_seeds, training_variance_unknown. None when either side has no per-query data."""
    import numpy as np

    from plipbench.leaderboard.significance import _p_value

    metric = metric or a.metric
    stat_a, stat_b = cell_statistic(a, metric), cell_statistic(b, metric)
    if stat_a is None or stat_b is None:
        return None
    if stat_a.n_items != stat_b.n_items:
        raise ConfigError(f"cannot pair {a.backbone!r} and {b.backbone!r} on task {a.task!r} ({a.protocol}): "
                          f"{stat_a.n_items} vs {stat_b.n_items} per-query scores; a paired comparison needs the "
                          "same queries in the same order")
    paired_seeds = a.seeds == b.seeds and a.n_seeds >= 2
    rng = np.random.default_rng([seed, 1])  # the seed draws; query draws come from [seed, 0]
    replicates = []
    for weights in _query_weight_blocks(stat_a.n_items, n_resamples, seed):
        va, vb = stat_a.weighted(weights), stat_b.weighted(weights)
        if paired_seeds:
            replicates.append(combine_seeds(va - vb, seed_weights(rng, a.n_seeds, len(weights))))
        else:
            replicates.append(combine_seeds(va, seed_weights(rng, a.n_seeds, len(weights)))
                              - combine_seeds(vb, seed_weights(rng, b.n_seeds, len(weights))))
    diffs = np.concatenate(replicates)
    observed = a.mean(metric) - b.mean(metric)
    low, high = _percentiles(diffs, confidence)
    return {"difference": observed, "low": low, "high": high, "std_error": float(np.std(diffs, ddof=1)),
            "p_value": _p_value(diffs, observed), "n": stat_a.n_items, "paired_seeds": paired_seeds,
            "training_variance_unknown": a.training_variance_unknown or b.training_variance_unknown}

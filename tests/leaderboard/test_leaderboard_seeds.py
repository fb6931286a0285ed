"""Cells over seeds: grouping rules, the two-level bootstrap, and seed-aware comparisons and tables."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import attribute_result, retrieval_result

from plipbench.errors import ConfigError
from plipbench.leaderboard import build_leaderboard
from plipbench.leaderboard.compare import compare_backbones
from plipbench.leaderboard.seeds import (
    Cell,
    attribute_weighted,
    cell_interval,
    combine_seeds,
    group_cells,
    paired_cells,
    seed_weights,
)
from plipbench.metrics import evaluate_attributes

CI = {"n_resamples": 1000, "confidence": 0.95, "seed": 0}


def seeded(result, seed: int, *, recipe: str | None = "recipe-1", fingerprint: str | None = None):
    """The result as seed ``seed`` of a model pre-trained per seed (weights differ by seed, one recipe)."""
    out = result.model_copy(deep=True)
    out.seed = seed
    out.provenance.backbone = dict(out.provenance.backbone) | {"fingerprint": fingerprint or f"w{seed}"}
    if recipe is not None:
        out.provenance.backbone["pretraining_recipe"] = recipe
    return out


def seeds_of(backbone: str, rates: list[float], *, n: int = 400, task: str = "t", protocol: str = "zero-shot"):
    return [seeded(retrieval_result(backbone, task, hit_rate=r, n=n, seed=10 + i, protocol=protocol), i)
            for i, r in enumerate(rates)]


def test_weighted_attribute_metrics_equal_evaluate_attributes_on_the_expanded_resample() -> None:
    rng = np.random.default_rng(3)
    labels = (rng.random((60, 5)) < 0.4).astype(np.int64)
    labels[:, 4] = 0  # an attribute without positives: eps conventions matter
    probs = rng.random((2, 60, 5))
    probs[0, :3] = 0.5  # exactly at the threshold: the strict rule decides
    weights = np.stack([np.bincount(rng.integers(0, 60, 60), minlength=60) for _ in range(4)]).astype(float)
    for metric in ("mA", "Acc", "Prec", "Rec", "F1"):
        for rule in (">", ">="):
            options = {"convention": "rethinking", "threshold": 0.5, "threshold_rule": f"probs {rule} threshold"}
            got = attribute_weighted(probs, labels, metric, options)(weights)
            for s in range(2):
                for j, row in enumerate(weights):
                    idx = np.repeat(np.arange(60), row.astype(int))
                    want = evaluate_attributes(probs[s][idx], labels[idx], threshold_rule=rule)[metric]
                    assert got[s, j] == pytest.approx(want, abs=1e-12), (metric, rule)
    deepmar = attribute_weighted(probs, labels, "mA", {"convention": "deepmar"})(weights[:1])
    idx = np.repeat(np.arange(60), weights[0].astype(int))
    assert np.isnan(deepmar[0, 0]) == np.isnan(evaluate_attributes(probs[0][idx], labels[idx],
                                                                   convention="deepmar")["mA"])


def test_combine_seeds_has_the_unbiased_seed_variance() -> None:
    # no query noise: the replicates vary through the seed draw only; their variance must be s^2 / S (ddof 1)
    per_seed = np.array([[0.30], [0.36], [0.33]]).repeat(200_000, axis=1)
    rng = np.random.default_rng(0)
    replicates = combine_seeds(per_seed, seed_weights(rng, 3, per_seed.shape[1]))
    s2 = np.var([0.30, 0.36, 0.33], ddof=1)
    assert np.var(replicates) == pytest.approx(s2 / 3, rel=0.02)
    assert replicates.mean() == pytest.approx(0.33, abs=1e-3)
    # one seed: no seed level at all
    assert np.array_equal(combine_seeds(per_seed[:1], np.ones((per_seed.shape[1], 1))), per_seed[0])


def test_seed_counts_rows_sum_to_the_seed_count() -> None:
    counts = seed_weights(np.random.default_rng(1), 3, 1000)
    assert counts.shape == (1000, 3) and np.all(counts.sum(axis=1) == 3)
    assert set(np.unique(counts)) <= {0.0, 1.0, 2.0, 3.0}


def test_interval_counts_seed_noise_on_top_of_query_noise() -> None:
    same = Cell("A", "t", "zero-shot", [seeded(retrieval_result("A", "t", hit_rate=0.5, n=400, seed=1), s)
                                         for s in range(3)])
    spread = Cell("A", "t", "zero-shot", seeds_of("A", [0.35, 0.5, 0.65]))
    one = Cell("A", "t", "zero-shot", seeds_of("A", [0.5])[:1])
    ci_same, ci_spread, ci_one = (cell_interval(c, **CI) for c in (same, spread, one))
    # identical seeds: exactly the query-only bootstrap of one seed
    single = cell_interval(Cell("A", "t", "zero-shot", same.results[:1]), **CI)
    assert (ci_same["low"], ci_same["high"]) == (single["low"], single["high"])
    width = lambda ci: ci["high"] - ci["low"]  # noqa: E731
    assert width(ci_spread) > 2 * width(ci_same)
    assert ci_spread["mean"] == pytest.approx(np.mean(spread.values()))
    assert ci_spread["n_seeds"] == 3 and ci_spread["values"] == spread.values() and ci_spread["seeds"] == [0, 1, 2]
    assert ci_one["training_variance_unknown"] and not ci_spread["training_variance_unknown"]


def test_two_level_interval_covers_a_new_seed_mean_about_95_percent() -> None:
    # simulation: training noise (seed sd 0.04 on the hit rate) and query noise (400 queries); the interval from
    # 3 seeds should cover the true mean most of the time (percentile intervals at S = 3 under-cover somewhat)
    rng = np.random.default_rng(7)
    covered, trials = 0, 60
    for trial in range(trials):
        rates = np.clip(0.5 + rng.normal(0, 0.04, 3), 0, 1)
        cell = Cell("A", "t", "zero-shot", [seeded(retrieval_result("A", "t", hit_rate=r, n=400, seed=1000 * trial + i), i)
                                             for i, r in enumerate(rates)])
        ci = cell_interval(cell, n_resamples=400, confidence=0.95, seed=trial)
        covered += ci["low"] <= 0.5 <= ci["high"]
    assert covered / trials >= 0.8


def test_paired_cells_pair_seeds_only_when_both_have_the_same_seeds() -> None:
    a = Cell("A", "t", "zero-shot", seeds_of("A", [0.6, 0.62, 0.61]))
    b = Cell("B", "t", "zero-shot", seeds_of("B", [0.4, 0.41, 0.42]))
    out = paired_cells(a, b, **CI)
    assert out["paired_seeds"] and out["difference"] == pytest.approx(a.mean() - b.mean())
    assert out["low"] > 0 and out["p_value"] < 0.01
    b2 = Cell("B", "t", "zero-shot", seeds_of("B", [0.4, 0.41]))
    assert not paired_cells(a, b2, **CI)["paired_seeds"]
    one = Cell("B", "t", "zero-shot", seeds_of("B", [0.4])[:1])
    assert paired_cells(a, one, **CI)["training_variance_unknown"]


def test_compare_says_training_variance_is_unknown_with_one_seed() -> None:
    results = seeds_of("A", [0.6])[:1] + seeds_of("B", [0.4])[:1]
    frame = compare_backbones(results, "A", "B", n_resamples=200)
    assert frame["significant"].tolist() == [None]
    assert "training variance unknown" in frame["note"][0] and "not tested" in frame.attrs["summary"]
    # deterministic results (no seed: fixed weights, zero-shot) are complete with one run
    fixed = [retrieval_result("A", "t", hit_rate=0.6, n=400, seed=1), retrieval_result("B", "t", hit_rate=0.4, seed=2)]
    assert compare_backbones(fixed, "A", "B", n_resamples=200)["significant"].tolist() == [True]
    three = seeds_of("A", [0.6, 0.62, 0.58]) + seeds_of("B", [0.4, 0.43, 0.41])
    frame = compare_backbones(three, "A", "B", n_resamples=200)
    assert frame["significant"].tolist() == [True] and frame["seeds_a"].tolist() == [3]
    assert bool(frame["paired_seeds"][0])


def test_a_large_seed_spread_makes_a_gap_not_significant() -> None:
    # the query-level test alone would call this gap significant; the seeds say a retrained model does not keep it
    a = seeds_of("A", [0.30, 0.60, 0.45], n=2000)
    b = seeds_of("B", [0.42, 0.40, 0.41], n=2000)
    frame = compare_backbones(a + b, "A", "B", n_resamples=500)
    assert frame["significant"].tolist() == [False]
    assert compare_backbones([a[0], b[0]], "A", "B", n_resamples=500)["note"][0]  # one seed each: unknown


def test_group_cells_refuses_mixed_folders() -> None:
    base = seeds_of("A", [0.5, 0.5])
    with pytest.raises(ConfigError, match="seed 0"):
        group_cells([base[0], base[0].model_copy(deep=True)])
    unseeded = base[1].model_copy(deep=True)
    unseeded.seed = None
    with pytest.raises(ConfigError, match="cannot mix a deterministic run"):
        group_cells([base[0], unseeded])
    other_spec = base[1].model_copy(deep=True)
    other_spec.provenance.task_spec_hash = "another"
    with pytest.raises(ConfigError, match="different task specs"):
        group_cells([base[0], other_spec])
    other_data = base[1].model_copy(deep=True)
    other_data.provenance.dataset_fingerprint = "another"
    with pytest.raises(ConfigError, match="different datasets"):
        group_cells([base[0], other_data])
    other_recipe = seeded(base[1], 1, recipe="recipe-2")
    with pytest.raises(ConfigError, match="different weights"):
        group_cells([base[0], other_recipe])
    # fixed weights (no pre-training recipe): protocol seeds must share the weights
    fixed = [seeded(retrieval_result("F", "t", protocol="fine-tune"), s, recipe=None, fingerprint="same")
             for s in range(2)]
    assert len(group_cells(fixed)) == 1
    fixed[1].provenance.backbone["fingerprint"] = "changed"
    with pytest.raises(ConfigError, match="different weights"):
        group_cells(fixed)


def test_group_cells_refuses_one_name_for_different_weights_across_tasks() -> None:
    t1 = seeded(retrieval_result("X", "t1"), 0, recipe=None, fingerprint="w-old")
    t2 = seeded(retrieval_result("X", "t2"), 0, recipe=None, fingerprint="w-new")
    with pytest.raises(ConfigError, match="made by different weights"):
        group_cells([t1, t2])
    # pre-trained per seed: seed s of every task must come from model s
    p0 = [seeded(retrieval_result("P", t), 0, fingerprint="m0") for t in ("t1", "t2")]
    p1 = [seeded(retrieval_result("P", t), 1, fingerprint="m1") for t in ("t1", "t2")]
    assert len(group_cells(p0 + p1)) == 2
    p1[1].provenance.backbone["fingerprint"] = "m1-retrained"
    with pytest.raises(ConfigError, match="made by different weights"):
        group_cells(p0 + p1)


def test_leaderboard_cells_are_seed_means_with_seed_counts_in_every_format() -> None:
    results = seeds_of("A", [0.6, 0.62, 0.58]) + seeds_of("B", [0.4])[:1]
    results += [seeded(attribute_result("A", seed=0, noise=0.3 + 0.05 * s), s) for s in range(3)]
    board = build_leaderboard(results, with_ci=True, n_resamples=200)
    column = "text-reid/zero-shot/t"
    assert board.scores.at["A", column] == pytest.approx(np.mean([r.scores["R@1"] for r in results[:3]]))
    assert int(board.n_seeds.at["A", column]) == 3 and int(board.n_seeds.at["B", column]) == 1
    md = board.to_markdown()
    assert "**seeds**" in md and "*" in board.cell_text("B", board.columns[0])
    assert "training variance unknown" in md
    records = json.loads(board.to_json())
    cell = next(r for r in records["rows"] if r["backbone"] == "A")["cells"][column]
    assert cell["n_seeds"] == 3 and [p["seed"] for p in cell["per_seed"]] == [0, 1, 2]
    assert cell["mean"] == pytest.approx(board.scores.at["A", column])
    assert cell["ci_low"] < cell["mean"] < cell["ci_high"]
    assert "seeds" in board.to_csv().splitlines()[0].split(",")
    assert "mean over the row" in board.to_html()

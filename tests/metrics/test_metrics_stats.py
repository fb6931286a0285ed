"""Bootstrap CIs and paired bootstrap tests."""

from __future__ import annotations

import numpy as np
import pytest

from plipbench.metrics import bootstrap_ci, evaluate_retrieval, hits_at_k, paired_bootstrap


def test_bootstrap_ci_brackets_the_mean_and_matches_a_loop():
    x = np.random.default_rng(0).random(200)
    r = bootstrap_ci(x, n_resamples=500, seed=1)
    assert r["point"] == pytest.approx(x.mean())
    assert r["low"] < r["point"] < r["high"]
    assert r["std_error"] == pytest.approx(x.std(ddof=1) / np.sqrt(200), rel=0.2)
    rng = np.random.default_rng(1)
    loop = np.array([x[rng.integers(0, 200, 200)].mean() for _ in range(500)])
    assert r["low"] == pytest.approx(np.quantile(loop, 0.025)) and r["high"] == pytest.approx(np.quantile(loop, 0.975))
    assert bootstrap_ci(x, n_resamples=500, seed=1) == r
    assert bootstrap_ci(x, statistic=np.median, n_resamples=200)["point"] == pytest.approx(np.median(x))


def test_constant_scores_give_a_degenerate_interval():
    r = bootstrap_ci(np.ones(10), n_resamples=100)
    assert r["low"] == r["high"] == r["point"] == 1.0 and r["std_error"] == 0.0


def test_paired_bootstrap_detects_a_real_difference_and_not_a_null_one():
    rng = np.random.default_rng(0)
    a = rng.random(300)
    better = paired_bootstrap(a + 0.05, a, n_resamples=400)
    assert better["difference"] == pytest.approx(0.05)
    assert better["low"] == pytest.approx(0.05) and better["p_value"] < 0.01
    noisy = paired_bootstrap(a, rng.permutation(a), n_resamples=400)
    assert noisy["low"] < 0 < noisy["high"] and noisy["p_value"] > 0.05


def test_hits_at_k_reproduces_recall_from_per_query_ranks():
    sim = np.random.default_rng(3).random((40, 25))
    g = np.arange(25) % 6
    q = g[np.random.default_rng(4).integers(0, 25, 40)]
    r = evaluate_retrieval(sim, q_pids=q, g_pids=g, return_per_query=True)
    hits = hits_at_k(r["per_query"]["first_hit_rank"], (1, 5))
    assert hits["R@1"].mean() == pytest.approx(r["R@1"]) and hits["R@5"].mean() == pytest.approx(r["R@5"])
    assert hits_at_k(np.array([-1, 0, 3]), 4)["R@4"].tolist() == [0.0, 1.0, 1.0]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: bootstrap_ci([]), "per_query_scores"),
        (lambda: bootstrap_ci([1.0, np.nan]), "per_query_scores"),
        (lambda: bootstrap_ci([1.0, 2.0], confidence=1.5), "confidence"),
        (lambda: bootstrap_ci([1.0, 2.0], n_resamples=1), "n_resamples"),
        (lambda: paired_bootstrap([1.0, 2.0], [1.0]), "scores_b"),
        (lambda: hits_at_k(np.array([0.5])), "first_hit_rank"),
    ],
)
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()

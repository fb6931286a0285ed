"""Bootstrap CIs and paired comparisons from per-query data."""

from __future__ import annotations

import numpy as np
import pytest

from plipbench.errors import ConfigError
from plipbench.leaderboard import build_leaderboard, compare_backbones
from plipbench.leaderboard.significance import per_query_metric, result_ci


def test_per_query_scores_reproduce_the_stored_metrics(make_retrieval) -> None:
    r = make_retrieval("A", "cuhk-pedes", hit_rate=0.55, n=300)
    for metric in ("R@1", "R@5", "R@10", "mAP", "mINP"):
        assert per_query_metric(r, metric).mean() == pytest.approx(r.scores[metric])
    ranks = np.array([0, 3, -1, 9, 10])
    manual = make_retrieval("B", "t", first_hit_rank=ranks)
    assert per_query_metric(manual, "R@10").tolist() == [1.0, 1.0, 0.0, 1.0, 0.0]
    assert per_query_metric(manual, "mA") is None


def test_ci_contains_point_and_narrows_with_more_queries(make_retrieval) -> None:
    small = result_ci(make_retrieval("A", "t", hit_rate=0.6, n=100, seed=1))
    large = result_ci(make_retrieval("A", "t", hit_rate=0.6, n=3000, seed=1))
    for ci in (small, large):
        assert ci["low"] <= ci["point"] <= ci["high"]
        assert ci["low"] < ci["high"]
    assert (large["high"] - large["low"]) < 0.5 * (small["high"] - small["low"])
    again = result_ci(make_retrieval("A", "t", hit_rate=0.6, n=100, seed=1))
    assert again == small  # seeded: deterministic


def test_attribute_ci_recomputes_the_metric(make_attribute) -> None:
    r = make_attribute("A", noise=0.8, n=200)
    ci = result_ci(r, n_resamples=200)
    assert ci["point"] == pytest.approx(r.scores["mA"])
    assert ci["low"] <= r.scores["mA"] <= ci["high"] and ci["low"] < ci["high"]
    assert result_ci(r, "F1", n_resamples=200)["point"] == pytest.approx(r.scores["F1"])


def test_leaderboard_ci_cells(make_retrieval, make_plain) -> None:
    results = [make_retrieval("A", "t1", hit_rate=0.6), make_plain("B", "t1", 0.5)]
    board = build_leaderboard(results, with_ci=True)
    low, high = board.low.at["A", "text-reid/zero-shot/t1"], board.high.at["A", "text-reid/zero-shot/t1"]
    point = board.scores.at["A", "text-reid/zero-shot/t1"]
    assert low <= point <= high
    md = board.to_markdown()
    assert f"{100 * point:.1f} ±{100 * (high - low) / 2:.1f}" in md
    assert "| B | 50.0 |" in md  # no per-query data: no ±
    assert "95% two-level percentile bootstrap" in md


def test_compare_detects_a_real_difference(make_retrieval) -> None:
    results = [make_retrieval("good", "t1", hit_rate=0.8, n=500, seed=0),
               make_retrieval("bad", "t1", hit_rate=0.5, n=500, seed=1)]
    frame = compare_backbones(results, "good", "bad")
    row = frame.iloc[0]
    assert row["p_value"] < 0.05 and bool(row["significant"])
    assert row["low"] <= row["difference"] <= row["high"] and row["low"] > 0
    assert row["difference"] == pytest.approx(results[0].scores["R@1"] - results[1].scores["R@1"])
    assert "good is significantly better on 1" in frame.attrs["summary"]


def test_compare_identical_systems_is_not_significant(make_retrieval, make_attribute) -> None:
    a = make_retrieval("a", "t1", hit_rate=0.6, n=300, seed=4)
    b = a.model_copy(update={"backbone": "b"})
    att_a = make_attribute("a", noise=0.8, n=150)
    att_b = att_a.model_copy(update={"backbone": "b"})
    frame = compare_backbones([a, b, att_a, att_b], "a", "b", n_resamples=200)
    assert list(frame["difference"]) == [0.0, 0.0]
    assert (frame["p_value"] > 0.05).all() and not frame["significant"].any()
    assert "no significant difference on 2" in frame.attrs["summary"]


def test_compare_attributes_detects_difference(make_attribute) -> None:
    good = make_attribute("good", noise=0.3, n=300, seed=5)
    bad = make_attribute("bad", noise=0.9, n=300, seed=5)
    row = compare_backbones([good, bad], "good", "bad", n_resamples=200).iloc[0]
    assert row["metric"] == "mA" and row["p_value"] < 0.05 and row["difference"] > 0


def test_compare_refuses_bad_pairs(make_retrieval) -> None:
    results = [make_retrieval("a", "t1", n=100), make_retrieval("b", "t1", n=120)]
    with pytest.raises(ConfigError, match="100 vs 120 per-query scores"):
        compare_backbones(results, "a", "b")
    with pytest.raises(ConfigError, match="unknown backbone 'zz'; known backbones: a, b"):
        compare_backbones(results, "a", "zz")
    with pytest.raises(ConfigError, match="share no"):
        compare_backbones([make_retrieval("a", "t1"), make_retrieval("b", "t2")], "a", "b")

"""Aggregation: columns, grouping, average rank (checked by hand), cost columns, dagger, filters, bad input."""

from __future__ import annotations

import math

import pytest

from plipbench.errors import ConfigError
from plipbench.leaderboard import build_leaderboard


def _three_by_three(make_plain):
    # t1: B and C tie (1.5 each), A third; t2: A 1, B 2, C missing; t3: A 1, B 2, C 3.
    table = {"A": (0.50, 0.90, 0.30), "B": (0.60, 0.10, 0.20), "C": (0.60, None, 0.10)}
    results = []
    for backbone, scores in table.items():
        for task, score in zip(("t1", "t2", "t3"), scores, strict=True):
            if score is not None:
                results.append(make_plain(backbone, task, score))
    return results


def test_average_rank_matches_hand_computation(make_plain) -> None:
    board = build_leaderboard(_three_by_three(make_plain))
    expected = {"A": (3 + 1 + 1) / 3, "B": (1.5 + 2 + 2) / 3, "C": (1.5 + 3) / 2}
    for backbone, rank in expected.items():
        assert board.average_rank[backbone] == pytest.approx(rank)
    assert board.backbones == ["A", "B", "C"]  # sorted by average rank
    md = board.to_markdown()
    assert "| A | 50.0 | 90.0 | 30.0 | 1.67 |" in md
    assert "| C | 60.0 |  | 10.0 | 2.25 |" in md
    assert "ties get the average rank" in md and "missing cells are left out" in md


def test_columns_grouped_by_family_then_protocol(make_plain) -> None:
    results = [
        make_plain("A", "pa100k", 0.8, family="attributes", protocol="linear-probe", main="mA"),
        make_plain("A", "market1501", 0.7, family="image-reid", protocol="fine-tune", main="mAP"),
        make_plain("A", "market1501", 0.4, family="image-reid", protocol="zero-shot", main="mAP"),
        make_plain("A", "cuhk-pedes", 0.5123, family="text-reid", protocol="zero-shot"),
        make_plain("A", "synth2market", 0.3, family="domain-generalization", protocol="zero-shot", main="mAP"),
    ]
    board = build_leaderboard(results)
    assert [c.id for c in board.columns] == [
        "text-reid/zero-shot/cuhk-pedes", "image-reid/zero-shot/market1501", "image-reid/fine-tune/market1501",
        "attributes/linear-probe/pa100k", "domain-generalization/zero-shot/synth2market",
    ]
    header = board.to_markdown().splitlines()[2]
    assert header.index("text-reid · zero-shot") < header.index("image-reid · zero-shot") \
        < header.index("image-reid · fine-tune") < header.index("attributes · linear-probe")
    assert "51.2" in board.to_markdown()  # percent, one decimal


def test_cost_columns_and_blank_when_unknown(make_plain) -> None:
    results = [
        make_plain("A", "t1", 0.5, params=102_000_000, images_per_second=300.0, pretraining_seconds=7200),
        make_plain("A", "t2", 0.5, images_per_second=500.0),
        make_plain("A", "t3", 0.5, images_per_second=200.0),
        make_plain("B", "t1", 0.4),
    ]
    board = build_leaderboard(results)
    assert board.costs.at["A", "parameters"] == 102_000_000
    assert board.costs.at["A", "images_per_second"] == 300.0  # median over tasks
    assert board.costs.at["A", "pretraining_hours"] == pytest.approx(2.0)
    assert all(math.isnan(v) for v in board.costs.loc["B"])
    view = board.views()[0]
    row_a = next(r for r in view.rows if r[0] == "A")
    row_b = next(r for r in view.rows if r[0] == "B")
    assert row_a[-3:] == ["102.0M", "300.0", "2.0 h"]
    assert row_b[-3:] == ["", "", ""]


def test_dagger_marks_zero_shot_that_saw_training_data(make_plain) -> None:
    results = [make_plain("A", "t1", 0.5, saw=True), make_plain("B", "t1", 0.4),
               make_plain("A", "t2", 0.5, saw=True, protocol="fine-tune")]
    board = build_leaderboard(results)
    md = board.to_markdown()
    assert "| A | 50.0† |" in md
    assert "| B | 40.0 |" in md
    assert "50.0†" in md and md.count("50.0†") == 1  # the fine-tune cell is not marked
    assert "not truly zero-shot" in md
    clean = build_leaderboard([make_plain("B", "t1", 0.4)]).to_markdown()
    assert "†" not in clean


def test_paper_compatible_cells_are_marked(make_plain) -> None:
    selected_on_test = make_plain("A", "t1", 0.5, protocol="fine-tune")
    selected_on_test.details["paper_compatible"] = True
    selected_on_test.provenance.selection_split = "test"
    board = build_leaderboard([selected_on_test, make_plain("B", "t1", 0.4, protocol="fine-tune")])
    md = board.to_markdown()
    assert "| A | 50.0§ |" in md and "| B | 40.0 |" in md
    assert "selected on the test split" in md
    assert "§" not in build_leaderboard([make_plain("B", "t1", 0.4, protocol="fine-tune")]).to_markdown()


def test_short_runs_are_marked_with_their_overrides(make_plain) -> None:
    """A recipe run with fewer epochs than the reference (details.short_run) gets ° and a footnote naming the recipe
    and its overrides; a full recipe run and a run without a recipe get neither."""
    short = make_plain("A", "t1", 0.5, protocol="fine-tune")
    short.details.update(short_run=True, recipe={"name": "bot", "overrides": {"warmup_epochs": 0, "epochs": 2}})
    full = make_plain("B", "t1", 0.4, protocol="fine-tune")
    full.details.update(short_run=False, recipe={"name": "bot", "overrides": {}})
    md = build_leaderboard([short, full, make_plain("C", "t1", 0.3, protocol="fine-tune")]).to_markdown()
    assert "| A | 50.0° |" in md and "| B | 40.0 |" in md and "| C | 30.0 |" in md
    assert "° short run" in md and "bot (epochs=2, warmup_epochs=0)" in md
    assert "°" not in build_leaderboard([full]).to_markdown()


def test_filters_and_bad_input(make_plain) -> None:
    results = [make_plain("A", "t1", 0.5), make_plain("A", "t2", 0.6, protocol="fine-tune")]
    assert [c.task for c in build_leaderboard(results, protocol="fine-tune").columns] == ["t2"]
    with pytest.raises(ConfigError, match="available: fine-tune, zero-shot"):
        build_leaderboard(results, protocol="few-shot")
    with pytest.raises(ConfigError, match="two results for backbone 'A'"):
        build_leaderboard([make_plain("A", "t1", 0.5), make_plain("A", "t1", 0.6)])
    with pytest.raises(ConfigError, match="no results"):
        build_leaderboard([])

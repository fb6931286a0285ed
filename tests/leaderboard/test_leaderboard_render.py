"""Every output format: Markdown, CSV, JSON, rich table, self-contained HTML with plots."""

from __future__ import annotations

import base64
import io
import json
import re

import pandas as pd
import pytest
from rich.console import Console

from plipbench.leaderboard import build_leaderboard


def _results(make_retrieval, make_attribute, per_attribute: bool = True):
    return [
        make_retrieval("plip", "cuhk-pedes", hit_rate=0.7, saw=True, params=102e6, seed=0),
        make_retrieval("clip", "cuhk-pedes", hit_rate=0.5, seed=1),
        make_retrieval("plip", "market1501", family="image-reid", main="mAP", hit_rate=0.6, seed=2),
        make_attribute("plip", noise=0.7, per_attribute=per_attribute),
        make_attribute("clip", noise=0.9, seed=3, per_attribute=per_attribute),
    ]


def test_csv_percent_one_decimal_with_ci_bounds(make_retrieval, make_attribute) -> None:
    results = _results(make_retrieval, make_attribute)
    board = build_leaderboard(results, with_ci=True, n_resamples=200)
    frame = pd.read_csv(io.StringIO(board.to_csv()))
    col = "text-reid/zero-shot/cuhk-pedes R@1"
    plip = frame[frame["backbone"] == "plip"].iloc[0]
    assert plip[col] == round(100 * results[0].scores["R@1"], 1)
    assert plip[f"{col} low"] <= plip[col] <= plip[f"{col} high"]
    assert plip["not_truly_zero_shot"] == "text-reid/zero-shot/cuhk-pedes"
    assert plip["parameters"] == 102e6
    assert list(frame["backbone"]) == board.backbones
    assert "low" not in build_leaderboard(results).to_csv()


def test_json_structure(make_retrieval, make_attribute) -> None:
    results = _results(make_retrieval, make_attribute)
    data = json.loads(build_leaderboard(results, with_ci=True, n_resamples=200).to_json())
    assert [c["id"] for c in data["columns"]][0] == "text-reid/zero-shot/cuhk-pedes"
    cell = data["rows"][0]["cells"]["text-reid/zero-shot/cuhk-pedes"]
    assert cell["score"] == round(100 * cell["fraction"], 1)
    assert cell["low"] <= cell["score"] <= cell["high"]
    assert cell["not_truly_zero_shot"] is True
    assert data["ci"]["n_resamples"] == 200
    assert any("Avg rank" in note for note in data["footnotes"])


def test_rich_table_renders(make_retrieval, make_attribute) -> None:
    board = build_leaderboard(_results(make_retrieval, make_attribute))
    console = Console(record=True, width=220, file=io.StringIO())
    console.print(board.rich_table())
    text = console.export_text()
    assert "text-reid · zero-shot" in text and "attributes · linear-probe" in text
    assert "avg rank" in text and "102.0M" in text
    assert f"{100 * board.scores.at['plip', 'text-reid/zero-shot/cuhk-pedes']:.1f}†" in text


def test_html_is_self_contained_with_plots(make_retrieval, make_attribute) -> None:
    board = build_leaderboard(_results(make_retrieval, make_attribute), with_ci=True, n_resamples=100)
    page = board.to_html()
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    assert not re.search(r"https?://", page)
    assert "<link" not in page and "<script" not in page
    uris = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(uris) == 3 + 1  # one per task column, plus the per-attribute breakdown
    assert all(base64.b64decode(u).startswith(b"\x89PNG") for u in uris)
    assert "per-attribute mA" in page and "text-reid · zero-shot" in page


def test_html_plots_the_fine_tune_curves(make_retrieval, make_attribute) -> None:
    results = _results(make_retrieval, make_attribute, per_attribute=False)
    for result, val in zip(results[3:], ([0.5, 0.6], [None, None]), strict=True):
        result.details["curve"] = [{"epoch": e + 1, "loss": {"id": 2.0 - e, "triplet": 0.5}, "lr": 1e-4}
                                   | ({"val": v} if v is not None else {}) for e, v in enumerate(val)]
    board = build_leaderboard(results)
    assert set(board.curves) == {board.columns[-1].id} and set(board.curves[board.columns[-1].id]) == {"plip", "clip"}
    page = board.to_html()
    assert page.count("data:image/png;base64,") == 3 + 1 and "training curve per epoch" in page
    results[3].details["curve"] = [{"epoch": "one", "loss": "broken"}]  # malformed: no plot, no crash
    results[4].details.pop("curve")
    assert "training curve" not in build_leaderboard(results).to_html()


def test_html_without_per_attribute_details(make_retrieval, make_attribute) -> None:
    board = build_leaderboard(_results(make_retrieval, make_attribute, per_attribute=False))
    page = board.to_html()
    assert page.count("data:image/png;base64,") == 3
    assert "per-attribute mA" not in page


def test_html_breaks_parsing_cells_down_per_class(make_plain) -> None:
    results = []
    for backbone, seed, arm in (("plip", 0, 0.6), ("plip", 1, 0.4), ("clip", 0, 0.2)):
        r = make_plain(backbone, "synth-lip", 0.3, family="parsing", protocol="linear-probe", main="mIoU")
        r.seed = seed
        r.details["per_class_iou"] = {"Background": 0.9, "Left-arm": arm}
        results.append(r)
    board = build_leaderboard(results)
    column = board.columns[0]
    assert board.per_class_iou[column.id]["plip"] == pytest.approx({"Background": 0.9, "Left-arm": 0.5})
    page = board.to_html()
    assert "Per-class IoU" in page and "IoU per class" in page
    assert "<tr><td>Left-arm</td><td><b>50.0</b></td><td>20.0</td></tr>" in page.replace("\n", "") or \
        "<tr><td>Left-arm</td><td>20.0</td><td><b>50.0</b></td></tr>" in page.replace("\n", "")
    assert "Per-class IoU" not in build_leaderboard([make_plain("x", "toy", 0.4)]).to_html()

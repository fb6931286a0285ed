"""The PLIP paper's reported numbers: transcription spot checks, labelling, beside vs alone, name mapping."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from plipbench.leaderboard import build_leaderboard, reference_results
from plipbench.leaderboard.reference import REFERENCE_LABEL, paper_task_of_name

BRIEF = Path("/work/shared/reference/plip-paper-and-code.md")


def _value(frame, **where) -> float:
    mask = True
    for key, value in where.items():
        mask = mask & (frame[key] == value)
    hits = frame[mask]
    assert len(hits) == 1, (where, hits)
    return float(hits["value"].iloc[0])


def test_spot_check_values_read_from_the_brief() -> None:
    frame = reference_results("plip-paper")
    # Tab. 1 (brief 4.1)
    assert _value(frame, table="Tab. 1", pretraining="PLIP", backbone="RN50", paper_task="cuhk-pedes",
                  metric="R@1") == 71.13
    assert _value(frame, table="Tab. 1", pretraining="PLIP", backbone="Swin-B", paper_task="icfg-pedes",
                  metric="R@10") == 88.94
    assert _value(frame, table="Tab. 1", pretraining="SOLIDER", backbone="Swin-B", paper_task="pa100k",
                  metric="mA") == 85.91
    assert _value(frame, table="Tab. 1", pretraining="LUP", backbone="RN152", paper_task="dukemtmc",
                  metric="mAP") == 83.7
    assert _value(frame, table="Tab. 1", pretraining="MoCov3", backbone="RN50", paper_task="pascal-person-part",
                  metric="mIoU") == 69.16
    # Tab. 2 (brief 4.2)
    assert _value(frame, table="Tab. 2", protocol="zero-shot", paper_task="cuhk-pedes", metric="R@1") == 52.86
    assert _value(frame, table="Tab. 2", protocol="linear-probe", paper_task="icfg-pedes", metric="R@10") == 84.24
    assert _value(frame, table="Tab. 2", method="LGUR", paper_task="icfg-pedes", metric="R@5") == 74.97
    # Tab. 3 (brief 4.3)
    assert _value(frame, table="Tab. 3", method="PLIP", paper_task="icfg-pedes->cuhk-pedes", metric="R@10") == 84.49
    assert _value(frame, table="Tab. 3", method="RaSa", paper_task="cuhk-pedes->icfg-pedes", metric="R@1") == 50.59
    # Tab. 18 (brief 4.2, second table)
    assert _value(frame, table="Tab. 18", method="BLIP2 (stage 1)", paper_task="market1501", metric="R@10") == 93.3
    assert _value(frame, table="Tab. 18", method="PLIP", backbone="Swin-B", paper_task="cuhk-pedes",
                  metric="R@1") == 56.3
    # cells printed as "-" are absent
    assert frame[(frame["table"] == "Tab. 1") & (frame["pretraining"] == "BLIP")]["paper_task"].nunique() == 4
    assert frame.groupby("table").size().to_dict() == {"Tab. 1": 250, "Tab. 2": 24, "Tab. 3": 24, "Tab. 18": 36}
    assert set(frame["label"]) == {REFERENCE_LABEL}


@pytest.mark.skipif(not BRIEF.is_file(), reason="the reference brief is not on this machine")
def test_every_value_appears_in_the_brief_section() -> None:
    text = BRIEF.read_text(encoding="utf-8")
    section = text[text.index("### 4.1"):text.index("### 4.4")]
    printed = {float(x) for x in re.findall(r"\d+\.\d+", section)}
    frame = reference_results("plip-paper")
    missing = [v for v in frame["value"] if v not in printed]
    assert not missing


def test_paper_task_mapping() -> None:
    assert paper_task_of_name("CUHK-PEDES") == "cuhk-pedes"
    assert paper_task_of_name("cuhk-sysu") == "cuhk-sysu"
    assert paper_task_of_name("Market-1501") == "market1501"
    assert paper_task_of_name("dukemtmc-reid") == "dukemtmc"
    assert paper_task_of_name("PA-100K") == "pa100k"
    assert paper_task_of_name("cuhk2icfg") == "cuhk-pedes->icfg-pedes"
    assert paper_task_of_name("icfg-pedes->cuhk-pedes") == "icfg-pedes->cuhk-pedes"
    assert paper_task_of_name("synthetic-toy") is None


def test_reference_beside_matching_columns(make_plain) -> None:
    results = [make_plain("mine", "cuhk-pedes", 0.5), make_plain("mine", "toy", 0.4)]
    board = build_leaderboard(results, reference="plip-paper")
    md = board.to_markdown()
    assert "| PLIP RN50 (Tab. 2, paper) ‡ | 52.86 |  |" in md
    assert "CLIP RN50 on SYNTH-PEDES (Tab. 18, paper) ‡ | 38.1 |" in md
    assert REFERENCE_LABEL in md
    assert board.average_rank.index.tolist() == ["mine"]  # reference rows are not ranked
    csv = board.to_csv()
    assert f'"PLIP RN50 (Tab. 2, paper)",{REFERENCE_LABEL}' in csv.replace(f'"{REFERENCE_LABEL}"', REFERENCE_LABEL)
    assert REFERENCE_LABEL in board.to_json() and REFERENCE_LABEL in board.to_html()


def test_reference_alone_when_nothing_matches(make_plain) -> None:
    board = build_leaderboard([make_plain("mine", "toy", 0.4)], reference="plip-paper")
    assert board.reference_beside is None
    md = board.to_markdown()
    for table in ("Tab. 1", "Tab. 2", "Tab. 3", "Tab. 18"):
        assert f"### {table}: {REFERENCE_LABEL}" in md
    assert "| PLIP Swin-B + CMPM/C (Tab. 1, paper) | 75.36 | 94.87 |" in md
    only = build_leaderboard([], reference="plip-paper")
    assert only.backbones == [] and "Tab. 18" in only.to_markdown()
    assert only.to_csv().startswith("table,section,dataset")

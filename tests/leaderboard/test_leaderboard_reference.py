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


HUMAN_BRIEF = Path("/work/shared/reference/more-tasks.md")


def test_human_centric_spot_checks_and_labels() -> None:
    from plipbench.leaderboard.reference import REFERENCE_LABELS

    frame = reference_results("human-centric")
    assert _value(frame, pretraining="SOLIDER", backbone="Swin-B", paper_task="lip", metric="mIoU") == 60.50
    assert _value(frame, table="SOLIDER-HumanParsing README", backbone="Swin-T", paper_task="lip") == 57.41
    assert _value(frame, method="SCHP", backbone="RN101", paper_task="pascal-person-part") == 71.46
    assert _value(frame, method="SeqNet + CBGM", paper_task="prw", metric="R@1") == 87.6
    assert _value(frame, method="GLCNet", pretraining="PLIP", backbone="Swin-B", paper_task="cuhk-sysu",
                  metric="mAP") == 96.6
    assert _value(frame, pretraining="SOLIDER", backbone="Swin-S", paper_task="prw", metric="mAP") == 59.84
    assert _value(frame, method="TransReID*", paper_task="occluded-duke", metric="R@1") == 67.4
    assert _value(frame, pretraining="ImageNet", paper_task="rap-zs", metric="mA") == 71.76
    assert _value(frame, pretraining="SOLIDER", backbone="Swin-T", paper_task="peta-zs", metric="mA") == 74.37
    # every number is a full fine-tune, each row names a source, and the label is not the PLIP paper's
    assert set(frame["protocol"]) == {"fine-tune"}
    assert frame["source"].str.len().min() > 0
    assert set(frame["label"]) == {REFERENCE_LABELS["human-centric"]} != {REFERENCE_LABEL}
    assert set(frame["paper_task"]) == {"lip", "pascal-person-part", "cuhk-sysu", "prw", "occluded-duke", "peta-zs",
                                        "rap-zs"}
    # the brief's third-party "OIM-head SeqNet" row and the unread PATH numbers are left out
    assert not frame["method"].str.contains("OIM-head").any()
    assert not frame["pretraining"].str.contains("PATH").any()
    assert "SOLIDER Swin-B + SCHP (SOLIDER README, reported)" in set(frame["row_label"])


@pytest.mark.skipif(not HUMAN_BRIEF.is_file(), reason="the reference brief is not on this machine")
def test_every_human_centric_value_appears_in_its_brief_section() -> None:
    text = HUMAN_BRIEF.read_text(encoding="utf-8")
    sections = {"1.7": ("### 1.7", "## 2."), "2.4": ("### 2.4", "## 3."), "3": ("## 3.", "## 4."),
                "4.4": ("### 4.4", "## 5.")}
    frame = reference_results("human-centric")
    for section, (start, end) in sections.items():
        part = text[text.index(start):text.index(end, text.index(start))]
        printed = {float(x) for x in re.findall(r"\d+\.\d+", part)}
        values = frame[frame["section"] == section]["value"]
        assert len(values) and not [v for v in values if v not in printed], section


def test_new_task_names_map() -> None:
    assert paper_task_of_name("occluded-duke") == "occluded-duke"
    assert paper_task_of_name("synth-occluded-duke") is None
    assert paper_task_of_name("PETA_ZS") == "peta-zs" and paper_task_of_name("peta") == "peta"
    assert paper_task_of_name("RAP_ZS") == "rap-zs"
    assert paper_task_of_name("PASCAL-Person-Part") == "pascal-person-part"
    assert paper_task_of_name("CUHK-SYSU") == "cuhk-sysu" and paper_task_of_name("prw") == "prw"


def test_human_centric_beside_parsing_and_occluded_columns(make_plain) -> None:
    from plipbench.leaderboard.reference import REFERENCE_LABELS

    results = [make_plain("mine", "lip", 0.3, family="parsing", protocol="fine-tune", main="mIoU"),
               make_plain("mine", "occluded-duke", 0.4, family="image-reid", protocol="fine-tune", main="mAP"),
               make_plain("mine", "cuhk-sysu", 0.5, family="person-search", protocol="gt-boxes", main="mAP")]
    board = build_leaderboard(results, reference="human-centric")
    md = board.to_markdown()
    lip = next(c for c in board.columns if c.task == "lip")
    duke = next(c for c in board.columns if c.task == "occluded-duke")
    assert board.reference_beside.at["SOLIDER Swin-B + SCHP (SOLIDER README, reported)", lip.id] == 60.50
    assert board.reference_beside.at["ImageNet ViT-B + TransReID baseline (TransReID README, reported)",
                                     duke.id] == 53.8
    assert "SOLIDER Swin-B + SCHP (SOLIDER README, reported) ‡" in md and REFERENCE_LABELS["human-centric"] in md
    assert REFERENCE_LABEL not in md
    # the oracle-box person search is not the published end-to-end protocol: nothing beside it
    column = next(c for c in board.columns if c.task == "cuhk-sysu")
    assert board.reference_beside[column.id].isna().all()
    assert REFERENCE_LABELS["human-centric"] in board.to_csv() and REFERENCE_LABELS["human-centric"] in board.to_html()

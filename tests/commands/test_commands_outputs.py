"""Commands check their outputs before the work, and render partial frames (skipped rows) without crashing."""

from __future__ import annotations

import pandas as pd
import pytest

from plipbench.cli import main


@pytest.fixture
def no_evaluate(monkeypatch):
    """Replace the evaluation by a recorder: a refused output must be refused before any compute."""
    import plipbench.evaluation.runner as runner
    import plipbench.models as models
    import plipbench.models.checks as checks

    calls: list[dict] = []
    monkeypatch.setattr(models, "create_backbone", lambda spec, **kwargs: f"backbone {spec}")
    monkeypatch.setattr(checks, "verify_embedding_size", lambda backbone: None)

    def fake(*args, **kwargs):
        calls.append(kwargs)
        return pd.DataFrame([
            {"backbone": "osnet", "task": "tiny-image", "protocol": "zero-shot", "status": "done",
             "main_score": "mAP", "score": 0.5, "scores": {"mAP": 0.5}, "path": "x.json", "reason": None,
             "seconds": 1.0},
            {"backbone": "osnet", "task": "tiny-text", "protocol": "zero-shot", "status": "skipped",
             "main_score": None, "score": None, "scores": None, "path": None,
             "reason": "backbone osnet has no text encoder", "seconds": 0.0},
        ])

    monkeypatch.setattr(runner, "evaluate", fake)
    return calls


def test_eval_table_with_a_skipped_row_renders(no_evaluate, tmp_path, monkeypatch, capsys) -> None:
    # pandas 3 stores the skipped row's missing main_score as NaN, which is truthy: `or "-"` kept it
    monkeypatch.setenv("PLIPBENCH_CACHE", str(tmp_path / "cache"))
    assert main(["eval", "--suite", "mini", "--model", "osnet", "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "skipped tiny-text (zero-shot): backbone osnet has no text encoder" in out
    assert "nan" not in out
    assert len(no_evaluate) == 1


def test_eval_refuses_out_naming_a_file_before_any_compute(no_evaluate, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("PLIPBENCH_CACHE", str(tmp_path / "cache"))
    (tmp_path / "out").write_text("a file")
    assert main(["eval", "--task", "tiny-image", "--model", "osnet", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"error: results folder (--out) {tmp_path / 'out'} is a file, not a folder"
    assert no_evaluate == []


def test_eval_refuses_an_unwritable_cache_before_any_compute(no_evaluate, tmp_path, monkeypatch, capsys) -> None:
    (tmp_path / "cache").write_text("a file where the cache folder should be")
    monkeypatch.setenv("PLIPBENCH_CACHE", str(tmp_path / "cache"))
    assert main(["eval", "--task", "tiny-image", "--model", "osnet", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "cache folder ($PLIPBENCH_CACHE)" in err and err.count("\n") == 1
    assert no_evaluate == []
    assert not (tmp_path / "out").exists()


def test_eval_refuses_a_read_only_results_folder(no_evaluate, tmp_path, monkeypatch, capsys) -> None:
    import errno
    import tempfile

    monkeypatch.setenv("PLIPBENCH_CACHE", str(tmp_path / "cache"))

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    assert main(["eval", "--task", "tiny-image", "--model", "osnet", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: results folder (--out) {tmp_path / 'out'} is not writable")
    assert err.strip().endswith("read-only file system")
    assert no_evaluate == []


def test_pretrain_refuses_out_naming_a_file_before_training(tmp_path, monkeypatch, capsys) -> None:
    import plipbench.pretrain.trainer as trainer

    monkeypatch.setattr(trainer, "pretrain", lambda *a, **k: pytest.fail("trained into an unwritable folder"))
    (tmp_path / "run").write_text("x")
    assert main(["pretrain", "--config", "mini", "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    assert capsys.readouterr().err.strip() == f"error: run folder (--out) {tmp_path / 'run'} is a file, not a folder"


def test_data_synth_refuses_out_naming_a_file(tmp_path, capsys) -> None:
    (tmp_path / "market").write_text("x")
    assert main(["data", "synth", "--preset", "synth-market", "--out", str(tmp_path / "market")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


def test_leaderboard_refuses_out_in_a_missing_file_path(tmp_path, capsys) -> None:
    (tmp_path / "notes").write_text("x")
    out = tmp_path / "notes" / "board.md"
    assert main(["leaderboard", "--reference", "plip-paper", "--format", "md", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"error: --out {out}: {tmp_path / 'notes'} is a file, not a folder"


def test_eval_table_shows_markup_in_names_as_text(no_evaluate, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("PLIPBENCH_CACHE", str(tmp_path / "cache"))
    args = ["eval", "--suite", "mini", "--model", "osnet", "--name", "x[/]", "--out", str(tmp_path / "out")]
    import plipbench.evaluation.runner as runner

    fake = runner.evaluate

    def named(*a, **k):
        frame = fake(*a, **k)
        frame["backbone"] = k["name"]
        frame["reason"] = frame["reason"].astype(object).where(frame["status"] != "skipped", "data at [/data]")
        return frame

    monkeypatch.setattr(runner, "evaluate", named)
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "x[/]" in out and "data at [/data]" in out

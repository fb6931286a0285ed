from __future__ import annotations

import json

import pytest

from plipbench.io import atomic_write, atomic_write_json


def test_atomic_write_replaces_whole_file(tmp_path) -> None:
    target = tmp_path / "sub" / "result.json"
    atomic_write_json(target, {"a": 1})
    assert json.loads(target.read_text()) == {"a": 1}
    atomic_write_json(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 2}
    assert [p.name for p in target.parent.iterdir()] == ["result.json"]


def test_failed_write_keeps_previous_file_and_leaves_no_temp(tmp_path) -> None:
    target = tmp_path / "result.json"
    atomic_write_json(target, {"ok": True})

    def explode(fh) -> None:
        fh.write(b'{"half": ')
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, explode)
    assert json.loads(target.read_text()) == {"ok": True}
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]

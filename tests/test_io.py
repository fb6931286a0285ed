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


# -- modes follow the umask (D12) -----------------------------------------------------------------
@pytest.fixture
def umask(monkeypatch):
    """Run under a given umask; plipbench.io reads the umask once, so forget what it read."""
    import os

    import plipbench.io as io_module

    previous = os.umask(0o022)
    os.umask(previous)

    def set_umask(mask: int) -> None:
        os.umask(mask)
        monkeypatch.setattr(io_module, "_umask", None)

    yield set_umask
    os.umask(previous)
    io_module._umask = None


@pytest.mark.parametrize(("mask", "file_mode", "dir_mode"), [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700),
                                                             (0o002, 0o664, 0o775)],
                         ids=["umask-022", "umask-077", "umask-002"])
def test_atomic_write_and_temp_dirs_respect_the_umask(tmp_path, umask, mask, file_mode, dir_mode) -> None:
    from plipbench.io import make_temp_dir

    umask(mask)
    target = atomic_write_json(tmp_path / "results" / "r.json", {"a": 1})
    assert target.stat().st_mode & 0o777 == file_mode
    folder = make_temp_dir(".model.", tmp_path)
    assert folder.stat().st_mode & 0o777 == dir_mode
    assert folder.name.startswith(".model.") and folder.name.endswith(".tmp")


def test_current_umask_restores_the_umask(umask) -> None:
    import os

    from plipbench.io import current_umask

    umask(0o027)
    assert current_umask() == 0o027
    assert os.umask(0o027) == 0o027  # still in force


def test_published_checkpoint_folder_respects_the_umask(tmp_path, umask) -> None:
    from plipbench.models.plip.checkpoint import save_plip_checkpoint
    from plipbench.models.plip.model import PlipModel, named_config

    umask(0o022)
    model = PlipModel(named_config("plip-mini"), vocab_size=64)
    directory = save_plip_checkpoint(model, tmp_path / "model")
    assert directory.stat().st_mode & 0o777 == 0o755
    assert all(p.stat().st_mode & 0o777 == 0o644 for p in directory.iterdir() if p.is_file())


# -- write failures are one clear error, nothing partial (D6) --------------------------------------
def _full_disk(monkeypatch) -> None:
    """Every atomic write lands on /dev/full: writes fail with ENOSPC, as on a full disk."""
    import os

    import plipbench.io as io_module

    real_fdopen = os.fdopen

    def fdopen(fd, mode="r", *args, **kwargs):
        os.close(fd)
        return real_fdopen(os.open("/dev/full", os.O_WRONLY), mode, *args, **kwargs)

    monkeypatch.setattr(io_module.os, "fdopen", fdopen)


@pytest.mark.skipif(not __import__("os").path.exists("/dev/full"), reason="needs /dev/full")
def test_full_disk_is_an_output_error_naming_the_file(tmp_path, monkeypatch) -> None:
    from plipbench.errors import OutputError

    _full_disk(monkeypatch)
    with pytest.raises(OutputError, match=r"cannot write .*big\.bin: no space left on device") as info:
        atomic_write(tmp_path / "big.bin", lambda fh: fh.write(b"x" * 1_000_000))
    assert info.value.errno == 28
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not __import__("os").path.exists("/dev/full"), reason="needs /dev/full")
def test_torch_save_on_a_full_disk_is_one_line_and_leaves_no_file(tmp_path, monkeypatch) -> None:
    import torch

    from plipbench.errors import OutputError
    from plipbench.io import atomic_torch_save

    _full_disk(monkeypatch)
    with pytest.raises(OutputError) as info:
        atomic_torch_save({"w": torch.zeros(100_000)}, tmp_path / "step-00000004.pt")
    message = str(info.value)
    assert message.startswith(f"cannot write checkpoint {tmp_path / 'step-00000004.pt'}: no space left")
    assert "\n" not in message and "inline_container" not in message
    assert list(tmp_path.iterdir()) == []


def test_ensure_writable_dir_refuses_a_file_and_creates_nothing(tmp_path) -> None:
    from plipbench.errors import OutputError
    from plipbench.io import ensure_writable_dir, ensure_writable_file

    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(OutputError, match="notes.txt is a file, not a folder"):
        ensure_writable_dir(tmp_path / "notes.txt")
    with pytest.raises(OutputError, match="notes.txt is a file, not a folder"):
        ensure_writable_dir(tmp_path / "notes.txt" / "sub")
    with pytest.raises(OutputError, match="is a folder, not a file"):
        ensure_writable_file(tmp_path)
    assert ensure_writable_dir(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]  # nothing created, no probe left


@pytest.mark.parametrize(("code", "reason"), [(13, "permission denied"), (30, "read-only file system")],
                         ids=["EACCES", "EROFS"])
def test_ensure_writable_dir_refuses_an_unwritable_folder(tmp_path, monkeypatch, code, reason) -> None:
    import os
    import tempfile

    from plipbench.errors import OutputError
    from plipbench.io import ensure_writable_dir

    def refuse(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(OutputError, match=f"results folder {tmp_path / 'out'} is not writable .*: {reason}"):
        ensure_writable_dir(tmp_path / "out", "results folder")


@pytest.mark.skipif(__import__("os").geteuid() == 0, reason="root writes into read-only folders")
def test_ensure_writable_dir_refuses_a_read_only_folder(tmp_path) -> None:
    from plipbench.errors import OutputError
    from plipbench.io import ensure_writable_dir

    tmp_path.chmod(0o555)
    try:
        with pytest.raises(OutputError, match="permission denied"):
            ensure_writable_dir(tmp_path)
    finally:
        tmp_path.chmod(0o755)


# -- stale temporary files (D20) ------------------------------------------------------------------
def test_sweep_temp_files_removes_only_interrupted_writes(tmp_path) -> None:
    import os
    import time

    from plipbench.io import make_temp_dir, sweep_temp_files

    (tmp_path / ".step-00000004.pt.k2j3.tmp").write_bytes(b"half")
    make_temp_dir(".model.", tmp_path)
    (tmp_path / "step-00000002.pt").write_bytes(b"whole")
    (tmp_path / "notes.tmp").write_text("not hidden: a user's file")
    fresh = tmp_path / ".step-00000006.pt.abcd.tmp"
    fresh.write_bytes(b"being written")
    old = time.time() - 3600
    for p in tmp_path.iterdir():
        if p != fresh:
            os.utime(p, (old, old))
    removed = sweep_temp_files(tmp_path, older_than_s=60)
    assert len(removed) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [".step-00000006.pt.abcd.tmp", "notes.tmp",
                                                           "step-00000002.pt"]
    assert sweep_temp_files(tmp_path / "absent") == []


def test_data_error_survives_pickling_as_in_a_dataloader_worker() -> None:
    import pickle

    from plipbench.errors import DataError

    err = pickle.loads(pickle.dumps(DataError("/data/x.jpg", "cannot decode image")))
    assert isinstance(err, DataError) and str(err) == "/data/x.jpg: cannot decode image"
    assert err.problem == "cannot decode image"

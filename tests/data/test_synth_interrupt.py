"""``data synth`` killed, interrupted or out of disk: no orphan workers, no half-written --out, no dead end.

Issue 12 D8 (workers outlive a SIGKILLed run, its temp folder is never swept) and D9 (a half-written
``--out`` that neither a rerun nor ``--overwrite`` accepts).
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from plipbench.data.staging import TAG, staging_dir, sweep_stale
from plipbench.data.synth import generate
from plipbench.data.synth import generate as generate_module
from plipbench.errors import DataError

PLIPBENCH = Path(sys.executable).parent / "plipbench"
TINY = {"identities": 8, "images_per_id": 3, "progress": False}
MANIFEST = "plipbench_synth_manifest.json"
gen = sys.modules[generate_module.__module__]  # plipbench.data.synth.generate (the module)


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                out.append(int(entry))
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _staging(parent: Path) -> list[Path]:
    return [p for p in parent.iterdir() if TAG in p.name]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigkilled_synth_leaves_no_workers_and_no_half_written_out(tmp_path):
    out = tmp_path / "market"
    cmd = [str(PLIPBENCH), "data", "synth", "--out", str(out), "--preset", "synth-market", "--identities", "300",
           "--images-per-id", "10", "--workers", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            workers = _children(proc.pid)
            if len(workers) >= 2:
                break
            time.sleep(0.05)
        assert len(workers) >= 2, f"no workers seen; rc={proc.poll()} {proc.stderr.read() if proc.poll() else ''}"
        time.sleep(0.3)  # let them render a chunk or two
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(_alive(w) for w in workers):
            time.sleep(0.1)
        assert not [w for w in workers if _alive(w)], "workers outlived the SIGKILLed run"
    finally:
        for w in workers:  # never leak them into the machine, even when the test fails
            if _alive(w):
                os.kill(w, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
    assert not out.exists(), "a half-written --out was left behind"
    assert len(_staging(tmp_path)) == 1  # what SIGKILL left; the next run sweeps it

    done = subprocess.run([str(PLIPBENCH), "data", "synth", "--out", str(out), "--preset", "synth-market",
                           "--identities", "8", "--images-per-id", "3"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (out / MANIFEST).is_file() and _staging(tmp_path) == []


def test_sweep_removes_only_staging_of_dead_processes_of_this_host(tmp_path):
    target = tmp_path / "copy"
    mine = staging_dir(target)
    dead_pid = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True).stdout.strip()
    dead = Path(str(mine).replace(f"-{os.getpid()}-", f"-{dead_pid}-"))
    dead.mkdir()
    (dead / "half.jpg").write_bytes(b"x")
    other_host = tmp_path / f".copy{TAG}otherhost-{dead_pid}-0123abcd"
    other_host.mkdir()
    unrelated = tmp_path / ".copy.abcdefgh"
    unrelated.mkdir()
    assert sweep_stale(tmp_path) == [dead]
    assert mine.is_dir() and other_host.is_dir() and unrelated.is_dir() and not dead.exists()
    assert (mine.stat().st_mode & 0o777) == (0o777 & ~_umask())  # follows the umask, unlike mkdtemp


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_the_cache_sweeps_what_a_killed_twin_generation_left(tmp_path, monkeypatch):
    from plipbench.data.synthetic_cache import ensure_synthetic, synthetic_path

    monkeypatch.setenv("PLIPBENCH_CACHE", str(tmp_path / "cache"))
    path = synthetic_path("synth-cuhk", identities=8, images_per_id=3)
    path.parent.mkdir(parents=True)
    dead_pid = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True).stdout.strip()
    mine = staging_dir(path)
    left = Path(str(mine).replace(f"-{os.getpid()}-", f"-{dead_pid}-"))
    mine.rename(left)
    (left / "half.jpg").write_bytes(b"x")
    assert ensure_synthetic("synth-cuhk", identities=8, images_per_id=3, progress=False) == path
    assert (path / MANIFEST).is_file() and _staging(path.parent) == []


@pytest.mark.parametrize("failure", [OSError(errno.ENOSPC, "No space left on device"), KeyboardInterrupt()])
def test_failed_run_leaves_out_as_it_was(tmp_path, monkeypatch, failure):
    out = tmp_path / "out"
    generate("synth-cuhk", out, **TINY)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def fail(*args, **kwargs):
        raise failure

    monkeypatch.setattr(gen, "write_annotations", fail)
    expected = DataError if isinstance(failure, OSError) else KeyboardInterrupt
    with pytest.raises(expected, match="No space left on device" if expected is DataError else None):
        generate("synth-cuhk", out, seed=1, overwrite=True, **TINY)
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert _staging(tmp_path) == []
    fresh = tmp_path / "fresh"
    with pytest.raises(expected):
        generate("synth-cuhk", fresh, **TINY)
    assert not fresh.exists() and _staging(tmp_path) == []
    monkeypatch.undo()
    generate("synth-cuhk", fresh, **TINY)  # no dead end: the same command now works
    assert (fresh / MANIFEST).is_file()


def test_interrupted_replacement_is_recoverable(tmp_path, monkeypatch):
    out = tmp_path / "out"
    generate("synth-cuhk", out, **TINY)
    (out / "notes.txt").write_text("mine")
    real_replace = os.replace
    calls = []

    def replace_then_die(src, dst):
        if TAG in Path(src).parent.name and Path(dst).parent == out:  # moving the new copy into out
            calls.append(dst)
            if len(calls) == 2:  # after the first entry moved: killed half-way through the replacement
                raise KeyboardInterrupt
        return real_replace(src, dst)

    monkeypatch.setattr(gen.os, "replace", replace_then_die)
    with pytest.raises(KeyboardInterrupt):
        generate("synth-cuhk", out, seed=1, overwrite=True, **TINY)
    monkeypatch.undo()
    marker = json.loads((out / MANIFEST).read_text())
    assert "unfinished" in marker and "splits" not in marker  # data check will not call it valid
    generate("synth-cuhk", out, seed=1, **TINY)  # the same command finishes the job, no --overwrite needed
    assert json.loads((out / MANIFEST).read_text())["seed"] == 1
    assert (out / "notes.txt").read_text() == "mine"
    generate("synth-cuhk", out, seed=2, overwrite=True, **TINY)
    assert json.loads((out / MANIFEST).read_text())["seed"] == 2 and _staging(tmp_path) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores folder permissions")
def test_read_only_cache_is_one_data_error(tmp_path, monkeypatch):
    from plipbench.data.synthetic_cache import ensure_synthetic

    cache = tmp_path / "cache"
    (cache / "synth").mkdir(parents=True)
    monkeypatch.setenv("PLIPBENCH_CACHE", str(cache))
    (cache / "synth").chmod(0o555)
    try:
        with pytest.raises(DataError, match="cannot write the synthetic data cache"):
            ensure_synthetic("synth-cuhk", identities=8, images_per_id=3, progress=False)
    finally:
        (cache / "synth").chmod(0o755)


def test_full_disk_while_generating_a_twin_is_one_data_error(tmp_path, monkeypatch):
    from plipbench.data.synthetic_cache import ensure_synthetic

    monkeypatch.setenv("PLIPBENCH_CACHE", str(tmp_path / "cache"))

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(gen, "_write_copy", full)
    with pytest.raises(DataError, match="cannot generate the synthetic copy .No space left on device"):
        ensure_synthetic("synth-cuhk", identities=8, images_per_id=3, progress=False)
    assert _staging(tmp_path / "cache" / "synth") == []

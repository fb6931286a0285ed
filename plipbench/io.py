"""Writing outputs safely: atomic files, the umask respected, writability checked before the work starts.

- :func:`atomic_write`: a reader never sees a half-written file, and a crash keeps the old one. The
  file gets the mode a plain ``open()`` would give it (``0o666 & ~umask``), not ``mkstemp``'s 0600, so a
  lab's shared results folder or a served leaderboard stays readable.
- :func:`make_temp_dir`: a temporary sibling folder that is renamed into place when complete, with the
  mode ``mkdir`` would give it (``0o777 & ~umask``), not ``mkdtemp``'s 0700.
- :func:`ensure_writable_dir` / :func:`ensure_writable_file`: refuse an output that cannot be written
  (read-only, a file where a folder is expected, no permission) before any compute is spent.
- An OSError while writing (disk full, read-only, permission) becomes an :class:`OutputError` that names
  the file, which the CLI prints as one line; so does a failing ``torch.save`` (:func:`atomic_torch_save`).
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from plipbench.errors import OutputError, describe_os_error, one_line, output_error

TEMP_SUFFIX = ".tmp"
_umask: int | None = None
_umask_lock = threading.Lock()


def current_umask() -> int:
    """The process umask. Reading it means setting it, so it is read once (``os.umask(0)``, restored at
    once) under a lock, and remembered: another thread never creates a file under a zero umask later."""
    global _umask
    if _umask is None:
        with _umask_lock:
            if _umask is None:
                mask = os.umask(0)
                os.umask(mask)
                _umask = mask
    return _umask


def file_mode() -> int:
    """The mode of a new file as ``open()`` creates it: ``0o666 & ~umask``."""
    return 0o666 & ~current_umask()


def dir_mode() -> int:
    """The mode of a new folder as ``mkdir`` creates it: ``0o777 & ~umask``."""
    return 0o777 & ~current_umask()


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None], *, what: str = "") -> Path:
    """Call ``write(fh)`` on a temporary file next to ``path``, fsync it, then rename it over ``path``.

    The file gets mode ``0o666 & ~umask``. An OSError (disk full, read-only, no permission) raises
    :class:`~plipbench.errors.OutputError` naming ``path`` (and ``what`` it is); no temporary file is left."""
    path = Path(path)
    action = f"cannot write {what}" if what else "cannot write"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    except OSError as err:
        raise output_error(err, path, action) from err
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), file_mode())
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        raise output_error(err, path, action) from err
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    return atomic_write(path, lambda fh: fh.write(data))


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any, *, indent: int | None = 2) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=indent, sort_keys=False) + "\n")


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    """``torch.save(obj)`` to ``path`` atomically. torch reports a failed write (a full disk) as
    ``RuntimeError: [enforce fail at inline_container.cc] unexpected pos``; that becomes an
    :class:`OutputError` saying what happened, and no partial file is left."""
    import torch

    path = Path(path)

    def write(fh: BinaryIO) -> None:
        try:
            torch.save(obj, fh)
        except RuntimeError as err:
            cause = _os_error_in_chain(err)
            if cause is not None:
                raise output_error(cause, path, "cannot write checkpoint") from err
            raise OutputError(f"cannot write checkpoint {path}: torch.save failed: {one_line(str(err), 200)}") from err

    return atomic_write(path, write, what="checkpoint")


def _os_error_in_chain(err: BaseException) -> OSError | None:
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        if isinstance(current, OSError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def make_temp_dir(prefix: str, dir: str | Path) -> Path:
    """``tempfile.mkdtemp(prefix, dir=dir)`` with mode ``0o777 & ~umask`` instead of 0700: for a folder
    that is renamed into place as a published output (a checkpoint, a synthetic copy, a tokenizer)."""
    try:
        Path(dir).mkdir(parents=True, exist_ok=True)
        path = Path(tempfile.mkdtemp(prefix=prefix, suffix=TEMP_SUFFIX, dir=dir))
        os.chmod(path, dir_mode())
    except OSError as err:
        raise output_error(err, dir) from err
    return path


def ensure_writable_dir(path: str | Path, what: str = "output folder") -> Path:
    """Refuse an output folder that cannot be written, before any work: ``path`` must be a folder (or
    not exist yet, under a writable folder) where a file can be created. Creates nothing."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise OutputError(f"{what} {path} is a file, not a folder")
    _probe(_nearest_existing(path), path, what)
    return path


def ensure_writable_cache() -> Path:
    """Refuse a cache folder (``$PLIPBENCH_CACHE``) that cannot be written, before any work."""
    from plipbench.environment import CACHE_ENV, cache_root

    return ensure_writable_dir(cache_root(), f"cache folder (${CACHE_ENV})")


def ensure_writable_file(path: str | Path, what: str = "output file") -> Path:
    """Refuse an output file that cannot be written (a folder, a read-only place), before any work."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise OutputError(f"{what} {path} is a folder, not a file")
    _probe(_nearest_existing(path.parent), path, what)
    return path


def _nearest_existing(path: Path) -> Path:
    current = path.absolute()
    while not current.exists() and current != current.parent:
        current = current.parent
    return current


def _probe(existing: Path, target: Path, what: str) -> None:
    if not existing.is_dir():
        raise OutputError(f"{what} {target}: {existing} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".plipbench-write-check.", suffix=TEMP_SUFFIX, dir=existing)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        where = "" if existing == target.absolute() else f" ({existing} is not writable)"
        raise OutputError(f"{what} {target} is not writable{where}: {describe_os_error(err)}", errno=err.errno) from err


def sweep_temp_files(folder: str | Path, *, older_than_s: float = 0.0) -> list[Path]:
    """Remove what an interrupted :func:`atomic_write` left in ``folder``: hidden ``.<name>.<random>.tmp``
    files (and :func:`make_temp_dir` folders ending in ``.tmp``) not modified for ``older_than_s`` seconds.
    Returns what was removed. Call it where one process owns the folder (a training run's checkpoints)."""
    import shutil

    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    now = time.time()
    for entry in folder.iterdir():
        if not (entry.name.startswith(".") and entry.name.endswith(TEMP_SUFFIX)):
            continue
        try:
            if now - entry.lstat().st_mtime < older_than_s:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except FileNotFoundError:
            continue
        except OSError as err:
            raise output_error(err, entry, "cannot remove the stale temporary file") from err
        removed.append(entry)
    return sorted(removed)

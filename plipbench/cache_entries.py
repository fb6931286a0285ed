"""What every on-disk cache entry shares: a per-entry lock, a one-line warning for a corrupt entry,
and a sweep of the temporaries a killed writer left behind.

- ``entry_lock(path)``: a ``filelock`` next to the entry (``path`` + ``.lock``). A second process
  asking for the same entry waits, then finds it written and reuses it instead of recomputing.
- ``discard_corrupt(path, reason)``: prints ``warning: <path>: <reason>; deleted, recomputing`` on
  stderr and deletes the file; the caller then recomputes it.
- ``sweep_stale_temporaries(directory)``: ``plipbench.io.atomic_write`` writes ``.<name>.*.tmp`` next
  to the target and renames it; a SIGKILL during the write leaves it behind. Temporaries older than
  an hour are deleted (a live writer finishes a cache entry in seconds to minutes).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

STALE_TEMPORARY_SECONDS = 3600.0


def entry_lock(path: str | Path, timeout: float = -1) -> Any:
    """A ``filelock.FileLock`` guarding the cache entry ``path`` (waits forever by default)."""
    from filelock import FileLock

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path.with_name(path.name + ".lock")), timeout=timeout)


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def discard_corrupt(path: str | Path, reason: str) -> None:
    """Report a corrupt cache entry in one line and delete it, so that it is recomputed."""
    first = (str(reason).strip().splitlines() or [""])[0][:200]
    warn(f"{path}: corrupt cache entry ({first}); deleted, recomputing")
    Path(path).unlink(missing_ok=True)


def sweep_stale_temporaries(directory: str | Path, max_age_seconds: float = STALE_TEMPORARY_SECONDS) -> list[Path]:
    """Delete ``.*.tmp`` files in ``directory`` older than ``max_age_seconds``; returns what was deleted."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    now = time.time()
    removed = []
    for tmp in directory.glob(".*.tmp"):
        try:
            if tmp.is_file() and now - tmp.stat().st_mtime > max_age_seconds:
                tmp.unlink()
                removed.append(tmp)
        except OSError:  # another process swept or renamed it first
            continue
    return removed

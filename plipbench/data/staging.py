"""Build a folder under a temporary sibling name, rename it into place, and sweep what killed runs left.

``staging_dir(target)`` creates the empty folder ``.<target name>.plipbench-tmp-<host>-<pid>-<random>``
next to ``target``. The writer fills it and renames it onto ``target`` when complete, so ``target``
is never half-written. A run killed by SIGKILL (or a power cut) cannot clean up after itself; the
next run calls :func:`sweep_stale` on the parent folder, which removes every staging folder whose
process, on this host, no longer exists. Folders of live processes, of other hosts (a cache on a
shared file system) and of anything that does not carry the tag are never touched.

The folder is made with ``os.mkdir``, so its mode follows the umask like any folder the user creates
(``tempfile.mkdtemp`` would make it 0700, and the renamed copy unreadable to the rest of a lab).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
from pathlib import Path

TAG = ".plipbench-tmp-"
_STAGING = re.compile(r"^\..+\.plipbench-tmp-(?P<host>[A-Za-z0-9_.]+)-(?P<pid>\d+)-[0-9a-f]{8}$")


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname()) or "localhost"


def staging_dir(target: str | Path) -> Path:
    """A new empty folder next to ``target``, named for this host and process (see the module docstring)."""
    target = Path(target)
    while True:
        path = target.with_name(f".{target.name}{TAG}{_host()}-{os.getpid()}-{secrets.token_hex(4)}")
        try:
            os.mkdir(path)
            return path
        except FileExistsError:  # pragma: no cover - 32 random bits
            continue


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    except OSError:  # pragma: no cover - e.g. a pid out of range
        return False
    try:  # a zombie (dead, not yet reaped) is dead
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True


def is_stale(path: Path) -> bool:
    """Whether ``path`` is a staging folder left by a process of this host that no longer runs."""
    m = _STAGING.match(path.name)
    return bool(m) and m.group("host") == _host() and not _alive(int(m.group("pid")))


def sweep_stale(parent: str | Path) -> list[Path]:
    """Remove the stale staging folders directly under ``parent``; returns what was removed."""
    removed = []
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return removed
    for entry in entries:
        if TAG in entry.name and entry.is_dir(follow_symlinks=False) and is_stale(Path(entry.path)):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(Path(entry.path))
    return removed

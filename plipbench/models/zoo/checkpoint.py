"""Reading the zoo's official checkpoint files: an allow-list of data-only objects, and key conversion that
drops exactly the keys each layout is known to carry.

Official files hold objects that ``torch.load(weights_only=True)`` refuses: the DINO-style snapshots of
SOLIDER, TransReID-SSL and PASS carry their command line as an ``argparse.Namespace`` under ``'args'``.
:func:`load_official_checkpoint` lists the file's globals first
(``torch.serialization.get_unsafe_globals_in_checkpoint``, which reads without unpickling) and allows
exactly the ones in :data:`ALLOWED_GLOBALS` for that one load (``torch.serialization.safe_globals``); any
other global (``os.system`` in a ``__reduce__``, a training class) is refused, naming it. There is no
fallback to a full unpickle.

:class:`Conversion` turns an official state dict into the reference model's keys: each key is renamed by
the first rule that matches it, dropped when it matches one of the layout's expected drop patterns, and
otherwise reported as unknown, with every such key listed.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plipbench.errors import PlipbenchError

if TYPE_CHECKING:  # pragma: no cover
    import torch

#: Data-only classes that official checkpoints are known to contain, by the name torch reports.
ALLOWED_GLOBALS: dict[str, type] = {"argparse.Namespace": argparse.Namespace}


def load_official_checkpoint(path: str | Path) -> Any:
    """Load a checkpoint without executing code, allowing only :data:`ALLOWED_GLOBALS`."""
    import pickle
    import zipfile

    import torch

    path = Path(path)
    if not path.is_file():
        raise PlipbenchError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as err:  # safetensors raises its own error types for truncated headers
            raise PlipbenchError(f"{path}: cannot read as safetensors (truncated or corrupt?): {err}") from None
    try:
        needed = torch.serialization.get_unsafe_globals_in_checkpoint(path) if zipfile.is_zipfile(path) else []
    except (RuntimeError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise PlipbenchError(f"{path}: cannot read as a torch checkpoint (truncated or corrupt?): {err}") from None
    refused = [name for name in needed if name not in ALLOWED_GLOBALS]
    if refused:
        raise PlipbenchError(
            f"{path}: refused to load: the file needs {', '.join(refused)}, which is not on plipbench's allow-list "
            f"of data-only objects ({', '.join(ALLOWED_GLOBALS)}); plipbench never unpickles arbitrary objects"
        )
    try:
        with torch.serialization.safe_globals([ALLOWED_GLOBALS[name] for name in needed]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise PlipbenchError(f"{path}: refused to load (weights_only rejected it: {first})") from None
    except (RuntimeError, EOFError, OSError) as err:
        raise PlipbenchError(f"{path}: cannot read as a torch checkpoint (truncated or corrupt?): {err}") from None


def unwrap(obj: Any, path: str | Path, keys: Iterable[str] = ("teacher", "state_dict", "model")) -> tuple[dict, str]:
    """The tensor dict inside a checkpoint: the first of ``keys`` present, else the object itself.

    Returns ``(state, where)`` with ``where`` the entry used (``""`` for a flat file).
    """
    import torch

    where = ""
    if isinstance(obj, dict):
        for key in keys:
            if isinstance(obj.get(key), dict):
                obj, where = obj[key], key
                break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        kinds = sorted({type(v).__name__ for v in obj.values()}) if isinstance(obj, dict) else [type(obj).__name__]
        raise PlipbenchError(
            f"{path}: expected a state dict (name -> tensor) at the top level or under one of {list(keys)}, "
            f"found values of type {', '.join(kinds) or 'none'}"
        )
    return obj, where


def strip_prefix(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """Remove ``prefix`` when every key has it (``module.`` of DataParallel, ``base_model.`` of IRRA)."""
    if state and all(k.startswith(prefix) for k in state):
        return {k[len(prefix) :]: v for k, v in state.items()}
    return state


@dataclass
class Conversion:
    """Renames, expected drops and a final transform for one official layout.

    ``renames``: ``(regex, replacement)`` pairs, the first match wins (``re.fullmatch``); a key no rule
    matches keeps its name. ``drops``: regexes of the keys the layout is known to carry and the
    backbone does not use; they are removed and returned. ``transform`` gets the renamed dict and may
    merge or split tensors (PASS's part tokens).
    """

    name: str
    renames: list[tuple[str, str]] = field(default_factory=list)
    drops: list[str] = field(default_factory=list)
    transform: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None

    def apply(self, state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
        drops = [re.compile(p) for p in self.drops]
        renames = [(re.compile(p), r) for p, r in self.renames]
        out: dict[str, torch.Tensor] = {}
        dropped: list[str] = []
        for key, value in state.items():
            if any(d.fullmatch(key) for d in drops):
                dropped.append(key)
                continue
            for pattern, replacement in renames:
                if pattern.fullmatch(key):
                    key = pattern.sub(replacement, key)
                    break
            out[key] = value
        if self.transform is not None:
            out = self.transform(out)
        return out, sorted(dropped)


def load_converted(module: Any, state: dict[str, torch.Tensor], *, source: str) -> None:
    """Load strictly: one error listing every missing, unexpected and wrongly shaped key."""
    from plipbench.models.weights import load_state_dict_strict

    load_state_dict_strict(module, state, source=source)

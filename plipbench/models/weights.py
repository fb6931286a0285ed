"""Loading weights safely and strictly: no unpickling, and every missing or unexpected key reported.

``load_weights_file`` reads ``.safetensors`` with safetensors and anything else with
``torch.load(weights_only=True)``: a pickle that would run code (``os.system`` in ``__reduce__``)
is refused before anything runs. ``load_state_dict_strict`` loads a state dict and raises one
:class:`PlipbenchError` listing *all* missing, unexpected and wrongly-shaped keys, except keys
the caller declares skippable (classifier heads), which are returned so the caller can report them.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plipbench.errors import DataError, PlipbenchError

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

_ENV = re.compile(
    r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
)


def expand_path(text: str) -> Path:
    """Expand ``${VAR}``, ``${VAR:-default}``, ``$VAR`` and ``~`` in a path written in a YAML file."""

    def replace(match: re.Match[str]) -> str:
        name = match.group("name") or match.group("bare")
        value = os.environ.get(name)
        if value:
            return value
        if match.group("default") is not None:
            return match.group("default")
        raise PlipbenchError(f"path {text!r} uses ${{{name}}}, which is not set (use ${{{name}:-default}})")

    return Path(os.path.expanduser(_ENV.sub(replace, text))).expanduser()


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def weights_sha256(path: str | Path) -> str:
    """sha256 of a weights file, or of a directory's weight files (name + hash of each, sorted)."""
    path = Path(path)
    if path.is_file():
        return file_sha256(path)
    digest = hashlib.sha256()
    patterns = ("*.safetensors", "*.bin", "*.pt", "*.pth", "*.pth.tar")
    files = sorted({f for pattern in patterns for f in path.glob(pattern)})
    for file in files:
        digest.update(f"{file.name}:{file_sha256(file)}".encode())
    return digest.hexdigest()


def load_weights_file(path: str | Path) -> Any:
    """Read a weights file without executing code (safetensors, or ``torch.load(weights_only=True)``)."""
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise PlipbenchError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        return load_safetensors(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise PlipbenchError(
            f"{path}: refused to load: the file is not a plain tensor checkpoint (weights_only=True rejected it: "
            f"{first}); plipbench never unpickles arbitrary objects, convert it to plain tensors or safetensors"
        ) from None
    except (RuntimeError, EOFError, OSError) as err:
        raise PlipbenchError(f"{path}: cannot read as a torch checkpoint: {err}") from None


def load_safetensors(path: str | Path) -> dict[str, torch.Tensor]:
    """``safetensors.torch.load_file(path)`` on the CPU; a truncated or foreign file is a :class:`DataError`."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise DataError(path, f"not a readable safetensors file, truncated or corrupt? ({err}); "
                              f"expected the weights as saved by safetensors") from None


def extract_state_dict(obj: Any, path: str | Path) -> dict[str, torch.Tensor]:
    """The tensor dict inside a loaded checkpoint: itself, or its ``state_dict`` / ``model`` entry; strips ``module.``."""
    import torch

    if isinstance(obj, dict):
        for key in ("state_dict", "model", "model_state_dict"):
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise PlipbenchError(f"{path}: expected a state dict (name -> tensor), found {type(obj).__name__}")
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k[len("module.") :]: v for k, v in obj.items()}
    return obj


def _listing(keys: Iterable[str], limit: int = 60) -> str:
    keys = sorted(keys)
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def load_state_dict_strict(
    module: nn.Module,
    state: dict[str, torch.Tensor],
    *,
    source: str,
    skippable: tuple[str, ...] = (),
) -> list[str]:
    """Load ``state`` into ``module``; raise one error listing every key problem.

    Keys starting with a prefix in ``skippable`` (classifier heads) may be missing or unexpected
    without error; they are not loaded and are returned so the caller can report them.
    """
    expected = module.state_dict()
    skip = lambda key: any(key == p or key.startswith(p + ".") for p in skippable)  # noqa: E731
    missing = [k for k in expected if k not in state and not skip(k)]
    unexpected = [k for k in state if k not in expected and not skip(k)]
    mismatched = [
        f"{k} (checkpoint {tuple(state[k].shape)}, model {tuple(expected[k].shape)})"
        for k in state
        if k in expected and tuple(state[k].shape) != tuple(expected[k].shape) and not skip(k)
    ]
    if missing or unexpected or mismatched:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s): {_listing(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s): {_listing(unexpected)}")
        if mismatched:
            parts.append(f"{len(mismatched)} shape mismatch(es): {_listing(mismatched)}")
        raise PlipbenchError(f"{source}: weights do not match the model: " + "; ".join(parts))
    skipped = sorted({k for k in state if skip(k)} | {k for k in expected if skip(k) and k not in state})
    loadable = {k: v for k, v in state.items() if k in expected and not skip(k)}
    result = module.load_state_dict(loadable, strict=False)
    leftover = [k for k in result.missing_keys if not skip(k)]
    if leftover or result.unexpected_keys:  # pragma: no cover - guarded by the checks above
        raise PlipbenchError(
            f"{source}: weights do not match the model: {leftover + list(result.unexpected_keys)}"
        )
    return skipped

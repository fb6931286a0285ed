"""Helpers shared by the image-only adapters (timm, torchreid): the weights-or-random-init rule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from plipbench.errors import PlipbenchError


def resolve_weights(family: str, name: str, weights: str | None, pretrained: bool | None) -> Path | None:
    """The weights file to load, or None for an explicitly requested random init.

    Weights are never downloaded. Without ``weights=PATH`` the caller must say
    ``pretrained=False`` explicitly; anything else is an error naming what was expected.
    """
    if weights:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise PlipbenchError(f"{family}:{name}: weights file not found: {path}")
        return path
    if pretrained is False:
        return None
    raise PlipbenchError(
        f"{family}:{name}: no weights given; plipbench never downloads: pass weights=PATH (a local "
        f".safetensors/.pth file for {name}) or pretrained=false for a random initialisation"
    )


def load_checked(module: Any, path: Path, *, source: str, skippable: tuple[str, ...]) -> list[str]:
    from plipbench.models.weights import extract_state_dict, load_state_dict_strict, load_weights_file

    state = extract_state_dict(load_weights_file(path), path)
    return load_state_dict_strict(module, state, source=source, skippable=skippable)

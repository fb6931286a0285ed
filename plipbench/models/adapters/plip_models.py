"""``plip:PATH``: a plipbench PLIP checkpoint directory or the official ``PLIP_RN50.pth.tar``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from plipbench.errors import ConfigError, PlipbenchError


def build_plip(
    target: str | None,
    *,
    device: str = "cpu",
    weights: str | None = None,
    tokenizer: str | None = None,
    name: str | None = None,
) -> Any:
    """Load PLIP weights from ``weights`` (or ``target`` when no ``weights``).

    A directory with ``config.json`` + ``model.safetensors`` is a plipbench checkpoint (its own
    ``tokenizer/`` is used unless ``tokenizer=`` is given). A file is the official release
    (``torch.save`` dict with ``ImgEncoder_state_dict`` / ``TxtEncoder_state_dict``); its BERT
    tokenizer comes from ``tokenizer=DIR`` and is needed only for text.
    """
    from plipbench.models.plip.backbone import PlipBackbone
    from plipbench.models.plip.checkpoint import is_plip_checkpoint, load_plip_checkpoint
    from plipbench.models.plip.official import load_official_checkpoint
    from plipbench.models.plip.tokenizer import load_tokenizer

    location = weights or target
    if not location:
        raise ConfigError(
            "plip: give the checkpoint path, e.g. plip:/path/to/PLIP_RN50.pth.tar or plip:/path/to/ckpt_dir"
        )
    path = Path(location).expanduser()
    if is_plip_checkpoint(path):
        model, tok_dir, sha = load_plip_checkpoint(path)
        tok_dir = Path(tokenizer) if tokenizer else tok_dir
        return PlipBackbone(
            model, load_tokenizer(tok_dir) if tok_dir else None, name=name or f"plip:{path.name}",
            source=str(path), checkpoint_sha256=sha, device=device,
        )  # fmt: skip
    if path.is_file():
        model, sha = load_official_checkpoint(path)
        return PlipBackbone(
            model, load_tokenizer(tokenizer) if tokenizer else None, name=name or "plip-rn50-official",
            source=str(path), checkpoint_sha256=sha, license="MIT (code); weights: research use",
            training_data=("SYNTH-PEDES",), device=device,
        )  # fmt: skip
    raise PlipbenchError(
        f"PLIP weights not found at {path}: expected the official PLIP_RN50.pth.tar file or a plipbench "
        "checkpoint directory (config.json + model.safetensors)"
    )

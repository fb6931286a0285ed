"""``open_clip:MODEL``: an ``open_clip`` model with a local weights file (optional extra ``plipbench[open_clip]``).

``open_clip.create_model_and_transforms(MODEL, pretrained=PATH)`` loads ``weights=PATH`` (a local
file; nothing is downloaded); the tokenizer is ``open_clip.get_tokenizer(MODEL)``. The image
transform comes from ``model.visual.image_size`` / ``image_mean`` / ``image_std`` (CLIP defaults
when absent): bicubic, shorter side resized and centre-cropped.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from plipbench.errors import ConfigError, PlipbenchError


def _import_open_clip() -> Any:
    try:
        return importlib.import_module("open_clip")
    except ImportError:
        raise PlipbenchError(
            "the open_clip family needs the optional package open_clip_torch: pip install plipbench[open_clip]"
        ) from None


def build_open_clip(
    target: str | None, *, device: str = "cpu", weights: str | None = None, pretrained: bool | None = None
) -> Any:
    import torch

    from plipbench.models.backbone import ModuleBackbone, count_parameters
    from plipbench.models.metadata import CLIP_MEAN, CLIP_STD, BackboneMetadata, ImageTransform
    from plipbench.models.weights import file_sha256

    if not target:
        raise ConfigError("open_clip: name a model, e.g. open_clip:ViT-B-16")
    open_clip = _import_open_clip()
    if weights:
        path: Path | None = Path(weights).expanduser()
        if not path.is_file():
            raise PlipbenchError(f"open_clip:{target}: weights file not found: {path}")
    elif pretrained is False:
        path = None
    else:
        raise PlipbenchError(
            f"open_clip:{target}: no weights given; pass weights=PATH (a local open_clip checkpoint) or pretrained=false"
        )
    try:
        model, _, _ = open_clip.create_model_and_transforms(target, pretrained=str(path) if path else None)
    except RuntimeError as err:
        raise PlipbenchError(f"open_clip:{target}: {err}") from None
    tokenizer = open_clip.get_tokenizer(target)
    model.eval()
    visual = model.visual
    size = getattr(visual, "image_size", 224)
    size = (size, size) if isinstance(size, int) else tuple(size)
    transform = ImageTransform(
        size=size, mean=tuple(getattr(visual, "image_mean", None) or CLIP_MEAN),
        std=tuple(getattr(visual, "image_std", None) or CLIP_STD), interpolation="bicubic", resize="crop",
    )  # fmt: skip

    def encode_text(m: Any, texts: list[str]) -> Any:
        return m.encode_text(tokenizer(texts).to(next(m.parameters()).device))

    with torch.inference_mode():
        dim = int(model.encode_image(torch.zeros(1, 3, *size)).shape[-1])
    meta = BackboneMetadata(
        name=f"open_clip:{target}", family="open_clip", modalities=("image", "text"), embedding_dim=dim,
        num_parameters=count_parameters(model), source=str(path) if path else "random init",
        checkpoint_sha256=file_sha256(path) if path else None, description=f"open_clip {target}",
    )  # fmt: skip
    return ModuleBackbone(
        model, meta, transform, image_fn=lambda m, x: m.encode_image(x), text_fn=encode_text, device=device
    )

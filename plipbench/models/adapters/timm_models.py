"""``timm:NAME``: any timm image model as a global-feature backbone (``num_classes=0``: pooled features).

Weights come from a local file (``weights=PATH``, safetensors or a plain torch state dict); the
classifier head's keys are reported and skipped, every other key must match. The image
transform is timm's eval data config (input size, interpolation, mean/std, crop_pct, centre crop).
"""

from __future__ import annotations

from typing import Any

from plipbench.errors import ConfigError
from plipbench.models.adapters._common import load_checked, resolve_weights


def build_timm(
    target: str | None,
    *,
    device: str = "cpu",
    weights: str | None = None,
    pretrained: bool | None = None,
    **model_kwargs: Any,
) -> Any:
    import timm
    import torch

    from plipbench.models.backbone import ModuleBackbone, count_parameters
    from plipbench.models.metadata import BackboneMetadata, ImageTransform
    from plipbench.models.weights import file_sha256

    if not target:
        raise ConfigError("timm: name a model, e.g. timm:resnet50")
    path = resolve_weights("timm", target, weights, pretrained)
    try:
        model = timm.create_model(target, pretrained=False, num_classes=0, **model_kwargs)
    except RuntimeError as err:
        raise ConfigError(f"timm:{target}: {err}") from None
    skipped: list[str] = []
    if path is not None:
        head = model.pretrained_cfg.get("classifier") or "fc"
        heads = tuple(head) if isinstance(head, (list, tuple)) else (head,)
        skipped = load_checked(model, path, source=f"timm:{target} {path}", skippable=heads)
    model.eval()
    cfg = timm.data.resolve_data_config({}, model=model)
    _, height, width = cfg["input_size"]
    transform = ImageTransform(
        size=(height, width), mean=tuple(cfg["mean"]), std=tuple(cfg["std"]),
        interpolation=cfg.get("interpolation", "bilinear"), resize="crop", crop_pct=float(cfg.get("crop_pct", 1.0)),
    )  # fmt: skip
    with torch.inference_mode():
        dim = int(model.num_features)
    meta = BackboneMetadata(
        name=f"timm:{target}", family="timm", modalities=("image",), embedding_dim=dim,
        num_parameters=count_parameters(model), source=str(path) if path else "random init",
        checkpoint_sha256=file_sha256(path) if path else None,
        description=f"timm {target}, pooled features" + (f"; skipped head keys: {', '.join(skipped)}" if skipped else ""),
    )  # fmt: skip
    backbone = ModuleBackbone(model, meta, transform, device=device)
    backbone.skipped_keys = skipped
    return backbone

"""``lup-resnet:resnet50|resnet101|resnet152``: LUPerson (MoCo v2) and LUPerson-NL ResNets.

Architecture: torchvision's ResNet (v1.5), with the last stride set to 1 as in the LUPerson fast-reid
fine-tuning (``layer4[0].conv2`` and its downsample at stride 1: a 16x8 map at 256x128), ``last_stride=2``
keeps the pre-training stride. Feature: global average pool of layer4 (2048-d).

Checkpoint layouts accepted (the released ``lup_moco_r50.pth`` is believed flat; the raw training
snapshot is MoCo's): a flat torchvision dict (``fc.*`` dropped if present), or
``{'state_dict': {'module.encoder_q.*', 'module.encoder_k.*', 'module.queue', 'module.queue_ptr'}}``,
whose query encoder is kept and key encoder, queue and MLP head dropped. LUPerson-NL's PNL encoder
heads (``embed_fc``, ``classifier``, ``fc1``, ``fc2``) and ``prototypes`` are dropped too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from plipbench.errors import ConfigError, PlipbenchError
from plipbench.models.zoo.checkpoint import (
    Conversion,
    load_converted,
    load_official_checkpoint,
    strip_prefix,
    unwrap,
)

DEPTHS = {"resnet50": (3, 4, 6, 3), "resnet101": (3, 4, 23, 3), "resnet152": (3, 8, 36, 3)}
LUP_MEAN = (0.3525, 0.3106, 0.3140)
LUP_STD = (0.2660, 0.2522, 0.2505)

MOCO = Conversion(
    "LUPerson MoCo v2",
    drops=[r"fc\..*", r"encoder_k\..*", r"queue", r"queue_ptr", r"prototypes", r"(embed_fc|classifier|fc1|fc2)\..*"],
)


def detect_resnet(state: dict[str, Any]) -> str:
    """The ResNet depth a state dict was saved from, by its number of layer3 / layer2 blocks."""
    blocks = {
        layer: len({k.split(".")[1] for k in state if k.startswith(f"{layer}.") and k.split(".")[1].isdigit()})
        for layer in ("layer1", "layer2", "layer3", "layer4")
    }
    for name, depths in DEPTHS.items():
        if tuple(blocks.values()) == depths:
            return name
    return f"a ResNet with blocks {tuple(blocks.values())}"


def convert_lup(obj: Any, path: str | Path) -> tuple[dict[str, Any], list[str]]:
    state, _ = unwrap(obj, path, keys=("state_dict", "model"))
    state = strip_prefix(state, "module.")
    if any(k.startswith("encoder_q.") for k in state):
        state = {(k[len("encoder_q.") :] if k.startswith("encoder_q.") else k): v for k, v in state.items()}
    return MOCO.apply(state)


def build_lup_resnet(
    target: str | None,
    *,
    device: str = "cpu",
    weights: str | None = None,
    pretrained: bool | None = None,
    last_stride: int = 1,
    image_size: tuple[int, int] = (256, 128),
    mean: tuple[float, float, float] = LUP_MEAN,
    std: tuple[float, float, float] = LUP_STD,
    interpolation: str = "bicubic",
) -> Any:
    import torch
    from torchvision.models import resnet

    from plipbench.models.adapters._common import resolve_weights
    from plipbench.models.backbone import ModuleBackbone, count_parameters
    from plipbench.models.metadata import BackboneMetadata, ImageTransform
    from plipbench.models.weights import file_sha256

    if target not in DEPTHS:
        raise ConfigError(f"lup-resnet: unknown model {target!r}; known: {', '.join(DEPTHS)}")
    if last_stride not in (1, 2):
        raise ConfigError(f"lup-resnet: last_stride must be 1 or 2, got {last_stride}")
    path = resolve_weights("lup-resnet", target, weights, pretrained)
    model = getattr(resnet, target)(weights=None)
    model.fc = torch.nn.Identity()
    if last_stride == 1:
        model.layer4[0].conv2.stride = (1, 1)
        model.layer4[0].downsample[0].stride = (1, 1)
    dropped: list[str] = []
    if path is not None:
        state, dropped = convert_lup(load_official_checkpoint(path), path)
        found = detect_resnet(state)
        if found != target:
            raise PlipbenchError(f"lup-resnet:{target}: {path} holds {found}, not {target}")
        load_converted(model, state, source=f"lup-resnet:{target} {path}")
    model.eval()
    meta = BackboneMetadata(
        name=f"lup-resnet:{target}", family="lup-resnet", modalities=("image",), embedding_dim=2048,
        num_parameters=count_parameters(model), source=str(path) if path else "random init",
        checkpoint_sha256=file_sha256(path) if path else None,
        description=f"torchvision {target}, last stride {last_stride}, GAP of layer4 at {image_size[0]}x{image_size[1]}"
        + (f"; dropped {len(dropped)} checkpoint keys (MoCo key encoder/queue/heads)" if dropped else ""),
    )  # fmt: skip
    transform = ImageTransform(size=tuple(image_size), mean=tuple(mean), std=tuple(std), interpolation=interpolation)
    backbone = ModuleBackbone(model, meta, transform, device=device)
    backbone.dropped_keys = dropped
    return backbone

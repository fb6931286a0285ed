"""Model parts the fine-tune recipes add to a backbone: the BNNeck head and the last-stride change."""

from __future__ import annotations

from typing import TYPE_CHECKING

from plipbench.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

    from plipbench.recipes.schema import NeckSpec


def bnneck_head(dim: int, num_classes: int, spec: NeckSpec) -> tuple[nn.Module, nn.Module]:
    """``(neck, classifier)`` of BoT's ``modeling/baseline.py``: ``BatchNorm1d(dim)`` (bias frozen at 0 when
    ``spec.frozen_bias``; ``Identity`` for ``kind: none``) and a ``Linear(dim, num_classes)`` with or without a
    bias, initialised N(0, ``classifier_init_std``). Call inside :func:`~._training.seeded`."""
    import torch

    neck: nn.Module = torch.nn.BatchNorm1d(dim) if spec.kind == "bnneck" else torch.nn.Identity()
    if spec.kind == "bnneck" and spec.frozen_bias:
        neck.bias.requires_grad_(False)
    classifier = torch.nn.Linear(dim, num_classes, bias=spec.classifier_bias)
    if spec.classifier_init_std is not None:
        torch.nn.init.normal_(classifier.weight, std=spec.classifier_init_std)
        if classifier.bias is not None:
            torch.nn.init.zeros_(classifier.bias)
    return neck, classifier


def _last_stage(module: nn.Module) -> tuple[str, nn.Module] | None:
    stages = [(name, m) for name, m in module.named_modules() if name.rsplit(".", 1)[-1] == "layer4"]
    return stages[-1] if stages else None


def set_last_stride_one(module: nn.Module) -> list[str]:
    """Make the last stage of a ResNet-like ``module`` (torchvision/timm ResNet, the CLIP/PLIP ModifiedResNet)
    keep its input resolution, as BoT's ``LAST_STRIDE 1``: in the first block of ``layer4`` every stride-2
    convolution gets stride 1 and every stride-2 average pool (ModifiedResNet's anti-aliased stride, ResNet-D's
    shortcut) becomes an identity. Edits ``module`` in place (pass a training copy); returns what was changed,
    nothing for a CNN that is not ResNet-like (no ``layer4``: an OSNet, a MobileNet), which keeps its strides."""
    import torch

    found = _last_stage(module)
    if found is None:
        return []
    name, stage = found
    first = next(iter(stage.children()))
    changed: list[str] = []
    for sub_name, sub in list(first.named_modules()):
        where = f"{name}.0.{sub_name}".rstrip(".")
        if isinstance(sub, torch.nn.Conv2d) and tuple(sub.stride) == (2, 2):
            sub.stride = (1, 1)
            changed.append(f"{where}: stride 2 -> 1")
        elif isinstance(sub, torch.nn.AvgPool2d) and sub.stride in (2, (2, 2)):
            parent_name, _, leaf = sub_name.rpartition(".")
            parent = first.get_submodule(parent_name) if parent_name else first
            parent._modules[leaf] = torch.nn.Identity()  # ModifiedResNet's shortcut is keyed "-1"
            changed.append(f"{where}: average pool 2 -> identity")
    if not changed:
        raise ConfigError(f"last_stride: the first block of {name} has no stride-2 convolution or pool")
    return changed


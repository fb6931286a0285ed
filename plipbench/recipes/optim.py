"""The optimizer of a recipe: parameter groups by name, then torch's (or timm's, for Adan) optimizer.

The group of a parameter follows the references' ``named_parameters`` loops (BoT, TransReID and
IRRA ``solver/build.py``): every parameter starts at the base lr and ``weight_decay``; one whose name
contains ``bias`` gets ``lr x bias_lr_factor`` and ``bias_weight_decay``; then each of
``optimizer.rules`` applies in order, a later one overriding an earlier one. Parameters that do not
require gradients (BNNeck's frozen bias) are left out. Parameters with the same (lr, weight decay)
share a group, which is the same update as the references' one group per tensor.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from plipbench.errors import ConfigError
from plipbench.recipes.schema import CenterSpec, OptimizerSpec

if TYPE_CHECKING:
    import torch
    from torch import nn


def parameter_settings(name: str, spec: OptimizerSpec) -> tuple[float, float]:
    """``(lr, weight_decay)`` of the parameter called ``name``."""
    lr, decay = spec.lr, spec.weight_decay
    if "bias" in name:
        lr = spec.lr * spec.bias_lr_factor
        decay = spec.weight_decay if spec.bias_weight_decay is None else spec.bias_weight_decay
    for rule in spec.rules:
        if any(m in name for m in rule.match) and not any(x in name for x in rule.exclude):
            if rule.lr_factor is not None:
                lr = spec.lr * rule.lr_factor
            if rule.weight_decay is not None:
                decay = rule.weight_decay
    return lr, decay


def param_groups(
    named_parameters: Iterable[tuple[str, torch.nn.Parameter]], spec: OptimizerSpec
) -> list[dict[str, Any]]:
    """torch param groups (``params``, ``lr``, ``weight_decay``, ``names``) in first-seen order."""
    groups: dict[tuple[float, float], dict[str, Any]] = {}
    for name, param in named_parameters:
        if not param.requires_grad:
            continue
        lr, decay = parameter_settings(name, spec)
        group = groups.setdefault((lr, decay), {"params": [], "names": [], "lr": lr, "weight_decay": decay})
        group["params"].append(param)
        group["names"].append(name)
    if not groups:
        raise ConfigError("the optimizer has no parameter to train (every parameter is frozen)")
    return list(groups.values())


def build_optimizer(
    model: nn.Module | Iterable[tuple[str, torch.nn.Parameter]],
    spec: OptimizerSpec,
    extra_groups: Iterable[dict[str, Any]] = (),
) -> torch.optim.Optimizer:
    """The recipe's optimizer over ``model`` (a module or ``named_parameters()`` pairs); ``extra_groups``
    are appended as they are (a CMPC classifier at ``lr x classifier_lr_factor``, for example)."""
    import torch

    named = model.named_parameters() if isinstance(model, torch.nn.Module) else model
    groups = param_groups(named, spec) + list(extra_groups)
    kwargs: dict[str, Any] = {"lr": spec.lr, "weight_decay": spec.weight_decay}
    if spec.eps is not None:
        kwargs["eps"] = spec.eps
    if spec.betas is not None:
        kwargs["betas"] = tuple(spec.betas)
    if spec.name == "adam":  # torch's Adam adds weight_decay x param to the gradient: coupled L2
        return torch.optim.Adam(groups, **kwargs)
    if spec.name == "adamw":
        return torch.optim.AdamW(groups, **kwargs)
    if spec.name == "sgd":
        kwargs.pop("eps", None)
        return torch.optim.SGD(groups, momentum=spec.momentum, nesterov=spec.nesterov, **kwargs)
    try:
        from timm.optim import Adan
    except ImportError as err:
        raise ConfigError(
            f"optimizer adan needs timm.optim.Adan, which this timm does not have: {err}"
        ) from None
    return Adan(groups, no_prox=spec.no_prox, **kwargs)


def build_center_optimizer(centers: Iterable[torch.nn.Parameter], spec: CenterSpec) -> torch.optim.Optimizer:
    """The centre loss's own plain SGD (BoT ``make_optimizer_with_center``: ``SGD(lr=CENTER_LR)``). BoT also
    divides the centres' gradient by the loss weight before stepping, so that the weight scales only the
    backbone's gradient; the training loop does that (``center.grad /= spec.weight``)."""
    import torch

    return torch.optim.SGD(list(centers), lr=spec.lr)

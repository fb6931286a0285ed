"""Backbones: the :class:`Backbone` contract, the registry, named baselines, and the model adapters.

Public API (imported lazily, so ``import plipbench.models`` stays cheap)::

    create_backbone(spec, *, device="cpu", **overrides) -> Backbone
    check_backbone(backbone) -> list[CheckResult]
    Backbone, ModuleBackbone, BackboneMetadata, ImageTransform
    build_torchvision_transform(spec), preprocess_image(image, spec)
    Registry, FAMILIES, list_families(), as_backbone(obj, source=..., device=...)
    BaselineSpec, load_baseline(name_or_path), list_baselines(), baseline_names()
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Backbone": "plipbench.models.backbone",
    "ModuleBackbone": "plipbench.models.backbone",
    "build_torchvision_transform": "plipbench.models.backbone",
    "preprocess_image": "plipbench.models.backbone",
    "state_dict_sha256": "plipbench.models.backbone",
    "BackboneMetadata": "plipbench.models.metadata",
    "ImageTransform": "plipbench.models.metadata",
    "Registry": "plipbench.models.registry",
    "FAMILIES": "plipbench.models.registry",
    "ENTRY_POINT_GROUP": "plipbench.models.registry",
    "create_backbone": "plipbench.models.registry",
    "list_families": "plipbench.models.registry",
    "as_backbone": "plipbench.models.registry",
    "BaselineSpec": "plipbench.models.baselines",
    "load_baseline": "plipbench.models.baselines",
    "list_baselines": "plipbench.models.baselines",
    "baseline_names": "plipbench.models.baselines",
    "check_backbone": "plipbench.models.checks",
    "CheckResult": "plipbench.models.checks",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'plipbench.models' has no attribute {name!r}")

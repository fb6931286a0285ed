"""Fine-tune recipes as data: typed, shipped YAML files resolved per backbone.

Public API (imported lazily, so ``import plipbench.recipes`` stays cheap)::

    load_recipe(name_or_path) -> Recipe            recipe_names() -> list[str]
    resolve_recipe(name, backbone, overrides=None, *, dataset=None) -> ResolvedRecipe
    default_recipe(task, backbone) -> str          the reference recipe for that kind of backbone
    profile_backbone(spec_or_backbone) -> BackboneProfile
    build_optimizer(module_or_named_parameters, optimizer_spec) -> torch.optim.Optimizer
    build_lr_scheduler(optimizer, recipe) -> LambdaLR | ReduceLROnPlateau
    lr_factor(recipe, epoch) -> float
    build_train_transform(resolved), build_test_transform(resolved)    torchvision v2 pipelines
    resample_position_embedding(posemb, new_grid)                       ViT grid to the input size

The recipes themselves are ``plipbench/recipes/data/*.yaml``, one per reference fine-tune, each value
with its source (see ``../shared/reference/downstream-recipes.md``).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Recipe": "plipbench.recipes.schema",
    "load_recipe": "plipbench.recipes.catalog",
    "recipe_names": "plipbench.recipes.catalog",
    "recipe_path": "plipbench.recipes.catalog",
    "ResolvedRecipe": "plipbench.recipes.resolve",
    "resolve_recipe": "plipbench.recipes.resolve",
    "default_recipe": "plipbench.recipes.resolve",
    "build_train_transform": "plipbench.recipes.transforms",
    "build_test_transform": "plipbench.recipes.transforms",
    "resample_position_embedding": "plipbench.recipes.transforms",
    "BackboneProfile": "plipbench.recipes.backbones",
    "profile_backbone": "plipbench.recipes.backbones",
    "build_optimizer": "plipbench.recipes.optim",
    "param_groups": "plipbench.recipes.optim",
    "build_lr_scheduler": "plipbench.recipes.schedules",
    "lr_factor": "plipbench.recipes.schedules",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'plipbench.recipes' has no attribute {name!r}")

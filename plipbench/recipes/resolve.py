"""A recipe as resolved for one backbone: :func:`resolve_recipe`.

Resolution, in order: the shipped recipe; the check that it fits the backbone (its kind and
modalities); each variant whose ``when`` matches the backbone (in file order); the dataset's values;
the caller's overrides. The backbone-specific parts are then filled in from the backbone: mean/std,
the pooled feature, the position-embedding grid. Overrides are kept in the result, so that a short
run (fewer epochs, a shorter warm-up) is visible as such wherever the resolved recipe is written.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from plipbench.errors import ConfigError
from plipbench.models.metadata import (
    CLIP_MEAN,
    CLIP_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    SYNTH_PEDES_MEAN,
    SYNTH_PEDES_STD,
)
from plipbench.recipes.backbones import BackboneProfile, profile_backbone
from plipbench.recipes.catalog import apply_dotted, load_recipe, recipe_names, validate_recipe
from plipbench.recipes.schema import Architecture, Recipe, Variant

#: named short overrides: ``epochs=12`` is ``epochs``, ``warmup=1`` is ``warmup.epochs``, ...
SHORTHANDS = {
    "warmup": "warmup.epochs",
    "lr": "optimizer.lr",
    "batch_size": "sampler.batch_size",
    "selection": "selection.split",
}
#: scales epochs, warm-up and milestones together (``epochs_scale=0.1``: BoT in 12 epochs, decays at 4 and 7)
EPOCHS_SCALE = "epochs_scale"

NORMALIZATIONS = {
    "imagenet": (IMAGENET_MEAN, IMAGENET_STD),
    "clip": (CLIP_MEAN, CLIP_STD),
    "half": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    "synth-pedes": (SYNTH_PEDES_MEAN, SYNTH_PEDES_STD),
}
POOLED_FEATURE = {
    "cnn": "global average pool of the last stage",
    "vit": "class token",
    "swin": "average pool of the last stage",
}


class ResolvedRecipe(BaseModel):
    """A recipe for one backbone, with every backbone-specific value filled in and the edits recorded."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    backbone: BackboneProfile
    variants: tuple[str, ...] = Field(description="the variants applied, in order")
    dataset: str | None = None
    overrides: dict[str, Any] = Field(description="the caller's overrides, as given")
    short_run: bool = Field(description="fewer epochs than the reference recipe (``epochs`` or ``stop_after``)")
    paper_compatible: bool = Field(description="selection on the test split, as the reference code does")
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    feature: str = Field(description="what the backbone's output feature is")
    position_grid: tuple[int, int] | None = Field(None, description="ViT: (rows, columns) of patches")
    recipe: Recipe


def variant_applies(variant: Variant, backbone: BackboneProfile) -> bool:
    when = variant.when
    if when.architecture and backbone.architecture not in when.architecture:
        return False
    seen = {name.lower() for name in backbone.training_data}
    if when.training_data_any and not any(name.lower() in seen for name in when.training_data_any):
        return False
    return when.max_parameters is None or backbone.parameters <= when.max_parameters


def recipes_for(architecture: Architecture, task: str | None = None) -> list[str]:
    """Names of the shipped recipes that fit ``architecture`` (and ``task``)."""
    out = []
    for name in recipe_names():
        recipe = load_recipe(name)
        if architecture in recipe.fits and (task is None or recipe.task == task):
            out.append(name)
    return out


def _expand(overrides: dict[str, Any], base: Recipe) -> dict[str, Any]:
    """Dotted overrides from the caller's, shorthands and ``epochs_scale`` expanded."""
    out: dict[str, Any] = {}
    for key, value in overrides.items():
        if key == EPOCHS_SCALE:
            out.update(_scaled(base, value))
        elif key == "warmup_epochs":  # 0 switches the warm-up off (warmup.epochs must be positive)
            out.update({"warmup": None} if value == 0 else {"warmup.epochs": value})
        else:
            out[SHORTHANDS.get(key, key)] = value
    return out


def _scaled(base: Recipe, scale: Any) -> dict[str, Any]:
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 < scale <= 1:
        raise ConfigError(f"override {EPOCHS_SCALE}: expected a number in (0, 1], got {scale!r}")

    def scaled(n: int) -> int:
        return max(1, round(n * scale))

    out: dict[str, Any] = {"epochs": scaled(base.epochs)}
    if base.warmup is not None:
        out["warmup.epochs"] = scaled(base.warmup.epochs)
    if base.schedule.kind == "multistep":
        milestones = [scaled(m) for m in base.schedule.milestones]
        if len(set(milestones)) != len(milestones):
            raise ConfigError(
                f"override {EPOCHS_SCALE}={scale}: milestones {list(base.schedule.milestones)} collapse to "
                f"{milestones}; use a larger scale or set schedule.milestones"
            )
        out["schedule.milestones"] = milestones
    return out


def _check_fit(recipe: Recipe, backbone: BackboneProfile) -> None:
    label = f"recipe {recipe.name!r}"
    if backbone.architecture not in recipe.fits:
        others = ", ".join(recipes_for(backbone.architecture, recipe.task)) or "none shipped"
        raise ConfigError(
            f"{label} is for {'/'.join(recipe.fits)} backbones, and {backbone.spec} is a {backbone.architecture}; "
            f"{recipe.task} recipes for a {backbone.architecture}: {others}"
        )
    missing = [m for m in recipe.modalities if m not in backbone.modalities]
    if missing:
        raise ConfigError(
            f"{label} needs a backbone that encodes {' and '.join(recipe.modalities)}; {backbone.spec} has no "
            f"{' or '.join(missing)} encoder"
        )


def _check_parts(recipe: Recipe, backbone: BackboneProfile) -> None:
    label = f"recipe {recipe.name!r} for {backbone.spec}"
    if recipe.last_stride is not None and backbone.architecture != "cnn":
        raise ConfigError(f"{label}: last_stride applies to CNN backbones, not to a {backbone.architecture}")
    if recipe.position_embedding is not None and backbone.architecture != "vit":
        raise ConfigError(
            f"{label}: position_embedding applies to ViT backbones, not to a {backbone.architecture}"
        )


def resolve_recipe(
    name: str,
    backbone: Any,
    overrides: dict[str, Any] | None = None,
    *,
    dataset: str | None = None,
    architecture: Architecture | None = None,
) -> ResolvedRecipe:
    """``name`` (a shipped recipe or a YAML path) resolved for ``backbone`` (a spec such as
    ``timm:resnet50``, a built Backbone, or a :class:`BackboneProfile`).

    ``overrides`` maps dotted recipe keys to values (``{"optimizer.lr": 1e-4}``), plus the shorthands
    ``epochs``, ``warmup``, ``warmup_epochs`` (0: no warm-up), ``lr``, ``batch_size``, ``selection`` and
    ``epochs_scale``, and the key ``stop_after`` (train the schedule's first N epochs only). ``dataset``
    (``pa100k``, ``peta``, ...) applies the recipe's per-dataset values. ``architecture`` overrides the
    kind read from the module. Every misfit (a CNN recipe on a ViT, a text recipe on an image-only
    backbone, a last stride on a ViT) is a one-line :class:`ConfigError`.

    Example::

        resolve_recipe("bot", "timm:resnet50", {"epochs_scale": 0.1}).recipe.schedule.milestones  # (4, 7)
    """
    recipe = load_recipe(name)
    profile = profile_backbone(backbone, architecture=architecture)
    _check_fit(recipe, profile)
    tree = recipe.model_dump(mode="python", exclude={"variants", "datasets"})
    applied = []
    for variant in recipe.variants:
        if variant_applies(variant, profile):
            tree = apply_dotted(tree, variant.set, f"recipe {recipe.name!r} variant {variant.name!r}")
            applied.append(variant.name)
    if dataset is not None and dataset in recipe.datasets:
        tree = apply_dotted(tree, recipe.datasets[dataset], f"recipe {recipe.name!r} dataset {dataset!r}")
    reference = validate_recipe(tree, f"recipe {recipe.name!r}")
    given = dict(overrides or {})
    if given:
        tree = apply_dotted(tree, _expand(given, reference), "override")
    resolved = validate_recipe(tree, f"recipe {recipe.name!r} with overrides {given}")
    _check_parts(resolved, profile)
    if resolved.input.normalize == "backbone":
        mean, std = profile.mean, profile.std
    else:
        mean, std = NORMALIZATIONS[resolved.input.normalize]
    if resolved.task == "image-reid":
        feature = POOLED_FEATURE[profile.architecture]
        if profile.attention_pool:
            feature += " (the attention pool is bypassed, downstream-recipes §9.2)"
    else:
        feature = "the backbone's embedding"
    grid = None
    if resolved.position_embedding is not None and resolved.position_embedding.resample:
        patch = profile.patch_size or 16
        height, width = resolved.input.size
        grid = (height // patch, width // patch)
    return ResolvedRecipe(
        name=recipe.name, backbone=profile, variants=tuple(applied), dataset=dataset, overrides=given,
        short_run=resolved.train_epochs < reference.epochs, paper_compatible=resolved.selection.split == "test",
        mean=mean, std=std, feature=feature, position_grid=grid, recipe=resolved,
    )  # fmt: skip


def default_recipe(task: str, backbone: Any, *, architecture: Architecture | None = None) -> str:
    """The reference recipe for ``task`` (``image-reid``, ``text-reid``, ``attributes``) and this kind of
    backbone: the one shipped recipe of that task that fits its architecture (bot / transreid, plip-cmpmc
    / irra, rethinking / solider-par)."""
    profile = profile_backbone(backbone, architecture=architecture)
    names = recipes_for(profile.architecture, task)
    if len(names) != 1:
        found = ", ".join(names) or "none"
        raise ConfigError(
            f"no single {task} recipe for a {profile.architecture} backbone ({found}); name one"
        )
    return names[0]

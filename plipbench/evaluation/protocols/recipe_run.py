"""A fine-tune protocol run from a recipe (:mod:`plipbench.recipes`): which recipe, its per-epoch schedule
inside the per-step loop, and the augmented training images.

Which recipe: the protocol option ``recipe`` (a shipped name or a YAML path). Unset, a task on real data runs
the reference recipe for its kind of backbone (:func:`plipbench.recipes.default_recipe`: bot / transreid for
image ReID), as does ``recipe: reference``; a synthetic twin without ``recipe`` keeps the short hand-written fine-tune. With a recipe, every
option that is not one of the protocol's own (``RUN_OPTIONS``) is a recipe override, a dotted key or a named
shorthand (``epochs``, ``warmup_epochs``, ``lr``, ``batch_size``, ``selection``, ``epochs_scale``; ``stop_after``
is a recipe key: the first N epochs of the schedule, as the twins' short runs use it), and
``input_size: native`` trains at the backbone's own input size. The fully resolved recipe and its SHA-256 go
into the result's details.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from plipbench.errors import ConfigError
from plipbench.evaluation.protocols._training import TrainingImages, option_error

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from plipbench.evaluation.protocols.base import ProtocolContext
    from plipbench.recipes.resolve import ResolvedRecipe

#: ``recipe: reference``: the reference recipe for this kind of backbone (the synthetic twins' value, so that a
#: ViT baseline gets transreid where a CNN gets bot)
REFERENCE = "reference"

#: the options a recipe-run fine-tune keeps for itself (the rest are recipe overrides)
RUN_OPTIONS: dict[str, Any] = {
    "recipe": None,
    "input_size": "recipe",  # "recipe" (the recipe's size) or "native" (the backbone's)
    "max_steps": None,
    "num_workers": 0,
    "sync_bn": False,
    # acceleration (plipbench.evaluation.protocols.accel): the recipe's own precision on CUDA, fp32 on CPU
    "autocast": "recipe",
    "channels_last": "auto",
    "compile": False,
}


def is_real(ctx: ProtocolContext) -> bool:
    """A task on real data (not a synthetic twin)."""
    return not ctx.task.synthetic and ctx.task.dataset.synthetic is None


def wants_recipe(ctx: ProtocolContext) -> bool:
    """Run from a recipe: ``recipe`` is given, or the task is on real data."""
    return ctx.options.get("recipe") is not None or is_real(ctx)


def resolve_protocol_recipe(ctx: ProtocolContext, task_kind: str, extra: Mapping[str, Any]
                            ) -> tuple[ResolvedRecipe, dict[str, Any]]:
    """``(resolved recipe, the protocol's own options)`` for this run; ``extra`` are more own options with
    their defaults (``flip``, ``rerank``). An unknown recipe, a misfit or a bad override: ConfigError.
    A ViT whose native size is not the recipe's is resampled by the protocol (:func:`resample_for_recipe`)."""
    from plipbench.recipes import default_recipe, profile_backbone, resolve_recipe

    own_defaults = {**RUN_OPTIONS, **extra}
    own = {k: ctx.options.get(k, v) for k, v in own_defaults.items()}
    overrides = {k: v for k, v in ctx.options.items() if k not in own_defaults}
    if own["input_size"] not in ("recipe", "native"):
        raise option_error(ctx, "input_size", "'recipe' or 'native'", own["input_size"])
    profile = profile_backbone(ctx.backbone)
    name = own["recipe"]
    if name in (None, REFERENCE):
        name = default_recipe(task_kind, profile)
    if own["input_size"] == "native":
        overrides.setdefault("input.size", list(profile.input_size))
    where = f"task {ctx.task.name}, protocol {ctx.protocol.name}"
    try:
        resolved = resolve_recipe(name, profile, overrides, dataset=ctx.task.paper_task)
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None
    if resolved.recipe.task != task_kind:
        raise ConfigError(f"{where}: recipe {name!r} is a {resolved.recipe.task} recipe, not {task_kind}")
    own["recipe"] = resolved.name
    return resolved, own


def resample_for_recipe(ctx: ProtocolContext, resolved: ResolvedRecipe, encoder: Any) -> Any:
    """The recipe's position-embedding step on the training copy ``encoder`` (the image and text ReID fine-tunes):
    what :func:`~plipbench.models.resize.resize_backbone_input` did, or why nothing was done."""
    from plipbench.models.resize import resize_backbone_input

    recipe, profile = resolved.recipe, resolved.backbone
    size = tuple(recipe.input.size)
    if profile.architecture != "vit":
        return f"n/a ({profile.architecture})"
    if size == tuple(profile.input_size):
        return f"unchanged (the backbone's own size {size[0]}x{size[1]})"
    spec = recipe.position_embedding
    if spec is None or not spec.resample:
        raise ConfigError(f"task {ctx.task.name}: recipe {resolved.name!r} trains at {size[0]}x{size[1]}, not the "
                          f"ViT's own {profile.input_size[0]}x{profile.input_size[1]}, with position_embedding."
                          "resample off; set position_embedding.resample=true or input_size=native")
    try:
        return resize_backbone_input(encoder, size, interpolation=spec.interpolation)
    except ConfigError as err:
        raise ConfigError(f"task {ctx.task.name}: recipe {resolved.name!r}: {err}") from None


def recipe_model_parts(ctx: ProtocolContext, resolved: ResolvedRecipe, encoder: Any) -> dict[str, Any]:
    """The recipe's parts on the training copy ``encoder``, in the image ReID, text ReID and attribute runs alike:
    a ViT resampled to the recipe's size (:func:`resample_for_recipe`), the recipe's drop path
    (:func:`plipbench.models.drop_path.set_drop_path`), and the test transform at the recipe's size and mean/std
    (resize only). Returns what was done, ``{"position_embedding": ..., "drop_path": ...}``, for the details."""
    from plipbench.models.drop_path import set_drop_path

    recipe = resolved.recipe
    position = resample_for_recipe(ctx, resolved, encoder)
    drop_path = (set_drop_path(encoder.module, recipe.drop_path) if recipe.drop_path
                 else {"rate": recipe.drop_path or 0.0, "applied": False, "reason": "the recipe has none"})
    encoder.image_transform = encoder.image_transform.model_copy(update={
        "size": tuple(recipe.input.size), "mean": resolved.mean, "std": resolved.std,
        "interpolation": recipe.input.test_interpolation, "resize": "stretch", "crop_pct": 1.0})
    return {"position_embedding": position, "drop_path": drop_path}

def recipe_acceleration(ctx: ProtocolContext, options: Mapping[str, Any], resolved: ResolvedRecipe) -> Any:
    """The run's :class:`~plipbench.evaluation.protocols.accel.Acceleration`: its ``autocast`` /
    ``channels_last`` / ``compile`` / ``num_workers`` options on ``ctx.device``, for the backbone's kind and the
    recipe's own precision."""
    from plipbench.evaluation.protocols.accel import resolve_acceleration

    return resolve_acceleration(options, ctx.device, architecture=resolved.backbone.architecture,
                                recipe_precision=resolved.recipe.precision, where=f"task {ctx.task.name}")

def recipe_details(resolved: ResolvedRecipe) -> dict[str, Any]:
    """The resolved recipe as JSON and its SHA-256 (of the sorted JSON), for a result's details."""
    tree = resolved.model_dump(mode="json")
    digest = hashlib.sha256(json.dumps(tree, sort_keys=True).encode()).hexdigest()
    return {"recipe": tree, "recipe_sha256": digest, "short_run": resolved.short_run,
            "paper_compatible": resolved.paper_compatible}


class EpochScheduler:
    """The recipe's per-epoch scheduler (:func:`plipbench.recipes.build_lr_scheduler`) inside the per-step
    loop: :meth:`step` is called after every optimizer step and advances the epoch scheduler after the last
    step of each epoch. ``epoch_lrs`` holds the lr every parameter group ran at in each epoch (the curve's
    ``lr`` is read after the epoch's last step, so it is the next epoch's).

    A :class:`~torch.optim.lr_scheduler.ReduceLROnPlateau` (``schedule.kind: plateau``) is not stepped by
    :meth:`step`: the loop calls :meth:`end_epoch` after the epoch's validation with the epoch's values
    (``val_loss``, ``train_<part>``, ...), and it steps once with ``metrics[monitor]``, as Rethinking_of_PAR's
    ``lr_scheduler.step(metrics=valid_loss)``. ``monitor`` is required for a plateau scheduler. The state
    (the wrapped scheduler's included: its best value and bad-epoch count) is in :meth:`state_dict`, so a
    resumed run continues the plateau exactly."""

    def __init__(self, scheduler: Any, optimizer: Any, steps_per_epoch: int, *, monitor: str | None = None) -> None:
        from torch.optim.lr_scheduler import ReduceLROnPlateau

        self.scheduler, self.optimizer = scheduler, optimizer
        self.steps_per_epoch, self.steps = max(1, int(steps_per_epoch)), 0
        self.epoch_lrs: list[list[float]] = []
        self.plateau = isinstance(scheduler, ReduceLROnPlateau)
        if self.plateau and not monitor:
            raise ConfigError("a plateau schedule needs the value it watches (monitor=, e.g. 'val_loss')")
        self.monitor = monitor
        self.monitored: list[float] = []  # the plateau's input, per epoch

    def step(self) -> None:
        if self.steps % self.steps_per_epoch == 0:
            self.epoch_lrs.append([float(g["lr"]) for g in self.optimizer.param_groups])
        self.steps += 1
        if self.steps % self.steps_per_epoch == 0 and not self.plateau:
            self.scheduler.step()

    def end_epoch(self, metrics: Mapping[str, float]) -> None:
        """After an epoch's validation: a plateau scheduler steps on ``metrics[monitor]``; the others ignore it."""
        if not self.plateau:
            return
        if self.monitor not in metrics:
            raise ConfigError(f"the plateau schedule watches {self.monitor!r}, which this epoch did not produce "
                              f"(it has: {', '.join(sorted(metrics)) or 'nothing'})")
        value = float(metrics[self.monitor])
        self.monitored.append(value)
        self.scheduler.step(value)

    def state_dict(self) -> dict[str, Any]:
        state = {"scheduler": self.scheduler.state_dict(), "steps": self.steps, "epoch_lrs": self.epoch_lrs}
        if self.plateau:
            state["monitored"] = self.monitored
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.scheduler.load_state_dict(state["scheduler"])
        self.steps, self.epoch_lrs = int(state["steps"]), [list(x) for x in state["epoch_lrs"]]
        self.monitored = [float(x) for x in state.get("monitored", [])]


class RecipeImages(TrainingImages):
    """Training images through the recipe's torchvision v2 pipeline (resize, flip, pad + random crop,
    normalise, erasing). Each item's random draws come from torch's RNG seeded by ``(seed, epoch, index)``,
    so the batches do not depend on the number of loader workers.

    With ``resolved`` (the run's recipe) the images are decoded and resized once, into the decoded-image cache
    (:mod:`plipbench.data.decoded`, each distinct file once), and every epoch runs the pipeline from its uint8
    pixels: PIL's resize at the recipe's size and train interpolation is the pipeline's first step, and what
    follows (flip, zero pad, crop, scale, normalise, erasing) gives the same tensor on a uint8 tensor as on the
    PIL image, with the same random draws. ``transform`` is then the pipeline without its resize
    (:func:`~plipbench.recipes.build_train_transform` with ``decoded=True``). Without it, each item is decoded
    from its file every epoch and ``transform`` takes the PIL image."""

    def __init__(self, records: Any, transform: Any, labels: Any, *, seed: int = 0,
                 resolved: ResolvedRecipe | None = None) -> None:
        super().__init__(records, transform, labels, flip_probability=0.0, seed=seed)
        self._decoded: Any = None
        if resolved is not None:
            from plipbench.data.decoded import Resize, decoded_images

            paths = [str(r.image_path) for r in self.records]
            unique = list(dict.fromkeys(paths))  # text ReID repeats an image once per caption
            position = {path: i for i, path in enumerate(unique)}
            size = tuple(resolved.recipe.input.size)
            resize = Resize("torchvision", (int(size[0]), int(size[1])), resolved.recipe.input.train_interpolation)
            self._decoded = (decoded_images(unique, resize), [position[path] for path in paths])

    def _input(self, index: int) -> torch.Tensor:
        if self._decoded is None:
            return super()._input(index)
        import numpy as np
        import torch

        pixels, rows = self._decoded
        return self.transform(torch.from_numpy(np.array(pixels[rows[index]])).permute(2, 0, 1))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, str, int, int]:
        import torch

        seed = (self.seed * 1_000_003 + self.epoch) * 1_000_003 + index
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed % (2**63))
            return super().__getitem__(index)


def recipe_train_images(records: Any, resolved: ResolvedRecipe, labels: Any, *, seed: int) -> RecipeImages:
    """The run's training images: decoded once at the recipe's size, augmented by its pipeline every epoch."""
    from plipbench.recipes import build_train_transform

    return RecipeImages(records, build_train_transform(resolved, decoded=True), labels, seed=seed,
                        resolved=resolved)


def identity_batch(ctx: ProtocolContext, resolved: ResolvedRecipe) -> tuple[int, int]:
    """``(P, K)`` of the recipe's identity sampler."""
    sampler = resolved.recipe.sampler
    if sampler.kind != "identity":
        raise ConfigError(f"task {ctx.task.name}: recipe {resolved.name!r} has a {sampler.kind} sampler; "
                          "this protocol trains on P x K identity batches")
    return sampler.identities, sampler.instances

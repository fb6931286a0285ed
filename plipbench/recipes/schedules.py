"""The learning-rate schedule of a recipe, as torch schedulers stepped once per epoch.

:func:`lr_factor` is the schedule itself: the factor of the base lr in epoch ``epoch`` (0-based), with
the reference's own step counting (``schedule.epoch_offset``: BoT and TransReID step their scheduler
at the start of each epoch, so epoch 0 already runs at step 1). :func:`build_lr_scheduler` wraps it
in a :class:`torch.optim.lr_scheduler.LambdaLR` (one lambda per parameter group, so that the
``floors: base-lr`` groups of timm's CosineLRScheduler come out exact), or returns a
:class:`~torch.optim.lr_scheduler.ReduceLROnPlateau` for ``schedule.kind: plateau``. The training
loop calls ``scheduler.step()`` after each epoch (``scheduler.step(val_loss)`` for the plateau).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from typing import TYPE_CHECKING

from plipbench.recipes.schema import Recipe

if TYPE_CHECKING:
    import torch


def lr_factor(recipe: Recipe, epoch: int, group_factor: float = 1.0) -> float:
    """The lr of epoch ``epoch`` (0-based) as a factor of a param group's own lr.

    ``group_factor`` is that group's lr over the base lr (2 for TransReID's biases); it matters only
    with ``schedule.floors: base-lr``, where the warm-up start and the cosine floor are absolute.
    A plateau schedule has no fixed factor: 1 (the scheduler reacts to the loss).
    """
    schedule, warmup = recipe.schedule, recipe.warmup
    t = epoch + schedule.epoch_offset
    # the warm-up start and the cosine floor, as factors of this group's lr
    anchor = 1.0 / group_factor if schedule.floors == "base-lr" else 1.0
    if warmup is not None and t < warmup.epochs:
        start = warmup.start_factor * anchor
        return start + (1.0 - start) * t / warmup.epochs
    if schedule.kind == "multistep":
        return schedule.gamma ** bisect_right(schedule.milestones, t)
    if schedule.kind == "cosine":
        floor = schedule.min_factor * anchor
        begin = warmup.epochs if (warmup is not None and schedule.over == "after-warmup") else 0
        progress = min(1.0, (t - begin) / (recipe.epochs - begin))
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
    return 1.0


def build_lr_scheduler(
    optimizer: torch.optim.Optimizer, recipe: Recipe
) -> torch.optim.lr_scheduler.LambdaLR | torch.optim.lr_scheduler.ReduceLROnPlateau:
    """The recipe's scheduler over ``optimizer``, whose groups hold their full lrs (see
    :func:`plipbench.recipes.optim.build_optimizer`); step it once per epoch."""
    from torch.optim.lr_scheduler import LambdaLR, ReduceLROnPlateau

    schedule = recipe.schedule
    if schedule.kind == "plateau":
        return ReduceLROnPlateau(optimizer, mode="min", factor=schedule.factor, patience=schedule.patience)
    base = recipe.optimizer.lr
    lambdas = [
        (lambda epoch, g=group["lr"] / base: lr_factor(recipe, epoch, g)) for group in optimizer.param_groups
    ]
    return LambdaLR(optimizer, lambdas)

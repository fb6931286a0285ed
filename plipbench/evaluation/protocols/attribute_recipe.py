"""The attribute fine-tune run from a recipe: ``rethinking`` (Rethinking_of_PAR's ``pedes_baseline``) for CNN
backbones, ``solider-par`` for Swin and ViT backbones (:func:`plipbench.recipes.default_recipe`), or the recipe
the option ``recipe`` names (see :mod:`~plipbench.evaluation.protocols.recipe_run`).

Protocol choices (``../shared/reference/downstream-recipes.md`` §4.1, §4.2, §9.1):

- Model: a training copy of the image encoder (``ctx.backbone`` is never modified), trained through its public
  differentiable ``forward_image``, then ``Linear(D, L)`` with a bias (torch's default init, seeded; as
  Rethinking_of_PAR's ``LinearClassifier``), no BatchNorm on the logits unless the recipe sets
  ``neck.logits_bn``. One lr for encoder and classifier (``LR_FT = LR_NEW``; no x10 head).
- Labels: the task's evaluated attributes; RAP's "uncertain" 2 counts as 0.
- Data: the recipe's train pipeline (resize to ``input.size``, flip, pad 10 + random crop; torchvision v2),
  random batches of ``sampler.batch_size`` (64) with ``drop_last``; test and validation at ``input.size`` with
  the recipe's mean/std, resize only.
- Loss (:func:`recipe_bce`): BCE with logits, weights ``exp(1 - r_j)`` on positives and ``exp(r_j)`` on
  negatives (``r_j`` the positive ratio of attribute j in the train split), summed over attributes and
  averaged over the batch; ``weighting: none`` / ``reduction: mean`` as the recipe says.
- Optimizer: the recipe's (Adam with coupled L2 on every parameter), gradient norm clipped at
  ``grad_clip.max_norm`` (10).
- Schedule: the recipe's; ``plateau`` is :class:`torch.optim.lr_scheduler.ReduceLROnPlateau` (factor 0.1,
  patience 4) stepped once per epoch on the **validation loss** (the same weighted BCE on the selection split,
  with the evaluated weights). Without a val split (RAPv1) it watches the epoch's mean training loss, and
  ``details.plateau_monitor`` says so.
- EMA: ``ema`` (PA-100K in ``rethinking``: decay 0.9998, ``evaluate_ema``): timm's ModelEmaV3 of encoder and
  classifier, updated after every optimizer step; validation, the kept epoch and the test use the EMA weights
  (:func:`~plipbench.evaluation.protocols.loop.fine_tune_loop`).
- Selection: the epoch with the best mA (sigmoid > the task's threshold, 0.5) on the val split, earliest on
  ties; without a val split the last epoch. ``selection: test`` is the opt-in paper-compatible mode of the
  reference code (``VAL_SPLIT 'test'``): the plateau and the kept epoch then use the test split, and the result
  says ``selection_split: test`` and ``details.paper_compatible: true``.
- Test: ``sigmoid(logits)`` of the kept weights, no flip, evaluated as the other attribute protocols.
- Model parts as in the ReID recipe runs: a ViT is resampled to ``input.size``
  (:func:`~plipbench.evaluation.protocols.recipe_run.resample_for_recipe`), ``drop_path`` is set where the
  recipe has one, and ``autocast`` / ``channels_last`` / ``compile`` (:mod:`~plipbench.evaluation.protocols.accel`;
  the recipe's precision on CUDA, fp32 on CPU) are recorded in ``details``. SOLIDER's ``semantic_weight``
  (``backbone_args``) is listed in ``details.left_out``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from plipbench.errors import ConfigError, DataError
from plipbench.evaluation.protocols._training import (
    Stopwatch,
    fine_tune_loop,
    seeded,
    sync_batchnorm,
    training_copy,
)
from plipbench.evaluation.protocols.base import ProtocolContext, ProtocolOutput
from plipbench.evaluation.protocols.options import RecipeRunOptions

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from plipbench.data.records import PersonRecord
    from plipbench.recipes.schema import WeightedBCESpec


def recipe_bce(logits: torch.Tensor, targets: torch.Tensor, positive_ratio: torch.Tensor,
               spec: WeightedBCESpec) -> torch.Tensor:
    """The recipe's attribute loss, times ``spec.weight``.

    ``weighting: exp-ratio`` (Rethinking_of_PAR ``ratio2weight``): per element ``exp(1 - r_j)`` where the
    target is 1 and ``exp(r_j)`` where it is 0, ``r_j`` the training positive ratio of attribute j; ``none``:
    1. ``reduction: sum-attributes-mean-batch`` (their ``SIZESUM``): sum over attributes, mean over images;
    ``mean``: mean over all elements.

    Example: one image, one attribute with ``r = 0.25``, logit 0, target 1:
    ``exp(0.75) * log(2) = 1.4676``.
    """
    import torch
    import torch.nn.functional as F

    targets = targets.float()
    weights = None
    if spec.weighting == "exp-ratio":
        weights = torch.where(targets > 0.5, torch.exp(1 - positive_ratio), torch.exp(positive_ratio))
    loss = F.binary_cross_entropy_with_logits(logits.float(), targets, weight=weights, reduction="none")
    reduced = loss.sum(1).mean() if spec.reduction == "sum-attributes-mean-batch" else loss.mean()
    return spec.weight * reduced


def _split_roles(ctx: ProtocolContext, paper_compatible: bool) -> tuple[str | None, list[PersonRecord]]:
    """The split the plateau and the selection look at, and its records: val, test (opt-in) or none."""
    if paper_compatible:
        return "test", ctx.data.test_records
    if ctx.data.val_records:
        return "val", ctx.data.val_records
    return None, []


def recipe_fine_tune(ctx: ProtocolContext) -> ProtocolOutput:
    """The attribute fine-tune of a recipe (module docstring): ``rethinking`` / ``solider-par`` by default."""
    import numpy as np
    import torch

    from plipbench.evaluation.protocols.accel import accelerated_loader
    from plipbench.evaluation.protocols.attributes import (
        AttributeHeadBackbone,
        _evaluate,
        _output,
        attribute_head,
        attribute_labels,
        labelled_splits,
    )
    from plipbench.evaluation.protocols.recipe_run import (
        EpochScheduler,
        recipe_acceleration,
        recipe_details,
        recipe_model_parts,
        recipe_train_images,
        resolve_protocol_recipe,
    )
    from plipbench.evaluation.protocols.samplers import RandomBatchSampler
    from plipbench.recipes import build_lr_scheduler, build_optimizer

    # the run's own options typed here (RecipeRunOptions: none beyond those); the rest are overrides the recipe
    # resolver checks
    RecipeRunOptions.validate_run(ctx.options, f"task {ctx.task.name}, protocol {ctx.protocol.name} "
                                               f"({ctx.task.kind} {ctx.protocol.base})")
    resolved, options = resolve_protocol_recipe(ctx, "attributes", {})
    recipe = resolved.recipe
    where = f"task {ctx.task.name}: recipe {resolved.name!r}"
    if recipe.losses.active() != ["bce"]:
        raise ConfigError(f"{where}: an attribute fine-tune trains the bce loss only, the recipe has "
                          f"{', '.join(recipe.losses.active())}")
    if recipe.neck.kind != "none":
        raise ConfigError(f"{where}: neck.kind {recipe.neck.kind} does not apply to attributes (use none)")
    if recipe.sampler.kind != "random":
        raise ConfigError(f"{where}: the attribute fine-tune draws random batches, not a {recipe.sampler.kind} sampler")
    metric, train, test, names, y_train, y_test = labelled_splits(ctx)
    split, watched = _split_roles(ctx, resolved.paper_compatible)
    y_watched = attribute_labels(ctx, watched, split) if split else None
    sampler = RandomBatchSampler(len(train), recipe.sampler.batch_size, drop_last=recipe.sampler.drop_last,
                                 seed=ctx.seed)
    if len(sampler) == 0:
        raise DataError(None, f"{where}: batch_size {recipe.sampler.batch_size} with drop_last leaves no batch of "
                              f"{len(train)} train images; override batch_size")
    clock = Stopwatch()
    device = ctx.device

    encoder = training_copy(ctx.backbone, device)
    parts_done = recipe_model_parts(ctx, resolved, encoder)  # a ViT at 256 x 192 / 256 x 128 (SOLIDER-PAR)
    num_attributes = len(names)
    with seeded(ctx.seed, device):
        head = attribute_head(encoder.embedding_dim, num_attributes, logits_bn=recipe.neck.logits_bn,
                              bias=recipe.neck.classifier_bias, init_std=recipe.neck.classifier_init_std).to(device)
    encoder.module, head = sync_batchnorm(ctx, options, encoder.module, head)
    model = AttributeHeadBackbone(encoder, head, num_attributes)
    targets = torch.from_numpy(y_train.astype(np.float32)).to(device)
    positive_ratio = targets.mean(0)
    bce = recipe.losses.bce
    dataset = recipe_train_images(train, resolved, list(range(len(train))), seed=ctx.seed)
    accel = recipe_acceleration(ctx, options, resolved)
    loader = accelerated_loader(dataset, sampler, accel.prepare(encoder.module))
    optimizer = build_optimizer(model.module, recipe.optimizer)
    monitor = None
    if recipe.schedule.kind == "plateau":
        monitor = "val_loss" if split else "train_bce"
    scheduler = EpochScheduler(build_lr_scheduler(optimizer, recipe), optimizer, len(loader), monitor=monitor)
    left_out = []
    if recipe.precision != "fp32" and accel.precision == "fp32":
        left_out.append(f"precision {recipe.precision} (trained in fp32)")
    if recipe.backbone_args:
        left_out.append(f"backbone_args {recipe.backbone_args} (the backbone is used as built)")

    def train_step(batch: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor], int]:
        images, _, index = batch
        images, index = images.to(device), index.to(device)
        loss = recipe_bce(head(encoder.forward_image(images)), targets[index], positive_ratio, bce)
        return loss, {"bce": loss}, len(index)

    watched_targets = None if y_watched is None else torch.from_numpy(y_watched.astype(np.float32))

    def validate() -> dict[str, float]:
        logits = ctx.features.encode_images_with(model, watched).double().cpu()
        with torch.no_grad():
            loss = recipe_bce(logits, watched_targets, positive_ratio.cpu(), bce)
        mA = _evaluate(torch.sigmoid(logits).numpy(), y_watched, names, metric)["mA"]
        return {"score": float(mA), "loss": float(loss)}

    with clock("train_s"), seeded(ctx.seed + 1, device):
        record = fine_tune_loop(loader, sampler, dataset, optimizer, scheduler, epochs=recipe.train_epochs,
                                max_steps=options["max_steps"], train_modules=[model.module], step=train_step,
                                validate=validate if split else None, state_module=model.module,
                                clip_grad_norm=recipe.grad_clip.max_norm if recipe.grad_clip else None,
                                checkpoint=ctx.checkpoint, progress=ctx.progress, device=device,
                                label=f"attributes fine-tune ({resolved.name})", ema=recipe.ema, accel=accel)
    model.module.eval()
    with clock("test_features_s"):
        logits = ctx.features.encode_images_with(model, test)
        probs = torch.sigmoid(logits.double()).cpu().numpy()
    selected = record.best_epoch is not None
    details = {
        **recipe_details(resolved),
        "selection": f"best {split} mA" if selected else "last-epoch",
        "selection_mode": "paper-compatible (test)" if resolved.paper_compatible else "val",
        "selected_epoch": record.selected_epoch,
        "train_loss": [round(x.get("bce", 0.0), 6) for x in record.losses],
        "val_mA": [round(v, 6) for v in record.val_curve],
        "val_loss": [p["val_loss"] for p in record.curve if "val_loss" in p],
        "plateau_monitor": (None if monitor is None else
                            f"{split} loss" if split else "mean train loss of the epoch (no val split)"),
        "ema": None if recipe.ema is None else recipe.ema.model_dump(),
        "epoch_lr": [[float(f"{lr:.6g}") for lr in lrs] for lrs in scheduler.epoch_lrs],
        "steps": record.steps, "left_out": left_out, **parts_done,
        "acceleration": accel.details(),
        "num_train_images": len(train), "num_val_images": len(ctx.data.val_records),
        "train_positive_ratio": [round(float(r), 6) for r in y_train.astype(np.float64).mean(0)],
        "classifier": "Linear + BatchNorm1d on the logits" if recipe.neck.logits_bn else "Linear",
        "test_features": (f"sigmoid of the {'EMA' if recipe.ema and recipe.ema.evaluate_ema else 'fine-tuned'} "
                          f"copy's logits at {list(recipe.input.size)}, no flip"),
        "curve": record.curve,
    }  # fmt: skip
    options["resolved_overrides"] = dict(resolved.overrides)
    return _output(ctx, probs, y_test, metric, options, details, split if selected else None, clock,
                   zero_shot=False)

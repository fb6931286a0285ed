"""Image ReID protocols: zero-shot retrieval with frozen features and a BoT-style fine-tune.

Shared evaluation: query vs gallery with :func:`plipbench.metrics.evaluate_reid` (Market-1501 protocol:
same-id same-camera gallery items removed, queries without a positive skipped) under the task's
``metric_options`` (``metric``, ``ap``, ``max_rank``). Scores ``R@1``, ``R@5``, ``R@10`` (CMC at ranks
1, 5, 10, those not above ``max_rank``), ``mAP``, ``mINP``; ``per_query`` holds ``AP``, ``INP``,
``first_hit_rank`` (-1 for skipped queries) and ``valid`` (the queries that count), so that
``AP[valid].mean() == mAP`` under ``ap="noninterp"``.

Options shared by both protocols: ``flip`` (default false: the feature of an image is the average of
its feature and its mirror image's feature, un-normalised, as fast-reid's flip test) and ``rerank``
(default null, else ``{k1, k2, lambda_value}`` for k-reciprocal re-ranking, Zhong et al. 2017).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from plipbench.evaluation.protocols._training import (
    Stopwatch,
    fine_tune_loop,
    pk_sampler,
    relabel,
    require_records,
    resolve_metric_options,
    resolve_options,
    seeded,
    sync_batchnorm,
    training_copy,
    training_loader,
    warmup_scheduler,
)
from plipbench.evaluation.protocols.base import ProtocolContext, ProtocolOutput
from plipbench.evaluation.protocols.losses import batch_hard_triplet_loss
from plipbench.evaluation.protocols.options import (
    ImageFineTuneOptions,
    ImageRecipeRunOptions,
    ImageZeroShotOptions,
    RecipeRunOptions,
)
from plipbench.models.backbone import Backbone

if TYPE_CHECKING:  # pragma: no cover
    import torch

IMAGE_METRIC_DEFAULTS: dict[str, Any] = {"metric": "cosine", "ap": "noninterp", "max_rank": 50}
CMC_RANKS = (1, 5, 10)

#: the short fine-tune's defaults (:class:`~plipbench.evaluation.protocols.options.ImageFineTuneOptions`)
IMAGE_FINE_TUNE_DEFAULTS: dict[str, Any] = ImageFineTuneOptions.defaults()


def _features(ctx: ProtocolContext, records: list, encode: Any, flip: bool) -> torch.Tensor:
    features = encode(records, flip=False)
    if flip:
        features = (features + encode(records, flip=True)) / 2
    return features


def evaluate_image_retrieval(ctx: ProtocolContext, query: torch.Tensor, gallery: torch.Tensor,
                             rerank: dict | None) -> tuple[dict[str, float], dict[str, Any], dict[str, Any],
                                                           dict[str, Any]]:
    """``(scores, per_query, details, metric_protocol)`` of query vs gallery under the task's metric options."""
    from plipbench.metrics import evaluate_reid

    metric = resolve_metric_options(ctx, IMAGE_METRIC_DEFAULTS)
    q, g = ctx.data.query_records, ctx.data.gallery_records
    result = evaluate_reid(
        query_features=query, gallery_features=gallery, metric=metric["metric"], ap=metric["ap"],
        max_rank=metric["max_rank"], q_pids=[r.pid for r in q], g_pids=[r.pid for r in g],
        q_camids=[r.camid for r in q], g_camids=[r.camid for r in g], rerank=rerank, return_per_query=True,
    )  # fmt: skip
    cmc = result["cmc"]
    scores = {f"R@{k}": float(cmc[k - 1]) for k in CMC_RANKS if k <= len(cmc)}
    scores.update(mAP=result["mAP"], mINP=result["mINP"])
    per_query = {name: result["per_query"][name] for name in ("AP", "INP", "first_hit_rank", "valid")}
    details = {"num_queries": result["num_queries"], "num_valid_queries": result["num_valid_queries"],
               "num_gallery": len(g)}
    return scores, per_query, details, result["protocol"]


def _require_eval_records(ctx: ProtocolContext) -> None:
    require_records(ctx, ctx.data.query_records, "query")
    require_records(ctx, ctx.data.gallery_records, "gallery")


# -- zero-shot ------------------------------------------------------------------------------------
def zero_shot(ctx: ProtocolContext) -> ProtocolOutput:
    """Image-to-image retrieval with the frozen pre-trained image encoder (PLIP's "zero-shot" image ReID).

    Features of query and gallery images from the feature store (backbone transform; with ``flip`` the
    average of the image's and its mirror's features); distances and ranking per the task's metric
    options; optional k-reciprocal ``rerank``. No training, no model selection.
    """
    options = resolve_options(ctx, ImageZeroShotOptions)
    resolve_metric_options(ctx, IMAGE_METRIC_DEFAULTS)
    _require_eval_records(ctx)
    clock = Stopwatch()
    query = _features(ctx, ctx.data.query_records, ctx.features.image_features, options["flip"])
    gallery = _features(ctx, ctx.data.gallery_records, ctx.features.image_features, options["flip"])
    with clock("metric_s"):
        scores, per_query, details, protocol = evaluate_image_retrieval(ctx, query, gallery, options["rerank"])
    return ProtocolOutput(scores=scores, per_query=per_query, details=details, metric_protocol=protocol,
                          options=options, selection_split=None, timings=clock.timings, zero_shot=True)


# -- fine-tune ------------------------------------------------------------------------------------
class BNNeckBackbone(Backbone):
    """A backbone whose image embedding is the BNNeck output ``bn(encoder(x))`` (BoT test feature)."""

    def __init__(self, encoder: Backbone, neck: Any) -> None:
        import torch

        self.encoder, self.neck = encoder, neck
        self.module = torch.nn.ModuleDict({"encoder": encoder.module, "neck": neck})
        self.metadata = encoder.metadata.model_copy(update={"modalities": ("image",)})
        self.image_transform = encoder.image_transform
        self._fingerprint = None

    def _encode_image(self, images: torch.Tensor) -> torch.Tensor:
        return self.neck(self.encoder._encode_image(images).float())


def _training_setup(ctx: ProtocolContext) -> tuple[list[Any], Any, int, Backbone]:
    """What both fine-tunes start from: the metric options and eval records checked, the train records with
    their pids relabelled 0..C-1 (and C), and a trainable copy of the backbone on ``ctx.device``."""
    resolve_metric_options(ctx, IMAGE_METRIC_DEFAULTS)
    _require_eval_records(ctx)
    train = ctx.data.train_records
    require_records(ctx, train, "train")
    labels, num_classes = relabel([r.pid for r in train])
    return train, labels, num_classes, training_copy(ctx.backbone, ctx.device)


def fine_tune(ctx: ProtocolContext) -> ProtocolOutput:
    """Fine-tune the image encoder: from a recipe (:func:`recipe_fine_tune`) when the option ``recipe`` is given
    or the task is on real data, else the short hand-written BoT-style fine-tune below.

    BoT-style fine-tuning (Luo et al. 2019, "Bag of Tricks and a Strong Baseline") of the image encoder.

    Choices:

    - A deep copy of the backbone's image encoder (``ctx.backbone`` is never modified) + BNNeck
      (``BatchNorm1d(D)`` whose bias is fixed at 0, BoT's "no bias shift") + a bias-free linear classifier
      over the training identities (init N(0, 0.001)), all seeded.
    - Loss: cross-entropy with label smoothing ``label_smoothing`` (0.1) on the classifier logits of the
      post-BN feature + batch-hard triplet loss (``margin`` 0.3, euclidean) on the pre-BN feature.
    - P x K batches (``identities_per_batch`` x ``images_per_identity``; P is lowered when a few-shot
      subset has too few identities, see ``details``), horizontal flip with ``flip_probability``.
    - AdamW (``lr``, ``weight_decay``; BoT uses Adam 3.5e-4), optional linear warm-up over
      ``warmup_steps``, ``epochs``, ``max_steps`` caps the total. For large pre-trained ViTs a smaller
      ``lr`` (e.g. 1e-5) is advisable. ``sync_bn`` (false): SyncBatchNorm under torchrun on CUDA.
    - Selection: ReID datasets have no val split, so the last epoch is kept (``selection_split`` None);
      nothing of the target is used for training or selection (domain generalization: the train records
      are the source's).
    - Test features: the post-BN feature (BoT's ``neck_feat="after"``, eval-mode running statistics),
      from the fine-tuned copy (uncached), optionally with ``flip``; then evaluated as :func:`zero_shot`.
    """
    import torch
    import torch.nn.functional as F

    from plipbench.evaluation.protocols._training import TrainingImages
    from plipbench.evaluation.protocols.recipe_run import wants_recipe

    if wants_recipe(ctx):
        return recipe_fine_tune(ctx)
    options = resolve_options(ctx, ImageFineTuneOptions)
    train, labels, num_classes, encoder = _training_setup(ctx)
    clock = Stopwatch()
    device = ctx.device
    dim = encoder.embedding_dim
    with seeded(ctx.seed, device):
        neck = torch.nn.BatchNorm1d(dim).to(device)
        classifier = torch.nn.Linear(dim, num_classes, bias=False).to(device)
        torch.nn.init.normal_(classifier.weight, std=0.001)
    neck.bias.requires_grad_(False)
    encoder.module, neck = sync_batchnorm(ctx, options, encoder.module, neck)
    model = BNNeckBackbone(encoder, neck)
    dataset = TrainingImages(train, encoder.image_transform, labels,
                             flip_probability=options["flip_probability"], seed=ctx.seed)
    sampler, p_eff = pk_sampler([r.pid for r in train], options["identities_per_batch"],
                                options["images_per_identity"], ctx.seed)
    loader = training_loader(dataset, sampler, options["num_workers"])
    params = [p for p in model.module.parameters() if p.requires_grad] + list(classifier.parameters())
    optimizer = torch.optim.AdamW(params, lr=options["lr"], weight_decay=options["weight_decay"])
    scheduler = warmup_scheduler(optimizer, options["warmup_steps"])

    def train_step(batch: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor], int]:
        images, _, batch_labels = batch
        images, batch_labels = images.to(device), batch_labels.to(device)
        feature = encoder._encode_image(images).float()
        logits = classifier(neck(feature))
        id_loss = F.cross_entropy(logits, batch_labels, label_smoothing=options["label_smoothing"])
        triplet = batch_hard_triplet_loss(feature, batch_labels, options["margin"])
        return id_loss + triplet, {"id": id_loss, "triplet": triplet}, 1

    # seeded: dropout or stochastic depth in a backbone draws from torch's RNG, which must not depend on
    # what ran before in the process
    with clock("train_s"), seeded(ctx.seed + 1, device):
        record = fine_tune_loop(loader, sampler, dataset, optimizer, scheduler, epochs=options["epochs"],
                                max_steps=options["max_steps"], train_modules=[model.module, classifier],
                                step=train_step, checkpoint=ctx.checkpoint, progress=ctx.progress, device=device, label="image-reid fine-tune")
    model.module.eval()
    with clock("test_features_s"):
        encode = lambda records, flip: ctx.features.encode_images_with(model, records, flip=flip).cpu()  # noqa: E731
        query = _features(ctx, ctx.data.query_records, encode, options["flip"])
        gallery = _features(ctx, ctx.data.gallery_records, encode, options["flip"])
    with clock("metric_s"):
        scores, per_query, details, protocol = evaluate_image_retrieval(ctx, query, gallery, options["rerank"])
    details.update(
        selection="last-epoch", selected_epoch=record.selected_epoch,
        train_loss=[{k: round(v, 6) for k, v in epoch.items()} for epoch in record.losses], steps=record.steps,
        num_train_images=len(train), num_train_identities=num_classes, effective_identities_per_batch=p_eff,
        sampler=sampler.describe(), test_features="post-BNNeck feature of the fine-tuned copy", curve=record.curve,
    )  # fmt: skip
    return ProtocolOutput(scores=scores, per_query=per_query, details=details, metric_protocol=protocol,
                          options=options, selection_split=None, timings=clock.timings, zero_shot=False)


def recipe_fine_tune(ctx: ProtocolContext) -> ProtocolOutput:
    """The image ReID fine-tune of a recipe (``bot`` for CNNs, ``transreid`` for ViT/Swin by default; the
    option ``recipe`` names another, see :mod:`~plipbench.evaluation.protocols.recipe_run`).

    A training copy of the encoder (``ctx.backbone`` is never modified), last stride 1 where the recipe says
    so (ResNet-like backbones, the CLIP/PLIP ModifiedResNet included), the recipe's BNNeck (frozen bias) and
    classifier; the recipe's train pipeline (resize, flip, pad + random crop, timm/torchvision random erasing);
    P x K identity batches; CE with label smoothing on the chosen neck feature + batch-hard triplet (margin or
    soft margin); the recipe's optimizer (bias lr factor and bias weight decay) and per-epoch schedule;
    gradient clipping where the recipe has it. Test: the recipe's feature (before or after the BNNeck) at the
    recipe's size and mean/std; ``flip`` / ``rerank`` default to the recipe's test settings. The last epoch is
    kept (ReID datasets have no val split); ``selection: test`` is recorded as the paper-compatible mode.

    Model parts, each recorded in ``details``:

    - ``position_embedding``: a ViT whose native size is not the recipe's gets its position embedding resampled
      to the recipe's grid on the training copy (:func:`plipbench.models.resize.resize_backbone_input`,
      TransReID's ``resize_pos_embed``: class token kept, bilinear, ``align_corners=False``), so it trains and is
      tested at the recipe's size (``input_size: native`` keeps the backbone's own); a ViT the resizer does not
      know, or a recipe with ``position_embedding.resample`` off at another size, is a ConfigError;
    - ``drop_path``: the recipe's rate (TransReID 0.1) set on the copy's timm blocks, linearly increasing from 0
      as ``timm.create_model(drop_path_rate=...)`` does (:func:`plipbench.models.drop_path.set_drop_path`); a
      backbone without timm blocks (a CNN, a CLIP tower) is recorded as not applied, with the reason;
    - ``center_loss`` (``losses.center.enabled``, BoT's ``softmax_triplet_with_center``): ``weight`` x
      :class:`~plipbench.evaluation.protocols.losses.CenterLoss` on the recipe's feature (pre-BN), one centre per
      training identity (``randn``, seeded), stepped by its own SGD at ``losses.center.lr`` (0.5) with the centre
      gradient divided by the weight before the step; the centres are not in the model's optimizer or schedule,
      and their optimizer is checkpointed for resume.
    """
    import torch
    import torch.nn.functional as F

    from plipbench.evaluation.protocols.accel import accelerated_loader
    from plipbench.evaluation.protocols.heads import bnneck_head, set_last_stride_one
    from plipbench.evaluation.protocols.losses import CenterLoss, CenterSGD
    from plipbench.evaluation.protocols.recipe_run import (
        EpochScheduler,
        identity_batch,
        recipe_acceleration,
        recipe_details,
        recipe_model_parts,
        recipe_train_images,
        resolve_protocol_recipe,
    )
    from plipbench.recipes import build_lr_scheduler, build_optimizer

    # the run's own options typed here (ImageRecipeRunOptions); the rest are overrides the recipe resolver checks
    ImageRecipeRunOptions.validate_run(ctx.options, f"task {ctx.task.name}, protocol {ctx.protocol.name} "
                                                    f"({ctx.task.kind} {ctx.protocol.base})")
    own_extra = {k: v for k, v in ImageRecipeRunOptions.defaults().items() if k not in RecipeRunOptions.model_fields}
    resolved, options = resolve_protocol_recipe(ctx, "image-reid", own_extra)
    recipe = resolved.recipe
    if options["flip"] is None:
        options["flip"] = recipe.test.flip
    if options["rerank"] is None and recipe.test.rerank is not None and recipe.test.rerank.enabled:
        options["rerank"] = recipe.test.rerank.model_dump(exclude={"enabled"})
    train, labels, num_classes, encoder = _training_setup(ctx)
    clock = Stopwatch()
    device = ctx.device
    stride_changes = set_last_stride_one(encoder.module) if recipe.last_stride == 1 else []
    parts_done = recipe_model_parts(ctx, resolved, encoder)
    test_spec = encoder.image_transform
    dim = encoder.embedding_dim
    center = recipe.losses.center if recipe.losses.center is not None and recipe.losses.center.enabled else None
    with seeded(ctx.seed, device):
        neck, classifier = bnneck_head(dim, num_classes, recipe.neck)
        center_loss = CenterLoss(num_classes, dim) if center is not None else None
    neck, classifier = neck.to(device), classifier.to(device)
    encoder.module, neck = sync_batchnorm(ctx, options, encoder.module, neck)
    model = BNNeckBackbone(encoder, neck)
    model.image_transform = test_spec
    dataset = recipe_train_images(train, resolved, labels, seed=ctx.seed)
    p, k = identity_batch(ctx, resolved)
    sampler, p_eff = pk_sampler([r.pid for r in train], p, k, ctx.seed)
    accel = recipe_acceleration(ctx, options, resolved)
    loader = accelerated_loader(dataset, sampler, accel.prepare(encoder.module))
    trained = torch.nn.ModuleDict({"encoder": encoder.module, "neck": neck, "classifier": classifier})
    optimizer = build_optimizer(trained, recipe.optimizer)
    scheduler = EpochScheduler(build_lr_scheduler(optimizer, recipe), optimizer, len(loader))
    ce, triplet = recipe.losses.ce, recipe.losses.triplet
    train_modules: list[Any] = [trained]
    extra_optimizers: list[Any] = []
    if center_loss is not None:
        center_loss = center_loss.to(device)
        train_modules.append(center_loss)  # checkpointed and all-reduced with the model, stepped by its own SGD
        extra_optimizers.append(CenterSGD(center_loss.parameters(), lr=center.lr, loss_weight=center.weight))

    def train_step(batch: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor], int]:
        images, _, batch_labels = batch
        images, batch_labels = images.to(device), batch_labels.to(device)
        feature = encoder.forward_image(images)
        after = neck(feature)
        parts: dict[str, torch.Tensor] = {}
        if ce is not None:
            logits = classifier(after if ce.feature == "after-bn" else feature)
            parts["id"] = ce.weight * F.cross_entropy(logits, batch_labels, label_smoothing=ce.label_smoothing)
        if triplet is not None:
            chosen = after if triplet.feature == "after-bn" else feature
            parts["triplet"] = triplet.weight * batch_hard_triplet_loss(
                chosen, batch_labels, triplet.margin, normalize=triplet.normalize)
        if center_loss is not None:
            parts["center"] = center.weight * center_loss(after if center.feature == "after-bn" else feature,
                                                          batch_labels)
        return sum(parts.values()), parts, 1

    with clock("train_s"), seeded(ctx.seed + 1, device):
        record = fine_tune_loop(loader, sampler, dataset, optimizer, scheduler, epochs=recipe.train_epochs,
                                max_steps=options["max_steps"], train_modules=train_modules, step=train_step,
                                clip_grad_norm=recipe.grad_clip.max_norm if recipe.grad_clip else None,
                                checkpoint=ctx.checkpoint, progress=ctx.progress, device=device,
                                label=f"image-reid fine-tune ({resolved.name})", extra_optimizers=extra_optimizers,
                                accel=accel, ema=recipe.ema, state_module=trained)
    trained.eval()
    test_model = model if recipe.test.feature == "after-bn" else encoder
    with clock("test_features_s"):
        encode = lambda records, flip: ctx.features.encode_images_with(test_model, records, flip=flip).cpu()  # noqa: E731
        query = _features(ctx, ctx.data.query_records, encode, options["flip"])
        gallery = _features(ctx, ctx.data.gallery_records, encode, options["flip"])
    with clock("metric_s"):
        scores, per_query, details, protocol = evaluate_image_retrieval(ctx, query, gallery, options["rerank"])
    details.update(recipe_details(resolved))
    details.update(
        selection="last-epoch", selection_mode="paper-compatible (test)" if resolved.paper_compatible else "val",
        selected_epoch=record.selected_epoch, steps=record.steps,
        train_loss=[{k: round(v, 6) for k, v in epoch.items()} for epoch in record.losses],
        epoch_lr=[[float(f"{lr:.6g}") for lr in lrs] for lrs in scheduler.epoch_lrs],
        num_train_images=len(train), num_train_identities=num_classes, effective_identities_per_batch=p_eff,
        sampler=sampler.describe(), curve=record.curve,
        last_stride=stride_changes or ("not applied: no ResNet-like last stage" if recipe.last_stride == 1
                                       else "unchanged"),
        **parts_done, acceleration=accel.details(),
        ema=None if recipe.ema is None else recipe.ema.model_dump(),
        center_loss="off" if center is None else {
            "weight": center.weight, "lr": center.lr, "feature": center.feature, "centers": [num_classes, dim],
            "optimizer": "SGD, centre gradient x 1/weight before each step (reid-strong-baseline)"},
        test_features=f"{recipe.test.feature} feature of the fine-tuned copy at {list(recipe.input.size)}",
    )  # fmt: skip
    options["resolved_overrides"] = dict(resolved.overrides)
    return ProtocolOutput(scores=scores, per_query=per_query, details=details, metric_protocol=protocol,
                          options=options, selection_split=None, timings=clock.timings, zero_shot=False)

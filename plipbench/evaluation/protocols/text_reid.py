"""Text-based person ReID protocols: zero-shot, linear probe (PLIP Tab. 2) and CMPM/C fine-tuning.

Shared evaluation (every protocol): the gallery is every test-split image once, the queries are every
caption of every test image (query id = the image's id), ranked by cosine similarity with
:func:`plipbench.metrics.evaluate_retrieval` (IRRA protocol: no camera filtering, all queries count).
Scores ``R@k`` (for the task's ``metric_options.ks``), ``mAP``, ``mINP``; ``per_query`` holds ``AP``,
``INP`` and ``first_hit_rank`` of the text-to-image queries. Model selection (linear probe,
fine-tune) uses the val split of the training (source) dataset, never a test split; without one the
last epoch is kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from plipbench.errors import DataError
from plipbench.evaluation.protocols._training import (
    Stopwatch,
    caption_pairs,
    fine_tune_loop,
    l2_normalize,
    pk_sampler,
    relabel,
    require_records,
    require_text,
    resolve_metric_options,
    resolve_options,
    seeded,
    state_copy,
    sync_batchnorm,
    training_copy,
    training_loader,
    warmup_scheduler,
)
from plipbench.evaluation.protocols.base import ProtocolContext, ProtocolOutput
from plipbench.evaluation.protocols.options import (
    RecipeRunOptions,
    TextFineTuneOptions,
    TextLinearProbeOptions,
    TextRecipeRunOptions,
    TextZeroShotOptions,
)

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from plipbench.data.records import PersonRecord
    from plipbench.models.backbone import Backbone

TEXT_METRIC_DEFAULTS: dict[str, Any] = {"ks": [1, 5, 10]}



# -- shared ------------------------------------------------------------------------------------
def _metric_options(ctx: ProtocolContext) -> dict[str, Any]:
    from plipbench.errors import ConfigError

    metric = resolve_metric_options(ctx, TEXT_METRIC_DEFAULTS)
    ks = metric["ks"]
    if isinstance(ks, int) and not isinstance(ks, bool):
        ks = [ks]
    if not isinstance(ks, list) or not ks or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in ks):
        raise ConfigError(f"task {ctx.task.name}: metric option 'ks' expects a list of positive integers, got {ks!r}")
    metric["ks"] = list(ks)
    return metric


def _test_captions(ctx: ProtocolContext) -> tuple[list[PersonRecord], list[str], list[int]]:
    records = ctx.data.test_records
    require_records(ctx, records, "test")
    captions, _, pids = caption_pairs(records)
    if not captions:
        raise DataError(None, f"task {ctx.task.name}: the test split has no captions to use as queries")
    return records, captions, pids


def evaluate_text_retrieval(
    image_features: torch.Tensor,
    text_features: torch.Tensor,
    image_pids: Sequence[int],
    text_pids: Sequence[int],
    *,
    ks: Sequence[int],
    directions: Sequence[str] = ("t2i",),
) -> tuple[dict[str, float], dict[str, Any], dict[str, Any], dict[str, Any]]:
    """``(scores, per_query, details, metric_protocol)`` of text-to-image (and image-to-text) retrieval.

    Image-to-text scores are prefixed ``i2t_``; their per-query arrays are not returned (they have a
    different length: one row per gallery image).
    """
    from plipbench.metrics import evaluate_retrieval

    result = evaluate_retrieval(query_features=text_features, gallery_features=image_features, q_pids=text_pids,
                                g_pids=image_pids, ks=ks, return_per_query=True)
    scores = {f"R@{k}": result[f"R@{k}"] for k in ks}
    scores.update(mAP=result["mAP"], mINP=result["mINP"])
    per_query = {name: result["per_query"][name] for name in ("AP", "INP", "first_hit_rank")}
    details: dict[str, Any] = {
        "num_queries": result["num_queries"],
        "num_gallery": int(len(image_pids)),
        "num_queries_without_match": result["num_queries_without_match"],
        "directions": list(directions),
    }
    if "i2t" in directions:
        back = evaluate_retrieval(query_features=image_features, gallery_features=text_features,
                                  q_pids=image_pids, g_pids=text_pids, ks=ks)
        scores.update({f"i2t_R@{k}": back[f"R@{k}"] for k in ks})
        scores.update(i2t_mAP=back["mAP"], i2t_mINP=back["mINP"])
        details["i2t_num_queries_without_match"] = back["num_queries_without_match"]
    return scores, per_query, details, result["protocol"]


def _val_r1(image_features: torch.Tensor, text_features: torch.Tensor, image_pids: list[int],
            text_pids: list[int]) -> float:
    from plipbench.metrics import evaluate_retrieval

    return float(evaluate_retrieval(query_features=text_features, gallery_features=image_features,
                                    q_pids=text_pids, g_pids=image_pids, ks=(1,))["R@1"])


def _usable_val(records: list[PersonRecord]) -> bool:
    return bool(records) and any(r.captions for r in records)


# -- zero-shot ------------------------------------------------------------------------------------
def zero_shot(ctx: ProtocolContext) -> ProtocolOutput:
    """Text-to-image retrieval with the frozen pre-trained encoders, no training (PLIP Tab. 2 "zero-shot").

    Gallery: every test-split image once (features from the feature store: the backbone's transform,
    no flip). Queries: every caption of every test image. Similarity: cosine. Option ``directions``
    (default ``["t2i"]``): add ``"i2t"`` for image-to-text scores too (``i2t_R@k``, ``i2t_mAP``,
    ``i2t_mINP``; queries = test images, gallery = test captions).
    """
    options = resolve_options(ctx, TextZeroShotOptions)
    metric = _metric_options(ctx)
    require_text(ctx)
    records, captions, text_pids = _test_captions(ctx)
    clock = Stopwatch()
    text_features = ctx.features.text_features(captions, task=ctx.task.name)
    image_features = ctx.features.image_features(records)
    with clock("metric_s"):
        scores, per_query, details, protocol = evaluate_text_retrieval(
            image_features, text_features, [r.pid for r in records], text_pids, ks=metric["ks"],
            directions=options["directions"])
    return ProtocolOutput(scores=scores, per_query=per_query, details=details, metric_protocol=protocol,
                          options=options, selection_split=None, timings=clock.timings, zero_shot=True)


# -- linear probe ---------------------------------------------------------------------------------
def linear_probe(ctx: ProtocolContext) -> ProtocolOutput:
    """Frozen encoders + one trainable linear layer per modality, trained with CMPM (PLIP Tab. 2 "linear probe").

    Choices:

    - Inputs: the frozen features (feature store, no flip) are L2-normalised and multiplied by
      ``input_scale`` (default 10), so the probe does not depend on each backbone's feature norm. CMPM's
      logits are ``|image embedding| x cosine``: the scale acts as an initial inverse temperature that
      the layer can then learn to change.
    - Layers: ``nn.Linear(D, D)`` for images and one for texts. ``init="identity"`` (default: weight =
      identity, bias = 0, so training starts from the zero-shot solution) or ``"random"`` (PyTorch's
      default init, seeded).
    - Training pairs: every (train image, one of its captions); P x K batches over identities
      (:class:`IdentityBatchSampler`, P = ``identities_per_batch``, K = ``images_per_identity`` pairs per
      identity); :func:`identity_contrastive_loss` (CMPM, both directions); Adam, ``lr``,
      ``weight_decay``, ``epochs``.
    - Selection: after each epoch, R@1 (text-to-image) on the val split of the training dataset through
      the current layers; the best epoch is kept (earliest on ties). Without a usable val split (none,
      or no captions) the last epoch is kept (``selection_split`` None, ``details["selection"]``
      ``"last-epoch"``). The test split is never looked at before the final evaluation.
    """
    import torch

    from plipbench.pretrain.contrastive import identity_contrastive_loss

    options = resolve_options(ctx, TextLinearProbeOptions)
    metric = _metric_options(ctx)
    require_text(ctx)
    require_records(ctx, ctx.data.train_records, "train")
    test_records, test_captions, test_text_pids = _test_captions(ctx)
    clock = Stopwatch()
    device = ctx.device

    train = ctx.data.train_records
    train_captions, owners, pair_pids = caption_pairs(train)
    if not train_captions:
        raise DataError(None, f"task {ctx.task.name}: the train split has no captions to train the probe")
    scale = options["input_scale"]

    def prepare(features: torch.Tensor) -> torch.Tensor:
        return (l2_normalize(features) * scale).to(device)

    train_images = prepare(ctx.features.image_features(train))
    train_texts = prepare(ctx.features.text_features(train_captions, task=ctx.task.name))
    val = ctx.data.val_records if _usable_val(ctx.data.val_records) else []
    if val:
        val_captions, _, val_text_pids = caption_pairs(val)
        val_images = prepare(ctx.features.image_features(val))
        val_texts = prepare(ctx.features.text_features(val_captions, task=ctx.task.name))
        val_image_pids = [r.pid for r in val]

    dim = train_images.shape[1]
    with seeded(ctx.seed, device):
        image_layer = torch.nn.Linear(dim, dim).to(device)
        text_layer = torch.nn.Linear(dim, dim).to(device)
    if options["init"] == "identity":
        with torch.no_grad():
            for layer in (image_layer, text_layer):
                layer.weight.copy_(torch.eye(dim, device=device))
                layer.bias.zero_()
    layers = torch.nn.ModuleDict({"image": image_layer, "text": text_layer})
    optimizer = torch.optim.Adam(layers.parameters(), lr=options["lr"], weight_decay=options["weight_decay"])
    sampler, p_eff = pk_sampler(pair_pids, options["identities_per_batch"], options["images_per_identity"], ctx.seed)
    owner_index = torch.tensor(owners, device=device)
    pid_tensor = torch.tensor(pair_pids, device=device)

    losses: list[float] = []
    val_curve: list[float] = []
    best: tuple[float, int, dict[str, Any]] | None = None
    with clock("train_s"):
        for epoch in range(options["epochs"]):
            sampler.set_epoch(epoch)
            layers.train()
            total, steps = 0.0, 0
            for batch in sampler:
                index = torch.tensor(batch, device=device)
                loss = identity_contrastive_loss(image_layer(train_images[owner_index[index]]),
                                                 text_layer(train_texts[index]), pid_tensor[index])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total, steps = total + loss.item(), steps + 1
            losses.append(total / max(steps, 1))
            if val:
                layers.eval()
                with torch.no_grad():
                    r1 = _val_r1(image_layer(val_images).cpu(), text_layer(val_texts).cpu(), val_image_pids,
                                 val_text_pids)
                val_curve.append(r1)
                if best is None or r1 > best[0]:
                    best = (r1, epoch, state_copy(layers))
    if best is not None:
        layers.load_state_dict(best[2])
    layers.eval()
    with torch.no_grad():
        test_images = image_layer(prepare(ctx.features.image_features(test_records))).cpu()
        test_texts = text_layer(prepare(ctx.features.text_features(test_captions, task=ctx.task.name))).cpu()
    with clock("metric_s"):
        scores, per_query, details, protocol = evaluate_text_retrieval(
            test_images, test_texts, [r.pid for r in test_records], test_text_pids, ks=metric["ks"],
            directions=options["directions"])
    details.update(
        selection="best val R@1" if best is not None else "last-epoch",
        selected_epoch=(best[1] if best is not None else options["epochs"] - 1) + 1,
        train_loss=[round(x, 6) for x in losses],
        val_R1=[round(x, 6) for x in val_curve],
        num_train_pairs=len(train_captions),
        num_train_identities=len(set(pair_pids)),
        effective_identities_per_batch=p_eff,
        sampler=sampler.describe(),
    )
    return ProtocolOutput(scores=scores, per_query=per_query, details=details, metric_protocol=protocol,
                          options=options, selection_split="val" if best is not None else None,
                          timings=clock.timings, zero_shot=False)


# -- fine-tune ------------------------------------------------------------------------------------
def cmpc_loss(image_emb: torch.Tensor, text_emb: torch.Tensor, labels: torch.Tensor,
              weight: torch.Tensor) -> torch.Tensor:
    """CMPC (Zhang & Lu 2018): classify each modality's projection onto the other with a column-normalised W.

    ``image_proj = <image, text_unit> text_unit``, ``text_proj = <text, image_unit> image_unit``;
    logits = ``proj @ (W / |W|_col)``; cross-entropy of both, summed.
    """
    import torch.nn.functional as F

    image_emb, text_emb = image_emb.float(), text_emb.float()
    w = weight / weight.norm(dim=0, keepdim=True).clamp_min(1e-12)
    image_unit, text_unit = F.normalize(image_emb, dim=1), F.normalize(text_emb, dim=1)
    image_proj = (image_emb * text_unit).sum(1, keepdim=True) * text_unit
    text_proj = (text_emb * image_unit).sum(1, keepdim=True) * image_unit
    return F.cross_entropy(image_proj @ w, labels) + F.cross_entropy(text_proj @ w, labels)


def _encode_with(ctx: ProtocolContext, model: Backbone, records: list[PersonRecord],
                 captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    images = ctx.features.encode_images_with(model, records)
    texts = model.encode_texts(captions, batch_size=128, task=ctx.task.name).cpu()
    return images.cpu(), texts


def _fine_tune_inputs(ctx: ProtocolContext) -> tuple[dict[str, Any], list[Any], list[Any], tuple[Any, Any, Any]]:
    """What both text fine-tunes (short and recipe) train and test on: the metric options, the captioned train
    records, the val records (empty when unusable) and the test images, captions and caption pids."""
    metric = _metric_options(ctx)
    require_text(ctx)
    train = [r for r in ctx.data.train_records if r.captions]
    if not train:
        raise DataError(None, f"task {ctx.task.name}: the train split has no captioned images to fine-tune on")
    test = _test_captions(ctx)
    val = ctx.data.val_records if _usable_val(ctx.data.val_records) else []
    return metric, train, val, test


def fine_tune(ctx: ProtocolContext) -> ProtocolOutput:
    """Fine-tune both encoders: from a recipe (:func:`recipe_fine_tune`) when the option ``recipe`` is given or
    the task is on real data, else the short hand-written fine-tune below.

    Fine-tune both encoders with CMPM + CMPC (the PLIP CMPM/C downstream, plip-paper-and-code.md 5.5).

    Choices:

    - A deep copy of the backbone is trained (``ctx.backbone`` is never modified), module in train mode,
      through the differentiable ``_encode_image`` / ``_encode_text``.
    - Samples: each train image once per epoch with one of its captions drawn at random (seeded by
      seed, epoch and index) and a horizontal flip with ``flip_probability``. (CMPM/C's "depart" files
      use every caption as its own sample, i.e. about two passes over the images per epoch on CUHK-PEDES;
      one pass keeps the default cost low.) P x K batches over identities.
    - Loss (``loss``): ``"cmpm+cmpc"`` (default) = :func:`identity_contrastive_loss` + :func:`cmpc_loss`
      with a learnable W (D x number of training identities, Xavier init, seeded), or ``"cmpm"``.
    - AdamW: encoder ``lr``, the CMPC classifier ``lr * classifier_lr_factor`` (x10 as in CMPM/C),
      ``weight_decay``; optional linear warm-up over ``warmup_steps``; ``max_steps`` caps the total.
      (CMPM/C uses Adan, 30 epochs, warm-up 5 epochs: too costly for a default.) ``sync_bn`` (false):
      SyncBatchNorm under torchrun on CUDA (:func:`~plipbench.evaluation.protocols._training.sync_batchnorm`).
    - Selection: R@1 on the val split of the training dataset after each epoch, best epoch kept;
      without val the last epoch (``selection_split`` None). Never the test split.
    - Test features: the fine-tuned copy's image features (``FeatureStore.encode_images_with``,
      uncached, no flip) and its text features; evaluated as in :func:`zero_shot`.
    """
    import torch

    from plipbench.evaluation.protocols.recipe_run import wants_recipe
    from plipbench.pretrain.contrastive import identity_contrastive_loss

    if wants_recipe(ctx):
        return recipe_fine_tune(ctx)
    options = resolve_options(ctx, TextFineTuneOptions)
    metric, train, val, (test_records, test_captions, test_text_pids) = _fine_tune_inputs(ctx)
    clock = Stopwatch()
    device = ctx.device

    from plipbench.evaluation.protocols._training import TrainingImages

    labels, num_classes = relabel([r.pid for r in train])
    model = training_copy(ctx.backbone, device)
    (model.module,) = sync_batchnorm(ctx, options, model.module)
    dataset = TrainingImages(train, model.image_transform, labels,
                             flip_probability=options["flip_probability"], seed=ctx.seed)
    sampler, p_eff = pk_sampler([r.pid for r in train], options["identities_per_batch"],
                                options["images_per_identity"], ctx.seed)
    loader = training_loader(dataset, sampler, options["num_workers"])
    with seeded(ctx.seed, device):
        classifier = torch.nn.Parameter(torch.empty(model.embedding_dim, num_classes, device=device))
        torch.nn.init.xavier_uniform_(classifier)
    groups = [{"params": [p for p in model.module.parameters() if p.requires_grad], "lr": options["lr"]}]
    use_cmpc = options["loss"] == "cmpm+cmpc"
    if use_cmpc:
        groups.append({"params": [classifier], "lr": options["lr"] * options["classifier_lr_factor"]})
    optimizer = torch.optim.AdamW(groups, lr=options["lr"], weight_decay=options["weight_decay"])
    scheduler = warmup_scheduler(optimizer, options["warmup_steps"])

    def train_step(batch: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor], int]:
        images, captions, batch_labels = batch
        images, batch_labels = images.to(device), batch_labels.to(device)
        image_emb = model._encode_image(images)
        text_emb = model._encode_text(captions)
        loss = identity_contrastive_loss(image_emb, text_emb, batch_labels)
        if use_cmpc:
            loss = loss + cmpc_loss(image_emb, text_emb, batch_labels, classifier)
        return loss, {"loss": loss}, 1

    validate = None
    if val:
        val_captions, _, val_text_pids = caption_pairs(val)

        def validate() -> float:
            val_images, val_texts = _encode_with(ctx, model, val, val_captions)
            return _val_r1(val_images, val_texts, [r.pid for r in val], val_text_pids)

    # seeded: dropout in the text encoder draws from torch's RNG, which must not depend on what ran before
    with clock("train_s"), seeded(ctx.seed + 1, device):
        record = fine_tune_loop(loader, sampler, dataset, optimizer, scheduler, epochs=options["epochs"],
                                max_steps=options["max_steps"], train_modules=[model.module], step=train_step,
                                validate=validate, state_module=model.module, checkpoint=ctx.checkpoint, progress=ctx.progress, device=device,
                                label="text-reid fine-tune")
    model.module.eval()
    with clock("test_features_s"):
        test_images, test_texts = _encode_with(ctx, model, test_records, test_captions)
    with clock("metric_s"):
        scores, per_query, details, protocol = evaluate_text_retrieval(
            test_images, test_texts, [r.pid for r in test_records], test_text_pids, ks=metric["ks"],
            directions=options["directions"])
    details.update(
        selection="best val R@1" if record.best_epoch is not None else "last-epoch",
        selected_epoch=record.selected_epoch,
        train_loss=[round(x.get("loss", 0.0), 6) for x in record.losses],
        val_R1=[round(x, 6) for x in record.val_curve],
        steps=record.steps,
        num_train_images=len(train),
        num_train_identities=num_classes,
        effective_identities_per_batch=p_eff,
        sampler=sampler.describe(),
        test_features="fine-tuned copy, no flip",
        curve=record.curve,
    )
    return ProtocolOutput(scores=scores, per_query=per_query, details=details, metric_protocol=protocol,
                          options=options, selection_split="val" if record.best_epoch is not None else None,
                          timings=clock.timings, zero_shot=False)


def _caption_samples(records: list[PersonRecord]) -> list[PersonRecord]:
    """``captions: each``: every (image, caption) pair as its own training sample."""
    import dataclasses

    return [dataclasses.replace(r, captions=(c,)) for r in records for c in r.captions]


def recipe_fine_tune(ctx: ProtocolContext) -> ProtocolOutput:
    """The text ReID fine-tune of a recipe (``plip-cmpmc`` for a CNN image tower, ``irra`` for a ViT by default;
    the option ``recipe`` names another, see :mod:`~plipbench.evaluation.protocols.recipe_run`).

    A training copy of the backbone, trained through its differentiable ``forward_image`` and ``_encode_text``;
    the recipe's image pipeline (resize, flip, pad + random crop, random erasing) and caption sampling
    (``captions: each``: one sample per (image, caption) pair; else one caption drawn per image and epoch); its
    sampler (random batches, or P x K), optimizer (Adan, Adam with coupled L2; bias lr factor and decay, the
    name rules) and per-epoch schedule; its losses: CMPM (:func:`identity_contrastive_loss`) + CMPC (classifier
    at ``lr x classifier_lr_factor``), or IRRA's SDM + shared-classifier ID loss. IRRA's MLM (a cross-modal
    transformer and an MLM head over the text tokens) is left out: the backbones expose no token-level text
    output; ``details.left_out`` says so. A ViT image tower is resampled to the recipe's size (IRRA's
    ``resize_pos_embed``; :func:`~plipbench.evaluation.protocols.recipe_run.resample_for_recipe`, recorded in
    ``details.position_embedding``). Selection: best val R@1 where a val split exists, else the last
    epoch; ``selection: test`` is recorded as the paper-compatible mode but never selects on test here.
    """
    import torch

    from plipbench.evaluation.protocols.accel import accelerated_loader
    from plipbench.evaluation.protocols.losses import sdm_loss, shared_id_loss
    from plipbench.evaluation.protocols.recipe_run import (
        EpochScheduler,
        recipe_acceleration,
        recipe_details,
        recipe_model_parts,
        recipe_train_images,
        resolve_protocol_recipe,
    )
    from plipbench.evaluation.protocols.samplers import RandomBatchSampler
    from plipbench.pretrain.contrastive import identity_contrastive_loss
    from plipbench.recipes import build_lr_scheduler, build_optimizer

    # the run's own options typed here (TextRecipeRunOptions); the rest are overrides the recipe resolver checks
    TextRecipeRunOptions.validate_run(ctx.options, f"task {ctx.task.name}, protocol {ctx.protocol.name} "
                                                   f"({ctx.task.kind} {ctx.protocol.base})")
    own_extra = {k: v for k, v in TextRecipeRunOptions.defaults().items() if k not in RecipeRunOptions.model_fields}
    resolved, options = resolve_protocol_recipe(ctx, "text-reid", own_extra)
    recipe = resolved.recipe
    metric, train, val, (test_records, test_captions, test_text_pids) = _fine_tune_inputs(ctx)
    clock = Stopwatch()
    device = ctx.device
    losses = recipe.losses

    samples = _caption_samples(train) if recipe.augment.captions == "each" else train
    labels, num_classes = relabel([r.pid for r in samples])
    model = training_copy(ctx.backbone, device)
    parts_done = recipe_model_parts(ctx, resolved, model)  # IRRA's resize_pos_embed to 384 x 128 for a ViT
    (model.module,) = sync_batchnorm(ctx, options, model.module)
    dataset = recipe_train_images(samples, resolved, labels, seed=ctx.seed)
    if recipe.sampler.kind == "identity":
        sampler, _ = pk_sampler([r.pid for r in samples], recipe.sampler.identities, recipe.sampler.instances,
                                ctx.seed)
    else:
        sampler = RandomBatchSampler(len(samples), recipe.sampler.batch_size, drop_last=recipe.sampler.drop_last,
                                     seed=ctx.seed)
    accel = recipe_acceleration(ctx, options, resolved)
    loader = accelerated_loader(dataset, sampler, accel.prepare(model.module))
    parts = torch.nn.ModuleDict({"backbone": model.module})
    extra_groups: list[dict[str, Any]] = []
    cmpc_weights = None
    with seeded(ctx.seed, device):
        if losses.id is not None:
            classifier = torch.nn.Linear(model.embedding_dim, num_classes)
            torch.nn.init.normal_(classifier.weight, std=0.001)  # IRRA model/build.py
            torch.nn.init.zeros_(classifier.bias)
            parts["classifier"] = classifier.to(device)
        if losses.cmpc is not None:
            cmpc_weights = torch.nn.Parameter(torch.empty(model.embedding_dim, num_classes, device=device))
            torch.nn.init.xavier_uniform_(cmpc_weights)
            extra_groups.append({"params": [cmpc_weights], "names": ["cmpc.classifier"],
                                 "lr": recipe.optimizer.lr * losses.cmpc.classifier_lr_factor,
                                 "weight_decay": recipe.optimizer.weight_decay})
    optimizer = build_optimizer(parts, recipe.optimizer, extra_groups)
    scheduler = EpochScheduler(build_lr_scheduler(optimizer, recipe), optimizer, len(loader))
    left_out = []
    if losses.mlm is not None and losses.mlm.enabled:
        left_out.append("mlm (IRRA's cross-modal MLM head: no token-level text output in the Backbone contract)")
    if recipe.precision == "fp16-weights" and accel.precision != "fp32":
        left_out.append("fp16 weights (IRRA's convert_weights; autocast over fp32 weights instead)")
    elif recipe.precision != "fp32" and accel.precision == "fp32":
        left_out.append(f"precision {recipe.precision} (trained in fp32{' on the CPU' if device == 'cpu' else ''})")

    def train_step(batch: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor], int]:
        images, captions, batch_labels = batch
        images, batch_labels = images.to(device), batch_labels.to(device)
        image_emb = model.forward_image(images)
        text_emb = model._encode_text(captions).float()
        terms: dict[str, torch.Tensor] = {}
        if losses.cmpm is not None:
            terms["cmpm"] = losses.cmpm.weight * identity_contrastive_loss(image_emb, text_emb, batch_labels,
                                                                           eps=losses.cmpm.eps)
        if cmpc_weights is not None:
            terms["cmpc"] = losses.cmpc.weight * cmpc_loss(image_emb, text_emb, batch_labels, cmpc_weights)
        if losses.sdm is not None:
            terms["sdm"] = losses.sdm.weight * sdm_loss(image_emb, text_emb, batch_labels, losses.sdm.temperature)
        if losses.id is not None:
            terms["id"] = losses.id.weight * shared_id_loss(image_emb, text_emb, batch_labels, parts["classifier"])
        return sum(terms.values()), terms, 1

    validate = None
    if val:
        val_captions, _, val_text_pids = caption_pairs(val)

        def validate() -> float:
            val_images, val_texts = _encode_with(ctx, model, val, val_captions)
            return _val_r1(val_images, val_texts, [r.pid for r in val], val_text_pids)

    with clock("train_s"), seeded(ctx.seed + 1, device):
        record = fine_tune_loop(loader, sampler, dataset, optimizer, scheduler, epochs=recipe.train_epochs,
                                max_steps=options["max_steps"], train_modules=[parts], step=train_step,
                                validate=validate, state_module=model.module,
                                clip_grad_norm=recipe.grad_clip.max_norm if recipe.grad_clip else None,
                                checkpoint=ctx.checkpoint, progress=ctx.progress, device=device,
                                label=f"text-reid fine-tune ({resolved.name})", accel=accel)
    model.module.eval()
    with clock("test_features_s"):
        test_images, test_texts = _encode_with(ctx, model, test_records, test_captions)
    with clock("metric_s"):
        scores, per_query, details, protocol = evaluate_text_retrieval(
            test_images, test_texts, [r.pid for r in test_records], test_text_pids, ks=metric["ks"],
            directions=options["directions"])
    details.update(recipe_details(resolved))
    details.update(
        selection="best val R@1" if record.best_epoch is not None else "last-epoch",
        selection_mode="paper-compatible (test)" if resolved.paper_compatible else "val",
        selected_epoch=record.selected_epoch, steps=record.steps, left_out=left_out, **parts_done,
        acceleration=accel.details(),
        train_loss=[{k: round(v, 6) for k, v in epoch.items()} for epoch in record.losses],
        val_R1=[round(x, 6) for x in record.val_curve],
        epoch_lr=[[float(f"{lr:.6g}") for lr in lrs] for lrs in scheduler.epoch_lrs],
        num_train_images=len(train), num_train_samples=len(samples), num_train_identities=num_classes,
        sampler=sampler.describe(), test_features="fine-tuned copy, no flip", curve=record.curve,
    )  # fmt: skip
    return ProtocolOutput(scores=scores, per_query=per_query, details=details, metric_protocol=protocol,
                          options=options, selection_split="val" if record.best_epoch is not None else None,
                          timings=clock.timings, zero_shot=False)

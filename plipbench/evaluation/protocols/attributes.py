"""Pedestrian attribute recognition protocols: a linear probe on frozen features, zero-shot prompts and a
Rethinking_of_PAR-style fine-tune of the whole image encoder.

Shared evaluation: test-split probabilities and labels (``record.attributes``, in the order of
``ctx.data.attribute_names``; RAP's "uncertain" label 2 is mapped to 0 as Rethinking_of_PAR does) go to
:func:`plipbench.metrics.evaluate_attributes` with the task's ``metric_options`` (``threshold``,
``convention``, ``threshold_rule``). Scores ``mA``, ``Acc``, ``Prec``, ``Rec``, ``F1``; ``per_query``
holds ``probs`` (float32, images x attributes) and ``labels`` (uint8); ``details["per_attribute"]`` is
one row per attribute (name, positives, mA, pos_recall, neg_recall, precision, F1).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from plipbench.errors import DataError
from plipbench.evaluation.protocols._training import (
    Stopwatch,
    fine_tune_loop,
    l2_normalize,
    option_error,
    require_records,
    require_text,
    resolve_metric_options,
    resolve_options,
    seeded,
    sync_batchnorm,
    training_copy,
    training_loader,
    warmup_scheduler,
)
from plipbench.evaluation.protocols.base import ProtocolContext, ProtocolOutput
from plipbench.evaluation.protocols.options import (
    AttributeFineTuneOptions,
    AttributeLinearProbeOptions,
    AttributeZeroShotOptions,
)
from plipbench.models.backbone import Backbone

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import torch

    from plipbench.data.records import PersonRecord

ATTRIBUTE_METRIC_DEFAULTS: dict[str, Any] = {"threshold": 0.5, "convention": "rethinking", "threshold_rule": ">"}

#: the short fine-tune's defaults (:class:`~plipbench.evaluation.protocols.options.AttributeFineTuneOptions`)
ATTRIBUTE_FINE_TUNE_DEFAULTS: dict[str, Any] = AttributeFineTuneOptions.defaults()


# -- shared ------------------------------------------------------------------------------------
def attribute_labels(ctx: ProtocolContext, records: list[PersonRecord], role: str) -> np.ndarray:
    """``(N, L)`` uint8 labels of ``records``; label 2 (RAP "uncertain") becomes 0."""
    import numpy as np

    names = ctx.data.attribute_names
    if not names:
        raise DataError(None, f"task {ctx.task.name}: the dataset has no attribute names")
    rows = []
    for record in records:
        if record.attributes is None or len(record.attributes) != len(names):
            got = None if record.attributes is None else len(record.attributes)
            raise DataError(record.image_path, f"{role} record has {got} attribute labels, expected {len(names)}")
        rows.append(record.attributes)
    labels = np.asarray(rows, dtype=np.int64)
    if labels.size and (labels.min() < 0 or labels.max() > 2):
        raise DataError(None, f"task {ctx.task.name}: {role} attribute labels must be 0, 1 (or 2 = uncertain)")
    return np.where(labels == 1, 1, 0).astype(np.uint8)


def attribute_head(dim: int, num_attributes: int, *, logits_bn: bool, bias: bool = True,
                   init_std: float | None = None) -> Any:
    """``Linear(dim, L)`` (torch's init, or N(0, ``init_std``)), then ``BatchNorm1d(L)`` on the logits if
    ``logits_bn``: the head of both attribute fine-tunes. Call it seeded."""
    import torch

    layers: list[Any] = [torch.nn.Linear(dim, num_attributes, bias=bias)]
    if init_std is not None:
        torch.nn.init.normal_(layers[0].weight, std=init_std)
    if logits_bn:
        layers.append(torch.nn.BatchNorm1d(num_attributes))
    return torch.nn.Sequential(*layers)


def labelled_splits(ctx: ProtocolContext) -> tuple[dict[str, Any], list[PersonRecord], list[PersonRecord], list[str],
                                                   np.ndarray, np.ndarray]:
    """``(metric options, train, test, attribute names, train labels, test labels)``, the train and test splits
    required non-empty: what the linear probe and the recipe fine-tune start from."""
    metric = _metric_options(ctx)
    train, test = ctx.data.train_records, ctx.data.test_records
    require_records(ctx, train, "train")
    require_records(ctx, test, "test")
    names = list(ctx.data.attribute_names or [])
    return metric, train, test, names, attribute_labels(ctx, train, "train"), attribute_labels(ctx, test, "test")


def _metric_options(ctx: ProtocolContext) -> dict[str, Any]:
    return resolve_metric_options(ctx, ATTRIBUTE_METRIC_DEFAULTS)


def _evaluate(probs: np.ndarray, labels: np.ndarray, names: list[str], metric: dict[str, Any]) -> dict[str, Any]:
    from plipbench.metrics import evaluate_attributes

    return evaluate_attributes(probs, labels, threshold=metric["threshold"], convention=metric["convention"],
                               threshold_rule=metric["threshold_rule"], attribute_names=names)


def _output(ctx: ProtocolContext, probs: np.ndarray, labels: np.ndarray, metric: dict[str, Any],
            options: dict[str, Any], details: dict[str, Any], selection_split: str | None,
            clock: Stopwatch, zero_shot: bool) -> ProtocolOutput:
    import numpy as np

    names = list(ctx.data.attribute_names or [])
    with clock("metric_s"):
        result = _evaluate(probs, labels, names, metric)
    table = result["per_attribute"]
    per_attribute = [
        {"name": table["name"][j], "positives": int(table["positives"][j]), "mA": float(table["mA"][j]),
         "pos_recall": float(table["pos_recall"][j]), "neg_recall": float(table["neg_recall"][j]),
         "precision": float(table["precision"][j]), "F1": float(table["F1"][j])}
        for j in range(len(names))
    ]  # fmt: skip
    details = {**details, "num_images": result["num_images"], "num_attributes": result["num_attributes"],
               "attributes_without_positives": result["attributes_without_positives"],
               "per_attribute": per_attribute}
    return ProtocolOutput(
        scores={k: float(result[k]) for k in ("mA", "Acc", "Prec", "Rec", "F1")},
        per_query={"probs": probs.astype(np.float32), "labels": labels.astype(np.uint8)},
        details=details, metric_protocol=result["protocol"], options=options, selection_split=selection_split,
        timings=clock.timings, zero_shot=zero_shot,
    )  # fmt: skip


# -- logistic regression -------------------------------------------------------------------------
class _Standardizer:
    def __init__(self, features: np.ndarray) -> None:
        self.mean = features.mean(0)
        std = features.std(0)
        self.std = std + (std == 0)

    def __call__(self, features: np.ndarray) -> np.ndarray:
        return (features - self.mean) / self.std


def fit_logistic(features: np.ndarray, labels: np.ndarray, C: float, *, max_iter: int = 100,
                 solver: str = "lbfgs") -> Any:
    """L2-regularised logistic regression per attribute (scikit-learn's objective); returns a predictor.

    Objective per attribute j: ``C * sum_i logloss(x_i w_j + b_j, y_ij) + |w_j|^2 / 2`` (intercept not
    penalised), exactly scikit-learn's ``LogisticRegression(C=C)``. ``solver="lbfgs"`` minimises the sum
    over attributes (the objective separates, so the minimiser is the same) with one full-batch torch
    L-BFGS in float64: all attributes at once, tens of times faster than the scikit-learn loop
    (``solver="sklearn"``, kept as the reference). An attribute that is constant in ``labels`` is
    predicted with that constant probability. The predictor maps features to ``(N, L)`` probabilities.
    """
    import numpy as np
    import torch

    labels = np.asarray(labels, dtype=np.float64)
    n, dim = features.shape
    ratio = labels.mean(0)
    varying = np.flatnonzero((ratio > 0) & (ratio < 1))
    weight = np.zeros((dim, labels.shape[1]))
    bias = np.zeros(labels.shape[1])
    if varying.size:
        if solver == "sklearn":
            from sklearn.linear_model import LogisticRegression

            for j in varying:
                model = LogisticRegression(C=C, max_iter=max_iter).fit(features, labels[:, j].astype(int))
                weight[:, j], bias[j] = model.coef_[0], model.intercept_[0]
        else:
            x = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float64))
            y = torch.from_numpy(np.ascontiguousarray(labels[:, varying]))
            w = torch.zeros(dim, len(varying), dtype=torch.float64, requires_grad=True)
            b = torch.zeros(len(varying), dtype=torch.float64, requires_grad=True)
            optimizer = torch.optim.LBFGS([w, b], lr=1, max_iter=max_iter, history_size=20, tolerance_grad=1e-5,
                                          tolerance_change=1e-9, line_search_fn="strong_wolfe")

            def closure() -> torch.Tensor:
                optimizer.zero_grad()
                logits = x @ w + b
                data = torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="sum")
                loss = (data + w.pow(2).sum() / (2 * C)) / n
                loss.backward()
                return loss

            optimizer.step(closure)
            weight[:, varying], bias[varying] = w.detach().numpy(), b.detach().numpy()

    def predict(test: np.ndarray) -> np.ndarray:
        logits = test @ weight + bias
        probs = 1.0 / (1.0 + np.exp(-np.clip(logits, -500, 500)))
        constant = np.setdiff1d(np.arange(labels.shape[1]), varying)
        probs[:, constant] = ratio[constant]
        return probs

    return predict


def _logistic_probe(ctx: ProtocolContext, options: dict[str, Any], metric: dict[str, Any], x_train: np.ndarray,
                    y_train: np.ndarray, val: tuple[np.ndarray, np.ndarray] | None, x_test: np.ndarray,
                    names: list[str]) -> tuple[np.ndarray, dict[str, Any], str | None]:
    import numpy as np

    fit = lambda x, y, c: fit_logistic(x, y, c, max_iter=options["max_iter"], solver=options["solver"])  # noqa: E731
    if val is None:
        scaler = _Standardizer(x_train)
        predict = fit(scaler(x_train), y_train, options["C"])
        return predict(scaler(x_test)), {"selection": "fixed C (no val split)", "selected_C": options["C"]}, None
    x_val, y_val = val
    scaler = _Standardizer(x_train)
    val_ma = []
    for c in options["C_grid"]:
        predict = fit(scaler(x_train), y_train, c)
        val_ma.append(float(_evaluate(predict(scaler(x_val)), y_val, names, metric)["mA"]))
    best_c = options["C_grid"][int(np.argmax(val_ma))]
    if options["refit_on_train_val"]:
        x_fit, y_fit = np.concatenate([x_train, x_val]), np.concatenate([y_train, y_val])
    else:
        x_fit, y_fit = x_train, y_train
    scaler = _Standardizer(x_fit)
    predict = fit(scaler(x_fit), y_fit, best_c)
    details = {"selection": "C by val mA", "selected_C": best_c,
               "val_mA": {str(c): round(m, 6) for c, m in zip(options["C_grid"], val_ma, strict=True)},
               "refit_on_train_val": options["refit_on_train_val"]}
    return predict(scaler(x_test)), details, "val"


# -- weighted BCE --------------------------------------------------------------------------------
def _weighted_bce_probe(ctx: ProtocolContext, options: dict[str, Any], metric: dict[str, Any], x_train: np.ndarray,
                        y_train: np.ndarray, val: tuple[np.ndarray, np.ndarray] | None, x_test: np.ndarray,
                        names: list[str]) -> tuple[np.ndarray, dict[str, Any], str | None]:
    import numpy as np
    import torch

    scaler = _Standardizer(x_train)
    device = ctx.device
    as_tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(device)  # noqa: E731
    x, y = as_tensor(scaler(x_train)), as_tensor(y_train)
    ratio = y.mean(0)
    pos_weight, neg_weight = torch.exp(1 - ratio), torch.exp(ratio)
    with seeded(ctx.seed, device):
        head = torch.nn.Linear(x.shape[1], y.shape[1]).to(device)
    optimizer = torch.optim.Adam(head.parameters(), lr=options["lr"], weight_decay=options["weight_decay"])
    generator = np.random.default_rng(ctx.seed)
    val_curve, losses = [], []
    best: tuple[float, int, dict[str, Any]] | None = None
    for epoch in range(options["epochs"]):
        head.train()
        order = generator.permutation(len(x))
        total = 0.0
        for start in range(0, len(order), options["batch_size"]):
            index = torch.from_numpy(order[start:start + options["batch_size"]]).to(device)
            target = y[index]
            weights = torch.where(target > 0.5, pos_weight, neg_weight)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(head(x[index]), target, weight=weights)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(index)
        losses.append(round(total / len(order), 6))
        if val is not None:
            head.eval()
            with torch.no_grad():
                probs = torch.sigmoid(head(as_tensor(scaler(val[0])))).cpu().double().numpy()
            val_curve.append(float(_evaluate(probs, val[1], names, metric)["mA"]))
            if best is None or val_curve[-1] > best[0]:
                best = (val_curve[-1], epoch, {k: v.clone() for k, v in head.state_dict().items()})
    if best is not None:
        head.load_state_dict(best[2])
    head.eval()
    with torch.no_grad():
        probs = torch.sigmoid(head(as_tensor(scaler(x_test)))).cpu().double().numpy()
    details = {"selection": "best val mA" if best is not None else "last-epoch",
               "selected_epoch": (best[1] if best is not None else options["epochs"] - 1) + 1,
               "train_loss": losses, "val_mA": [round(v, 6) for v in val_curve]}
    return probs, details, "val" if best is not None else None


# -- protocols -----------------------------------------------------------------------------------
def linear_probe(ctx: ProtocolContext) -> ProtocolOutput:
    """A linear classifier per attribute on frozen image features (no flip).

    ``method="weighted-bce"`` is the default: mA averages the positive and negative recall of each
    attribute, and an unweighted classifier on imbalanced attributes (most are rare) predicts the
    majority class, which scores mA 0.5 whatever the features (seen on the mini suite); the weighted
    BCE of Rethinking_of_PAR, the reference training loss for these datasets, balances the two.

    ``method="logistic-regression"``: features standardised (mean/std of the fitting set),
    L2-regularised logistic regression per attribute (:func:`fit_logistic`; ``solver="lbfgs"`` torch,
    all attributes at once, or ``"sklearn"``, the reference loop; ``max_iter`` 100 as scikit-learn). With a val split
    (of the training dataset) ``C`` is picked from ``C_grid`` by val mA (ties: the first in the grid),
    then, with ``refit_on_train_val`` (default, as CLIP's linear probes and the trainval protocol of
    Rethinking_of_PAR), refit on train + val; without val, ``C`` (1.0) is used. An attribute constant in
    the fitting set is predicted with that constant probability.

    ``method="weighted-bce"`` (default): a torch linear head on standardised features trained with
    Rethinking_of_PAR's weighted BCE (positive weight ``exp(1 - p_j)``, negative weight ``exp(p_j)``,
    ``p_j`` the training positive ratio), Adam (``lr``, ``weight_decay``), ``epochs``, ``batch_size``;
    the epoch with the best val mA is kept, or the last one without val. The test split is only
    predicted, never used for a choice.
    """
    import numpy as np

    options = resolve_options(ctx, AttributeLinearProbeOptions)
    metric, train, test, names, y_train, y_test = labelled_splits(ctx)
    clock = Stopwatch()
    as_numpy = lambda t: t.detach().cpu().double().numpy()  # noqa: E731
    x_train = as_numpy(ctx.features.image_features(train))
    val = None
    if ctx.data.val_records:
        val = (as_numpy(ctx.features.image_features(ctx.data.val_records)),
               attribute_labels(ctx, ctx.data.val_records, "val"))
    x_test = as_numpy(ctx.features.image_features(test))
    probe = _logistic_probe if options["method"] == "logistic-regression" else _weighted_bce_probe
    with clock("train_s"):
        probs, details, selection_split = probe(ctx, options, metric, x_train, y_train, val, x_test, names)
    details = {**details, "num_train_images": len(train), "num_val_images": len(ctx.data.val_records),
               "train_positive_ratio": [round(float(r), 6) for r in np.asarray(y_train, dtype=np.float64).mean(0)]}
    return _output(ctx, probs, y_test, metric, options, details, selection_split, clock, zero_shot=False)


def zero_shot(ctx: ProtocolContext) -> ProtocolOutput:
    """Zero-shot attributes with a vision-language backbone: one positive and one negative sentence each.

    Sentences from :mod:`plipbench.evaluation.protocols.prompts` (hand-written pairs for the 26 PA-100K
    attributes, a generic "a photo of a person with/without <words>" pair otherwise), or the option
    ``prompts``: a mapping ``name -> [positive, negative]`` overriding some pairs. Probability =
    ``sigmoid(scale * (cos(image, positive) - cos(image, negative)))``: a two-way softmax over the pair
    with CLIP's logit scale (``scale`` default 100). Test images only, no training.
    """
    import numpy as np
    import torch

    from plipbench.evaluation.protocols.prompts import attribute_prompts

    options = resolve_options(ctx, AttributeZeroShotOptions)
    overrides = options["prompts"]
    names = list(ctx.data.attribute_names or [])
    if overrides:
        unknown = sorted(set(overrides) - set(names))
        if unknown:
            raise option_error(ctx, "prompts", f"attribute names of the dataset ({', '.join(names)})", unknown[0])
    metric = _metric_options(ctx)
    require_text(ctx)
    test = ctx.data.test_records
    require_records(ctx, test, "test")
    y_test = attribute_labels(ctx, test, "test")
    pairs = attribute_prompts(names, overrides)
    clock = Stopwatch()
    sentences = [p for p, _ in pairs] + [n for _, n in pairs]
    text = l2_normalize(ctx.features.text_features(sentences, task=ctx.task.name)).double()
    image = l2_normalize(ctx.features.image_features(test)).double()
    cos = image @ text.t()
    positive, negative = cos[:, :len(names)], cos[:, len(names):]
    probs = torch.sigmoid(options["scale"] * (positive - negative)).numpy()
    details = {"prompts": [{"name": n, "positive": p, "negative": q} for n, (p, q) in zip(names, pairs, strict=True)]}
    return _output(ctx, np.asarray(probs), y_test, metric, options, details, None, clock, zero_shot=True)


# -- fine-tune ------------------------------------------------------------------------------------
class AttributeHeadBackbone(Backbone):
    """A backbone whose "embedding" is the attribute logits ``head(encoder(x))`` (one column per attribute)."""

    def __init__(self, encoder: Backbone, head: Any, num_attributes: int) -> None:
        import torch

        self.encoder, self.head = encoder, head
        self.module = torch.nn.ModuleDict({"encoder": encoder.module, "head": head})
        self.metadata = encoder.metadata.model_copy(update={"modalities": ("image",),
                                                            "embedding_dim": num_attributes})
        self.image_transform = encoder.image_transform
        self._fingerprint = None

    def _encode_image(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder._encode_image(images).float())


class ShuffledBatches:
    """Batches of record indices, reshuffled every epoch from a generator seeded by ``(seed, epoch)``.

    Full batches of ``batch_size``; the last, smaller batch is kept unless it holds a single image
    (BatchNorm in train mode needs two samples).
    """

    def __init__(self, size: int, batch_size: int, seed: int) -> None:
        self.size, self.batch_size, self.seed, self.epoch = int(size), int(batch_size), int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self) -> Any:
        import numpy as np

        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.size)
        for start in range(0, self.size, self.batch_size):
            batch = order[start:start + self.batch_size]
            if len(batch) >= 2:
                yield [int(i) for i in batch]

    def __len__(self) -> int:
        full, rest = divmod(self.size, self.batch_size)
        return full + (rest >= 2)


def weighted_bce(logits: torch.Tensor, targets: torch.Tensor, positive_ratio: torch.Tensor) -> torch.Tensor:
    """Rethinking_of_PAR's weighted BCE: weight ``exp(1 - p_j)`` on positives, ``exp(p_j)`` on negatives.

    Summed over attributes and averaged over the batch (Rethinking_of_PAR's ``size_sum``).
    """
    import torch
    import torch.nn.functional as F

    weights = torch.where(targets > 0.5, torch.exp(1 - positive_ratio), torch.exp(positive_ratio))
    loss = F.binary_cross_entropy_with_logits(logits.float(), targets, weight=weights, reduction="none")
    return loss.sum(1).mean()


def fine_tune(ctx: ProtocolContext) -> ProtocolOutput:
    """Fine-tune the whole image encoder with a linear attribute classifier: from a recipe
    (:func:`~plipbench.evaluation.protocols.attribute_recipe.recipe_fine_tune`: ``rethinking`` for CNNs,
    ``solider-par`` for Swin/ViT) when the option ``recipe`` is given or the task is on real data, else the
    short hand-written Rethinking_of_PAR-style fine-tune below (the synthetic twins, the mini suite).

    The hand-written fine-tune's choices:

    - A deep copy of the backbone's image encoder is trained (``ctx.backbone`` is never modified), module
      in train mode, through the differentiable ``_encode_image``; on its embedding a classifier
      ``Linear(D, L)`` followed, with ``logits_bn`` (default true, Rethinking_of_PAR's baseline), by
      ``BatchNorm1d(L)`` on the logits, initialised seeded.
    - Loss: Rethinking_of_PAR's weighted BCE (:func:`weighted_bce`: positive weight ``exp(1 - p_j)``,
      negative weight ``exp(p_j)``, ``p_j`` the positive ratio of attribute j in the train split, the
      weighting of the linear probe), summed over attributes, averaged over the batch. RAP's "uncertain"
      label counts as negative, as everywhere in this module.
    - Samples: every train image once per epoch in shuffled batches of ``batch_size`` (64), order seeded
      by seed and epoch; horizontal flip with ``flip_probability`` (0.5), seeded by seed, epoch and index.
    - ``optimizer``: ``"adam"`` (default, Rethinking_of_PAR's: Adam with L2 ``weight_decay`` 5e-4),
      ``"adamw"`` or ``"sgd"`` (momentum 0.9, their earlier recipe). Encoder ``lr`` (1e-4, their
      ``LR_FT``), classifier ``lr * classifier_lr_factor`` (x10, as the text fine-tune: a fresh head
      learns faster than the pre-trained encoder), gradient norm clipped at ``clip_grad_norm`` (10, as
      their ``CLIP_GRAD``; null: no clipping), optional linear warm-up over ``warmup_steps``, then a
      constant rate (their plateau schedule and EMA are left out); ``epochs`` (5, they train 30: too costly
      for a default), ``max_steps`` caps the total. ``sync_bn`` (false): SyncBatchNorm under torchrun on CUDA.
    - Selection: after each epoch, mA on the val split of the training dataset (sigmoid of the logits,
      the task's metric options); the best epoch is kept (earliest on ties). Without a val split (RAPv1)
      the last epoch is kept (``selection_split`` None). The test split is never used for a choice.
    - Test: probabilities ``sigmoid(logits)`` of the fine-tuned copy (``FeatureStore.encode_images_with``,
      uncached, no flip, BatchNorm running statistics), evaluated as :func:`linear_probe`.
    """
    import numpy as np
    import torch

    from plipbench.evaluation.protocols._training import TrainingImages
    from plipbench.evaluation.protocols.recipe_run import wants_recipe

    if wants_recipe(ctx):
        from plipbench.evaluation.protocols.attribute_recipe import recipe_fine_tune

        return recipe_fine_tune(ctx)
    options = resolve_options(ctx, AttributeFineTuneOptions)
    metric = _metric_options(ctx)
    train, val, test = ctx.data.train_records, ctx.data.val_records, ctx.data.test_records
    require_records(ctx, train, "train")
    require_records(ctx, test, "test")
    if len(train) < 2:
        raise DataError(None, f"task {ctx.task.name}: fine-tuning needs at least 2 train images, got {len(train)}")
    names = list(ctx.data.attribute_names or [])
    y_train, y_test = attribute_labels(ctx, train, "train"), attribute_labels(ctx, test, "test")
    y_val = attribute_labels(ctx, val, "val") if val else None
    clock = Stopwatch()
    device = ctx.device

    encoder = training_copy(ctx.backbone, device)
    num_attributes = len(names)
    with seeded(ctx.seed, device):
        head = attribute_head(encoder.embedding_dim, num_attributes, logits_bn=options["logits_bn"]).to(device)
    encoder.module, head = sync_batchnorm(ctx, options, encoder.module, head)
    model = AttributeHeadBackbone(encoder, head, num_attributes)
    targets = torch.from_numpy(y_train.astype(np.float32)).to(device)
    positive_ratio = targets.mean(0)
    dataset = TrainingImages(train, encoder.image_transform, list(range(len(train))),
                             flip_probability=options["flip_probability"], seed=ctx.seed)
    sampler = ShuffledBatches(len(train), options["batch_size"], ctx.seed)
    loader = training_loader(dataset, sampler, options["num_workers"])
    groups = [{"params": [p for p in encoder.module.parameters() if p.requires_grad], "lr": options["lr"]},
              {"params": list(head.parameters()), "lr": options["lr"] * options["classifier_lr_factor"]}]
    if options["optimizer"] == "sgd":
        optimizer = torch.optim.SGD(groups, lr=options["lr"], momentum=0.9, weight_decay=options["weight_decay"])
    else:
        kind = torch.optim.Adam if options["optimizer"] == "adam" else torch.optim.AdamW
        optimizer = kind(groups, lr=options["lr"], weight_decay=options["weight_decay"])
    scheduler = warmup_scheduler(optimizer, options["warmup_steps"])

    def probabilities(records: list[PersonRecord]) -> np.ndarray:
        logits = ctx.features.encode_images_with(model, records)
        return torch.sigmoid(logits.double()).cpu().numpy()

    def train_step(batch: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor], int]:
        images, _, index = batch
        images, index = images.to(device), index.to(device)
        loss = weighted_bce(model._encode_image(images), targets[index], positive_ratio)
        return loss, {"loss": loss}, len(index)

    def validate() -> float:
        return float(_evaluate(probabilities(val), y_val, names, metric)["mA"])

    # seeded: dropout or stochastic depth in a backbone draws from torch's RNG, which must not depend on
    # what ran before in the process
    with clock("train_s"), seeded(ctx.seed + 1, device):
        record = fine_tune_loop(loader, sampler, dataset, optimizer, scheduler, epochs=options["epochs"],
                                max_steps=options["max_steps"], train_modules=[model.module], step=train_step,
                                validate=validate if y_val is not None else None, state_module=model.module,
                                clip_grad_norm=options["clip_grad_norm"], checkpoint=ctx.checkpoint, progress=ctx.progress, device=device,
                                label="attributes fine-tune")
    model.module.eval()
    with clock("test_features_s"):
        probs = probabilities(test)
    details = {
        "selection": "best val mA" if record.best_epoch is not None else "last-epoch",
        "selected_epoch": record.selected_epoch,
        "train_loss": [round(x.get("loss", 0.0), 6) for x in record.losses],
        "val_mA": [round(v, 6) for v in record.val_curve],
        "steps": record.steps,
        "num_train_images": len(train),
        "num_val_images": len(val),
        "train_positive_ratio": [round(float(r), 6) for r in y_train.astype(np.float64).mean(0)],
        "classifier": "Linear + BatchNorm1d on the logits" if options["logits_bn"] else "Linear",
        "test_features": "sigmoid of the fine-tuned copy's logits, no flip",
        "curve": record.curve,
    }
    return _output(ctx, probs, y_test, metric, options, details, "val" if record.best_epoch is not None else None, clock,
                   zero_shot=False)

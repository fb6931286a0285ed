"""Human parsing ``fine-tune``: the linear probe's head (BN + 1x1 conv on the dense maps) with the backbone trained.

This is the kind of number the papers report (PLIP Tab. 1 and SOLIDER fine-tune SCHP end to end for 150 epochs);
plipbench's recipe is much shorter and simpler than SCHP (no edge branch, no self-correction, no cyclical
schedule), so its numbers compare backbones with each other and are not the published ones. Choices:

- A deep copy of the backbone is trained (:func:`~plipbench.evaluation.protocols._training.training_copy`;
  ``ctx.backbone`` is never modified), in train mode, through the differentiable
  :func:`plipbench.models.dense.dense_maps` (stage ``layers``, several resized to the first and concatenated);
  on it the head of :mod:`.parsing`'s linear probe: ``BatchNorm2d`` then a 1x1 convolution to the classes,
  initialised seeded, its logits upsampled bilinearly to ``input_size``.
- Inputs: every image stretched to the person-shaped ``input_size`` (H, W; 256 x 128), the backbone's
  interpolation, mean and std, exactly as the probe's; label maps resized with nearest neighbour.
- Augmentation: horizontal flip with ``flip_probability`` (0.5), seeded by (seed, epoch, index); a flipped
  label map has its left/right classes swapped (LIP's pairs, :data:`LIP_FLIP_PAIRS`; none for PASCAL-Person-Part),
  as SCHP's training flip does.
- Loss: cross-entropy with ``ignore_index`` (255, the task's metric option) over the pixels of each batch.
- Optimiser: AdamW, backbone ``lr`` (1e-4), head ``lr * head_lr_factor`` (x10), ``weight_decay`` (1e-4);
  a linear warm-up over ``warmup_steps`` (0) times a polynomial decay (power 0.9, SCHP's / DeepLab's) to 0 over
  the run's steps; ``epochs`` (5), ``max_steps`` caps the total; gradient norm clipped at ``clip_grad_norm``
  (null: none). Every train image once per epoch in batches of ``batch_size`` (8), order seeded.
- Selection: with a val split, mIoU on it after each epoch, the best epoch kept (earliest on ties); LIP,
  PASCAL-Person-Part and CIHP have none besides the one reported, so the last epoch is kept there
  (``selection_split`` None). The test split is never used for a choice.
- Test: logits of the fine-tuned copy (eval mode), SCHP's flip test with the swap when ``flip`` is on, upsampled
  bilinearly to each label map's own size, argmax, scored as the probe (:func:`plipbench.metrics.evaluate_parsing`).

It runs through :func:`~plipbench.evaluation.protocols.loop.fine_tune_loop`: per-epoch checkpoints and
``--resume``, the curve (``details["curve"]``), the progress bar and DDP under torchrun.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from plipbench.errors import ConfigError, DataError
from plipbench.evaluation.protocols._training import (
    Stopwatch,
    require_records,
    resolve_options,
    seeded,
    sync_batchnorm,
    training_copy,
)
from plipbench.evaluation.protocols.base import ProtocolContext, ProtocolOutput
from plipbench.evaluation.protocols.options import ParsingFineTuneOptions

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import torch

def mirror_label_map(labels: np.ndarray, order: Sequence[int]) -> np.ndarray:
    """A label map mirrored left-right with its classes renamed by ``order`` (:func:`flip_permutation`): a left
    arm becomes a right arm. Labels outside ``order`` (255, ignore) are kept."""
    import numpy as np

    table = np.arange(256, dtype=np.uint8)
    table[:len(order)] = np.asarray(order, dtype=np.uint8)
    return table[np.ascontiguousarray(labels[..., ::-1])]


class ParsingTrainingImages:
    """``torch.utils.data.Dataset`` of (image, label map, index): images stretched to ``size`` and normalised,
    label maps resized with nearest neighbour, both mirrored (labels swapped by ``order``) with probability
    ``flip_probability`` from a generator seeded by ``(seed, epoch, index)`` (call :meth:`set_epoch`)."""

    def __init__(self, records: Sequence[Any], backbone: Any, size: tuple[int, int], order: Sequence[int], *,
                 flip_probability: float, seed: int) -> None:
        from plipbench.data.decoded import Resize, decoded_images

        spec = backbone.image_transform
        self.records, self.size, self.order = list(records), size, list(order)
        self.mean, self.std = spec.mean, spec.std
        self.pixels = decoded_images(self.records, Resize("torchvision", size, spec.interpolation, "stretch", 1.0))
        self.flip_probability, self.seed, self.epoch = flip_probability, int(seed), 0
        self.flips = 0  # mirrored items served (a test checks the augmentation runs)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        import numpy as np
        import torch

        from plipbench.data.decoded import to_model_input
        from plipbench.evaluation.protocols.parsing import _label_maps

        image = to_model_input(self.pixels[index], self.mean, self.std)
        labels = _label_maps([self.records[index]], self.size)[0]
        if np.random.default_rng([self.seed, self.epoch, index]).random() < self.flip_probability:
            image, labels = image.flip(-1), mirror_label_map(labels, self.order)
            self.flips += 1
        return image, torch.from_numpy(np.array(labels, dtype=np.int64)), index


def _collate(batch: list[tuple[Any, Any, int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    import torch

    images, labels, index = zip(*batch, strict=True)
    return torch.stack(images), torch.stack(labels), torch.tensor(index, dtype=torch.long)


def _check(ctx: ProtocolContext) -> tuple[dict[str, Any], dict[str, Any]]:
    from plipbench.evaluation.protocols._training import check_bool, resolve_metric_options
    from plipbench.evaluation.protocols.parsing import PARSING_METRIC_DEFAULTS

    options = resolve_options(ctx, ParsingFineTuneOptions)
    metric = resolve_metric_options(ctx, PARSING_METRIC_DEFAULTS)
    if not isinstance(metric["ignore_index"], int) or isinstance(metric["ignore_index"], bool):
        raise ConfigError(f"task {ctx.task.name}: metric option ignore_index expects an integer")
    check_bool(ctx, metric, "flip")
    return options, metric


def _poly_warmup(optimizer: Any, warmup_steps: int, total_steps: int, power: float) -> Any:
    import torch

    def factor(step: int) -> float:
        warm = min(1.0, (step + 1) / (warmup_steps + 1)) if warmup_steps > 0 else 1.0
        return warm * max(0.0, 1.0 - step / max(total_steps, 1)) ** power

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def fine_tune(ctx: ProtocolContext) -> ProtocolOutput:
    """See the module docstring."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    from plipbench.data.readers.parsing import LIP_CLASSES, LIP_FLIP_PAIRS
    from plipbench.evaluation.protocols.attributes import ShuffledBatches
    from plipbench.evaluation.protocols.loop import fine_tune_loop
    from plipbench.evaluation.protocols.parsing import parsing_output
    from plipbench.metrics.parsing import flip_permutation
    from plipbench.models.dense import dense_maps

    options, metric = _check(ctx)
    train, val, test = ctx.data.train_records, ctx.data.val_records, ctx.data.test_records
    require_records(ctx, train, "train")
    require_records(ctx, test, "test")
    if len(train) < 2:
        raise DataError(None, f"task {ctx.task.name}: fine-tuning needs at least 2 train images, got {len(train)}")
    classes = list(ctx.data.target.class_names or [])
    if not classes:
        raise ConfigError(f"task {ctx.task.name}: the dataset has no class names (is it a parsing layout?)")
    pairs = LIP_FLIP_PAIRS if classes == list(LIP_CLASSES) else ()
    order = flip_permutation(len(classes), pairs)
    size = (options["input_size"][0], options["input_size"][1])
    layers, ignore, device = options["layers"], metric["ignore_index"], ctx.device
    clock = Stopwatch()

    encoder = training_copy(ctx.backbone, device)
    with torch.no_grad():
        probe = dense_maps(encoder, torch.zeros(2, 3, *size, device=encoder.device), layers)
    channels = int(probe.shape[1])
    with seeded(ctx.seed, device):
        head = nn.Sequential(nn.BatchNorm2d(channels), nn.Conv2d(channels, len(classes), 1)).to(device)
    encoder.module, head = sync_batchnorm(ctx, options, encoder.module, head)
    model = nn.ModuleDict({"encoder": encoder.module, "head": head})

    def head_logits(images: torch.Tensor) -> torch.Tensor:  # at the dense map's resolution
        return head(dense_maps(encoder, images, layers))

    dataset = ParsingTrainingImages(train, encoder, size, order, flip_probability=options["flip_probability"],
                                    seed=ctx.seed)
    sampler = ShuffledBatches(len(train), options["batch_size"], ctx.seed)
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, num_workers=options["num_workers"],
                                         collate_fn=_collate, generator=torch.Generator().manual_seed(0))
    groups = [{"params": [p for p in encoder.module.parameters() if p.requires_grad], "lr": options["lr"]},
              {"params": list(head.parameters()), "lr": options["lr"] * options["head_lr_factor"]}]
    optimizer = torch.optim.AdamW(groups, lr=options["lr"], weight_decay=options["weight_decay"])
    total = len(sampler) * options["epochs"]
    if options["max_steps"] is not None:
        total = min(total, options["max_steps"])
    scheduler = _poly_warmup(optimizer, options["warmup_steps"], total, options["poly_power"])

    def train_step(batch: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor], int]:
        images, labels, index = batch
        logits = F.interpolate(head_logits(images.to(device)), size=size, mode="bilinear", align_corners=False)
        loss = F.cross_entropy(logits, labels.to(device), ignore_index=ignore)
        return loss, {"loss": loss}, len(index)

    def score(records: list[Any]) -> dict[str, Any]:
        return _score(head_logits, records, encoder, size, classes, pairs, ignore, metric["flip"],
                      options["batch_size"], model)

    def validate() -> float:
        return float(score(val)["mIoU"])

    with clock("train_s"), seeded(ctx.seed + 1, device):
        record = fine_tune_loop(loader, sampler, dataset, optimizer, scheduler, epochs=options["epochs"],
                                max_steps=options["max_steps"], train_modules=[model], step=train_step,
                                validate=validate if val else None, state_module=model,
                                clip_grad_norm=options["clip_grad_norm"], checkpoint=ctx.checkpoint,
                                progress=ctx.progress, device=device, label="parsing fine-tune")
    with clock("test_s"):
        result = score(test)
    selected = "val" if record.best_epoch is not None else None
    details = {"feature_shape": [channels, *probe.shape[-2:]],
               "selection": "best val mIoU" if selected else "last-epoch",
               "selected_epoch": record.selected_epoch, "steps": record.steps,
               "train_loss": [round(x.get("loss", 0.0), 6) for x in record.losses],
               "val_mIoU": [round(v, 6) for v in record.val_curve], "curve": record.curve,
               "train_flip_swap": [list(p) for p in pairs], "num_train_images": len(train),
               "num_val_images": len(val), "num_test_images": len(test)}
    return parsing_output(result, classes=classes, pairs=pairs, metric=metric, size=size, options=options,
                          details=details, selection_split=selected, timings=clock.timings)


def _score(head_logits: Any, records: list[Any], encoder: Any, size: tuple[int, int], classes: list[str],
           pairs: Any, ignore: int, flip: bool, batch_size: int, model: Any) -> dict[str, Any]:
    """SCHP's mIoU of the trained model on ``records``, scored as the probe scores (eval mode, restored after)."""
    import torch
    import torch.nn.functional as F

    from plipbench.data.decoded import Resize, decoded_images, to_model_input
    from plipbench.evaluation.protocols.parsing import _label_maps
    from plipbench.metrics.parsing import ParsingConfusion, merge_flip

    spec = encoder.image_transform
    pixels = decoded_images(records, Resize("torchvision", size, spec.interpolation, "stretch", 1.0))
    confusion = ParsingConfusion(len(classes), ignore_index=ignore, class_names=classes, per_image=True)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for start in range(0, len(records), batch_size):
                part = records[start:start + batch_size]
                images = to_model_input(pixels[start:start + len(part)], spec.mean, spec.std).to(encoder.device)
                logits = head_logits(images)
                if flip:
                    logits = merge_flip(logits, head_logits(images.flip(-1)), pairs)
                for one, target in zip(logits, _label_maps(part, None), strict=True):
                    up = F.interpolate(one[None], size=target.shape, mode="bilinear", align_corners=False)
                    confusion.update(up[0].argmax(0).cpu().numpy(), target)
    finally:
        model.train(was_training)
    return confusion.compute()

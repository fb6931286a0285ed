"""Human parsing protocols (task kind ``parsing``): a linear probe on a frozen backbone's dense feature maps.

``linear-probe`` (plipbench's own protocol: no published frozen-backbone parsing numbers exist, so its numbers
compare backbones with each other, not with papers):

- every image is resized (stretched, the backbone's interpolation) to the person-shaped ``input_size``
  (H, W; 256 x 128 by default) and normalised with the backbone's mean and std; no square centre crop cuts
  off heads or feet;
- the frozen backbone's dense maps (:func:`plipbench.models.dense.encode_image_dense`, stage ``layers``,
  several resized and concatenated) are computed once per image list and cached on disk as float16
  (``$PLIPBENCH_CACHE/dense``, memory-mapped, so memory stays bounded at LIP's size);
- the head is DINOv2's linear ``BNHead``: ``BatchNorm2d`` then a 1x1 convolution to the classes, its logits
  upsampled bilinearly to ``input_size``, trained with cross-entropy (ignore 255) against the label maps
  resized with nearest neighbour (with ``loss_stride`` k > 1, logits and labels at ``input_size / k`` instead:
  k x k fewer pixels in the loss, the cost that dominates training; the label maps are resized once, not per
  epoch); AdamW (``lr``, ``weight_decay``), ``epochs``, ``batch_size``, a linear
  (power 1 polynomial) decay to 0, seeded;
- the last epoch is evaluated (LIP and PASCAL-Person-Part have no validation split besides the one every paper
  reports, so there is nothing to select on: ``selection_split`` is None);
- test logits are upsampled bilinearly to each label map's own size, argmax, and scored with SCHP's confusion
  matrix mIoU (:func:`plipbench.metrics.evaluate_parsing`); ``flip: true`` (metric option) adds SCHP's flip
  test with the LIP left/right channel swap (none for label sets without sides).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from plipbench.errors import ConfigError
from plipbench.evaluation.protocols._training import (
    Stopwatch,
    check_bool,
    require_records,
    resolve_metric_options,
    resolve_options,
    seeded,
)
from plipbench.evaluation.protocols.base import ProtocolContext, ProtocolOutput
from plipbench.evaluation.protocols.options import ParsingLinearProbeOptions

PARSING_METRIC_DEFAULTS: dict[str, Any] = {"ignore_index": 255, "flip": False}


def _label_maps(records: Any, size: tuple[int, int] | None):
    """The records' label maps as a list of (h, w) uint8 arrays, resized (nearest) to ``size`` when given."""
    import numpy as np
    from PIL import Image

    from plipbench.data.images import open_label_map

    out = []
    for r in records:
        labels = open_label_map(r.mask_path)
        if size is not None and labels.shape != tuple(size):
            labels = np.asarray(Image.fromarray(labels).resize((size[1], size[0]), Image.Resampling.NEAREST))
        out.append(labels)
    return out


def _label_array(records: Any, size: tuple[int, int], scratch: Path) -> Any:
    """The records' label maps resized (nearest) to ``size``, as one ``(N, h, w)`` uint8 array, read once.

    In memory up to 256 MB, else a memory-mapped file under ``scratch`` (LIP's 30k training maps at 256 x 128
    are 1 GB), filled in chunks so memory stays bounded.
    """
    import numpy as np

    shape = (len(records), int(size[0]), int(size[1]))
    if shape[0] * shape[1] * shape[2] <= 256 * 2**20:
        out = np.empty(shape, dtype=np.uint8)
    else:
        out = np.lib.format.open_memmap(scratch / "labels.npy", mode="w+", dtype=np.uint8, shape=shape)
    for start in range(0, len(records), 256):
        part = records[start:start + 256]
        out[start:start + len(part)] = np.stack(_label_maps(part, size))
    return out


def parsing_output(result: dict[str, Any], *, classes: list[str], pairs: Any, metric: dict[str, Any],
                   size: tuple[int, int], options: dict[str, Any], details: dict[str, Any],
                   selection_split: str | None, timings: dict[str, float]) -> ProtocolOutput:
    """The :class:`ProtocolOutput` of a parsing protocol from :meth:`ParsingConfusion.compute`'s ``result``: the
    three scores, per-image pixel counts for the leaderboard's bootstrap, the per-class IoU (then ``details``)
    and the metric protocol (flip test, resize)."""
    return ProtocolOutput(
        scores={k: result[k] for k in ("mIoU", "pixel_accuracy", "mean_accuracy")},
        # per image tp / gt / predicted pixel counts per class: the leaderboard's bootstrap resamples images
        per_query={"tp": result["per_image_tp"], "pos": result["per_image_pos"], "res": result["per_image_res"]},
        details={"per_class_iou": {n: round(float(v), 6) for n, v in zip(classes, result["per_class_iou"],
                                                                            strict=True)},
                 "classes_absent": result["classes_absent"], **details},
        metric_protocol={**result["protocol"], "flip": metric["flip"],
                         "flip_pairs": [list(p) for p in pairs] if metric["flip"] else [],
                         "resize": f"stretch to {size[0]}x{size[1]} (no crop), logits upsampled bilinearly to "
                                   f"each label map's size"},
        options=options,
        selection_split=selection_split,
        timings=timings,
        zero_shot=False,
    )


def _check(ctx: ProtocolContext) -> tuple[dict[str, Any], dict[str, Any]]:
    options = resolve_options(ctx, ParsingLinearProbeOptions)
    metric = resolve_metric_options(ctx, PARSING_METRIC_DEFAULTS)
    if not isinstance(metric["ignore_index"], int) or isinstance(metric["ignore_index"], bool):
        raise ConfigError(f"task {ctx.task.name}: metric option ignore_index expects an integer")
    check_bool(ctx, metric, "flip")
    return options, metric


def linear_probe(ctx: ProtocolContext) -> ProtocolOutput:
    """See the module docstring."""
    import numpy as np
    import torch
    import torch.nn.functional as F
    from torch import nn

    from plipbench.data.readers.parsing import LIP_CLASSES, LIP_FLIP_PAIRS
    from plipbench.metrics.parsing import ParsingConfusion, merge_flip

    options, metric = _check(ctx)
    train, test = ctx.data.train_records, ctx.data.test_records
    require_records(ctx, train, "train")
    require_records(ctx, test, "test")
    classes = list(ctx.data.target.class_names or [])
    if not classes:
        raise ConfigError(f"task {ctx.task.name}: the dataset has no class names (is it a parsing layout?)")
    pairs = LIP_FLIP_PAIRS if classes == list(LIP_CLASSES) else ()
    size = tuple(options["input_size"])
    clock = Stopwatch()
    with clock("features"):
        x_train = ctx.features.dense_features(train, size=size, layers=options["layers"])
        x_test = ctx.features.dense_features(test, size=size, layers=options["layers"])
        x_flip = (ctx.features.dense_features(test, size=size, layers=options["layers"], flip=True)
                  if metric["flip"] else None)
    channels = x_train.shape[1]
    ignore = metric["ignore_index"]
    with seeded(ctx.seed, ctx.device):
        head = nn.Sequential(nn.BatchNorm2d(channels), nn.Conv2d(channels, len(classes), 1)).to(ctx.device)
    steps_per_epoch = -(-len(train) // options["batch_size"])
    total = steps_per_epoch * options["epochs"]
    optimizer = torch.optim.AdamW(head.parameters(), lr=options["lr"], weight_decay=options["weight_decay"])
    scheduler = torch.optim.lr_scheduler.PolynomialLR(optimizer, total_iters=total, power=1.0)
    generator = torch.Generator().manual_seed(int(ctx.seed))
    stride = options["loss_stride"]
    loss_size = (max(1, size[0] // stride), max(1, size[1] // stride))
    scratch = tempfile.TemporaryDirectory(prefix="plipbench-parsing-")
    with clock("labels"):
        train_labels = _label_array(train, loss_size, Path(scratch.name))
    curve = []
    try:
        with clock("train"):
            head.train()
            for _epoch in range(options["epochs"]):
                order = torch.randperm(len(train), generator=generator).tolist()
                losses = []
                for start in range(0, len(order), options["batch_size"]):
                    idx = sorted(order[start:start + options["batch_size"]])
                    feats = torch.from_numpy(np.asarray(x_train[idx], dtype=np.float32)).to(ctx.device)
                    labels = torch.from_numpy(np.asarray(train_labels[idx])).long()
                    logits = F.interpolate(head(feats), size=loss_size, mode="bilinear", align_corners=False)
                    loss = F.cross_entropy(logits, labels.to(ctx.device), ignore_index=ignore)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    scheduler.step()
                    losses.append(float(loss.detach()))
                curve.append(round(float(np.mean(losses)), 5))
    finally:
        del train_labels
        scratch.cleanup()
    with clock("test"):
        head.eval()
        confusion = ParsingConfusion(len(classes), ignore_index=ignore, class_names=classes, per_image=True)
        with torch.inference_mode():
            for start in range(0, len(test), options["batch_size"]):
                part = test[start:start + options["batch_size"]]
                sl = slice(start, start + len(part))
                logits = head(torch.from_numpy(np.asarray(x_test[sl], dtype=np.float32)).to(ctx.device))
                if x_flip is not None:
                    flipped = head(torch.from_numpy(np.asarray(x_flip[sl], dtype=np.float32)).to(ctx.device))
                    logits = merge_flip(logits, flipped, pairs)
                for one, target in zip(logits, _label_maps(part, None), strict=True):
                    up = F.interpolate(one[None], size=target.shape, mode="bilinear", align_corners=False)
                    confusion.update(up[0].argmax(0).cpu().numpy(), target)
        result = confusion.compute()
    details = {"feature_shape": list(x_train.shape[1:]), "loss_per_epoch": curve, "num_test_images": len(test)}
    return parsing_output(result, classes=classes, pairs=pairs, metric=metric, size=size, options=options,
                          details=details, selection_split=None, timings=clock.timings)

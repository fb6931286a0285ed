"""Human parsing metrics: SCHP's confusion-matrix mIoU, pixel accuracy and mean accuracy.

The reference is SCHP's ``utils/miou.py`` (``compute_mean_ioU``; SOLIDER-HumanParsing ships byte-identical
copies), as ``../shared/reference/more-tasks.md`` §2.2 describes it:

- one ``C x C`` confusion matrix over the whole split, ``M[gt, pred]``, from ``bincount(gt * C + pred)``;
- ground-truth pixels equal to ``ignore_index`` (255) are dropped, with the prediction at those pixels;
- ``tp = diag(M)``, ``pos = M.sum(1)`` (ground-truth counts), ``res = M.sum(0)`` (prediction counts);
- ``pixel_accuracy = sum(tp) / sum(pos)``; ``mean_accuracy = mean(tp / max(1, pos))``;
- ``IoU_c = tp_c / max(1, pos_c + res_c - tp_c)``; ``mIoU`` is the mean over **all** ``C`` classes,
  background included. A class absent from both the ground truth and the predictions has IoU 0 (not NaN)
  and still counts in the mean, as in SCHP; on small sets this lowers mIoU, and ``classes_absent`` lists them.

Scores are fractions (SCHP prints them x100). Memory is bounded: images are accumulated one at a time (a
list of maps of different sizes is the usual input, as LIP's images differ in size), and a large map is
counted in chunks of ``chunk_pixels``; only the ``C x C`` matrix is kept. :class:`ParsingConfusion`
accumulates batch by batch for an evaluation loop.

:func:`merge_flip` is SCHP's flip test: the logits of the mirrored image get their left/right channels
swapped (LIP: 14<->15, 16<->17, 18<->19), are mirrored back and averaged with the logits of the image.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from plipbench.data.readers.parsing import LIP_CLASSES, LIP_FLIP_PAIRS
from plipbench.data.readers.parsing import PASCAL_CLASSES as PASCAL_PERSON_PART_CLASSES
from plipbench.metrics._checks import MetricInputError

__all__ = ["LIP_CLASSES", "LIP_FLIP_PAIRS", "PASCAL_PERSON_PART_CLASSES", "ParsingConfusion", "evaluate_parsing",
           "flip_permutation", "merge_flip"]
IGNORE_INDEX = 255
CHUNK_PIXELS = 1 << 22


def _label_map(name: str, index: int, values: Any) -> np.ndarray:
    if hasattr(values, "detach"):  # torch tensor
        values = values.detach().cpu().numpy()
    arr = np.asarray(values)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise MetricInputError(f"{name}[{index}]: expected integer class labels, got non-integer floats")
    elif arr.dtype.kind not in "iub":
        raise MetricInputError(f"{name}[{index}]: expected integer class labels, got dtype {arr.dtype}")
    if arr.ndim == 0:
        raise MetricInputError(f"{name}[{index}]: expected a label map, got a scalar")
    return arr.astype(np.int64, copy=False)


def _maps(name: str, values: Any) -> list[Any] | Any:
    """A sequence of per-image maps: a list/tuple as given, an (N, H, W) array by its first axis, an (H, W)
    array as one image."""
    if isinstance(values, (list, tuple)):
        return values
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    arr = np.asarray(values)
    if arr.ndim == 2:
        return [arr]
    if arr.ndim == 3:
        return arr
    raise MetricInputError(f"{name}: expected an (H, W) map, an (N, H, W) batch or a list of maps; got shape "
                           f"{arr.shape}")


class ParsingConfusion:
    """Accumulates SCHP's confusion matrix over batches; :meth:`compute` gives :func:`evaluate_parsing`'s dict."""

    def __init__(self, num_classes: int, *, ignore_index: int | None = IGNORE_INDEX,
                 class_names: Sequence[str] | None = None, chunk_pixels: int = CHUNK_PIXELS,
                 per_image: bool = False) -> None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
            raise MetricInputError(f"num_classes: expected a whole number >= 1, got {num_classes!r}")
        if ignore_index is not None and 0 <= ignore_index < num_classes:
            raise MetricInputError(f"ignore_index {ignore_index} is a class label (num_classes {num_classes})")
        if class_names is not None and len(class_names) != num_classes:
            raise MetricInputError(f"class_names: {len(class_names)} names for {num_classes} classes")
        if chunk_pixels < 1:
            raise MetricInputError(f"chunk_pixels: expected >= 1, got {chunk_pixels}")
        self.num_classes = int(num_classes)
        self.ignore_index = ignore_index
        self.class_names = tuple(class_names) if class_names is not None else None
        self.chunk_pixels = int(chunk_pixels)
        self.matrix = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)
        self.images = 0
        # per image (tp, pos, res) per class, for a bootstrap over images (plipbench.leaderboard.seeds)
        self.per_image: list[np.ndarray] | None = [] if per_image else None

    def update(self, pred: Any, target: Any) -> ParsingConfusion:
        """Add images: ``pred`` and ``target`` are each an (H, W) map, an (N, H, W) batch or a list of maps."""
        preds, targets = _maps("pred", pred), _maps("target", target)
        if len(preds) != len(targets):
            raise MetricInputError(f"pred has {len(preds)} image(s), target has {len(targets)}")
        for i, (p, t) in enumerate(zip(preds, targets, strict=True)):
            self._add(i, _label_map("pred", self.images + i, p), _label_map("target", self.images + i, t))
        self.images += len(preds)
        return self

    def _add(self, i: int, pred: np.ndarray, target: np.ndarray) -> None:
        index = self.images + i
        if pred.shape != target.shape:
            raise MetricInputError(f"image {index}: pred shape {pred.shape} differs from target shape {target.shape}")
        c = self.num_classes
        before = self.matrix.copy() if self.per_image is not None else None
        pred, target = pred.reshape(-1), target.reshape(-1)
        for start in range(0, max(len(target), 1), self.chunk_pixels):
            t = target[start:start + self.chunk_pixels]
            p = pred[start:start + self.chunk_pixels]
            if self.ignore_index is not None:
                keep = t != self.ignore_index
                t, p = t[keep], p[keep]
            if t.size == 0:
                continue
            bad_t = (t < 0) | (t >= c)
            if bad_t.any():
                raise MetricInputError(f"target[{index}]: label {int(t[bad_t][0])} outside 0..{c - 1}"
                                       + (f" (and not the ignore label {self.ignore_index})"
                                          if self.ignore_index is not None else ""))
            bad_p = (p < 0) | (p >= c)
            if bad_p.any():
                raise MetricInputError(f"pred[{index}]: label {int(p[bad_p][0])} outside 0..{c - 1}")
            self.matrix += np.bincount(t * c + p, minlength=c * c).reshape(c, c)
        if before is not None and self.per_image is not None:
            m = self.matrix - before
            self.per_image.append(np.stack([np.diag(m), m.sum(1), m.sum(0)]))

    def compute(self) -> dict:
        if self.matrix.sum() == 0:
            raise MetricInputError("no labelled pixel to evaluate (every target pixel is ignored, or no image)")
        out = _scores(self.matrix, self.ignore_index, self.class_names, self.images)
        if self.per_image is not None:
            stats = np.stack(self.per_image) if self.per_image else np.zeros((0, 3, self.num_classes), np.int64)
            out["per_image_tp"], out["per_image_pos"], out["per_image_res"] = stats[:, 0], stats[:, 1], stats[:, 2]
        return out


def _scores(matrix: np.ndarray, ignore_index: int | None, class_names: Sequence[str] | None, images: int) -> dict:
    m = matrix.astype(np.float64)
    tp, pos, res = np.diag(m), m.sum(1), m.sum(0)
    iou = tp / np.maximum(1.0, pos + res - tp)
    accuracy = tp / np.maximum(1.0, pos)
    absent = [int(c) for c in np.flatnonzero((pos == 0) & (res == 0))]
    names = list(class_names) if class_names is not None else [str(c) for c in range(len(tp))]
    return {
        "mIoU": float(iou.mean()),
        "pixel_accuracy": float(tp.sum() / pos.sum()),
        "mean_accuracy": float(accuracy.mean()),
        "per_class_iou": iou,
        "per_class_accuracy": accuracy,
        "class_names": names,
        "classes_absent": [names[c] for c in absent],
        "confusion": matrix.copy(),
        "num_images": images,
        "protocol": {
            "protocol": "schp-miou",
            "ignore_index": ignore_index,
            "classes_in_mean": "all, background included",
            "empty_class": "IoU 0 and counted in the mean (SCHP)",
            "accumulation": "one confusion matrix over the split (not a mean of per-image IoUs)",
        },
    }


def evaluate_parsing(pred: Any, target: Any, num_classes: int, ignore_index: int | None = IGNORE_INDEX, *,
                     class_names: Sequence[str] | None = None, chunk_pixels: int = CHUNK_PIXELS) -> dict:
    """SCHP's parsing metrics (fractions) over a split (see the module docstring).

    ``pred`` and ``target``: integer label maps, each an (H, W) map, an (N, H, W) batch, or a list of maps of
    any sizes (pred and target of one image must have the same shape). Returns ``mIoU``, ``pixel_accuracy``,
    ``mean_accuracy``, ``per_class_iou`` and ``per_class_accuracy`` (arrays of ``num_classes``), ``class_names``,
    ``classes_absent``, ``confusion`` (``M[gt, pred]``), ``num_images`` and ``protocol``.

    The worked example of the reference brief::

        >>> r = evaluate_parsing(np.array([[0, 1, 1, 1, 2, 0]]), np.array([[0, 0, 1, 1, 2, 2]]), 3)
        >>> round(r["mIoU"], 4), round(r["pixel_accuracy"], 4), round(r["mean_accuracy"], 4)
        (0.5, 0.6667, 0.6667)
    """
    acc = ParsingConfusion(num_classes, ignore_index=ignore_index, class_names=class_names,
                           chunk_pixels=chunk_pixels)
    return acc.update(pred, target).compute()


def flip_permutation(num_classes: int, pairs: Iterable[tuple[int, int]]) -> list[int]:
    """Channel order for the logits of a mirrored image: each (left, right) pair swapped, the rest kept."""
    order = list(range(num_classes))
    for a, b in pairs:
        if not (0 <= a < num_classes and 0 <= b < num_classes) or a == b:
            raise MetricInputError(f"flip pair ({a}, {b}) is not two distinct classes of 0..{num_classes - 1}")
        order[a], order[b] = b, a
    if sorted(order) != list(range(num_classes)):
        raise MetricInputError(f"flip pairs {list(pairs)} overlap")
    return order


def merge_flip(logits: Any, flipped_logits: Any, pairs: Iterable[tuple[int, int]] = LIP_FLIP_PAIRS) -> Any:
    """SCHP's flip test: ``(logits + mirror(swap(flipped_logits))) / 2`` for (..., C, H, W) logits (torch or
    NumPy), where ``flipped_logits`` are the model's logits of the horizontally mirrored image and ``swap``
    exchanges the left/right channels (``pairs``; ``()`` for label sets without sides, such as
    PASCAL-Person-Part)."""
    if tuple(logits.shape) != tuple(flipped_logits.shape):
        raise MetricInputError(f"logits {tuple(logits.shape)} and flipped logits {tuple(flipped_logits.shape)} differ")
    if len(logits.shape) < 3:
        raise MetricInputError(f"logits: expected (..., C, H, W), got shape {tuple(logits.shape)}")
    order = flip_permutation(logits.shape[-3], tuple(pairs))
    swapped = flipped_logits[..., order, :, :]
    back = swapped.flip(-1) if hasattr(swapped, "detach") else np.flip(swapped, axis=-1)
    return (logits + back) * 0.5

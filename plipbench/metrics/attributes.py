"""Pedestrian attribute recognition metrics: label-based mA and instance-based Acc / Prec / Rec / F1.

Conventions (``convention=``; recorded in the result):

- ``"rethinking"`` (default; Rethinking_of_PAR ``get_pedestrian_metrics``, used by the PLIP tables):
  ``eps = 1e-20`` in every denominator, so zero denominators give 0 and *all* images and attributes count;
  F1 = 2 P R / (P + R + eps) from the averaged P and R (not the mean of per-image F1).
- ``"deepmar"`` (DeepMAR ``attribute_evaluate_lidw``): images without any ground-truth positive are dropped
  from all instance metrics; an image with no predicted positive has precision 0; an attribute without
  positives has NaN positive recall, hence NaN mA (listed in ``attributes_without_positives``).
- ``"rap-matlab"`` (RAP ``rap_evaluation.m``): an attribute without positives (negatives) has positive
  (negative) recall 0; each instance metric is averaged over its own images with a non-zero denominator
  (accuracy over |gt or pred| > 0, precision over |pred| > 0, recall over |gt| > 0; an empty set gives 0).

Thresholding: ``threshold_rule=">"`` (Rethinking_of_PAR: ``probs > threshold``) or ``">="`` (fast-reid
FastAttr); they differ only for a probability exactly equal to the threshold.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from plipbench.metrics._checks import MetricInputError, check_option

EPS = 1e-20
CONVENTIONS = ("rethinking", "deepmar", "rap-matlab")
THRESHOLD_RULES = (">", ">=")


def _divide(num: np.ndarray, den: np.ndarray, mode: str) -> np.ndarray:
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    if mode == "eps":
        return num / (den + EPS)
    safe = np.where(den == 0, 1.0, den)
    return np.where(den == 0, 0.0 if mode == "zero" else np.nan, num / safe)


def _mean_over(values: np.ndarray, mask: np.ndarray) -> float:
    return float(values[mask].mean()) if mask.any() else 0.0


def _matrix(name: str, values, dtype=np.float64) -> np.ndarray:
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    arr = np.asarray(values)
    if arr.ndim != 2:
        raise MetricInputError(f"{name}: expected a 2-D (images x attributes) array, got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise MetricInputError(f"{name}: empty array of shape {arr.shape}")
    if arr.dtype.kind not in "biuf":
        raise MetricInputError(f"{name}: expected numbers, got dtype {arr.dtype}")
    return arr.astype(dtype)


def evaluate_attributes(
    probs,
    labels,
    *,
    threshold: float = 0.5,
    convention: str = "rethinking",
    threshold_rule: str = ">",
    attribute_names: Sequence[str] | None = None,
) -> dict:
    """mA, Acc, Prec, Rec, F1 (fractions) and a per-attribute table, under ``convention`` (see module docstring).

    ``probs``: (N, L) probabilities in [0, 1] (sigmoid of the logits); ``labels``: (N, L) in {0, 1} (map RAP's
    "uncertain" label 2 to 0 before calling, as Rethinking_of_PAR does). ``per_attribute`` is a dict of
    arrays: ``name``, ``positives``, ``pos_recall``, ``neg_recall``, ``mA`` ((pos + neg recall) / 2),
    ``precision``, ``F1``.

    Example (the worked example of the reference brief)::

        >>> gt = [[1, 0, 1, 0], [0, 0, 0, 0], [1, 1, 0, 0], [0, 1, 0, 0]]
        >>> pr = [[.9, .1, .2, .8], [.1, .7, .2, .3], [.4, .2, .1, .1], [.1, .6, .3, .2]]
        >>> r = evaluate_attributes(pr, gt)
        >>> round(r["mA"], 4), round(r["Acc"], 4), round(r["F1"], 4)
        (0.5312, 0.3333, 0.375)
    """
    check_option("convention", convention, CONVENTIONS)
    check_option("threshold_rule", threshold_rule, THRESHOLD_RULES)
    p = _matrix("probs", probs)
    y = _matrix("labels", labels)
    if p.shape != y.shape:
        raise MetricInputError(f"labels: shape {y.shape} does not match probs {p.shape}")
    if not np.all(np.isfinite(p)):
        raise MetricInputError("probs: contains NaN or infinite values")
    if p.min() < 0.0 or p.max() > 1.0:
        raise MetricInputError(f"probs: expected probabilities in [0, 1], got values in [{p.min()}, {p.max()}]")
    if not np.all((y == 0) | (y == 1)):
        bad = np.unique(y[(y != 0) & (y != 1)])[:5]
        raise MetricInputError(f"labels: expected values in {{0, 1}}, found {bad.tolist()} (map label 2 to 0 first)")
    try:
        thr = float(threshold)
    except (TypeError, ValueError):
        raise MetricInputError(f"threshold: expected a number in [0, 1], got {threshold!r}") from None
    if not (0.0 <= thr <= 1.0):
        raise MetricInputError(f"threshold: expected a number in [0, 1], got {threshold!r}")
    n_attr = p.shape[1]
    if attribute_names is None:
        names = [f"attr_{j}" for j in range(n_attr)]
    else:
        names = [str(n) for n in attribute_names]
        if len(names) != n_attr:
            raise MetricInputError(f"attribute_names: {len(names)} names for {n_attr} attributes")

    gt = y.astype(bool)
    pred = p > thr if threshold_rule == ">" else p >= thr

    # label-based, per attribute over images
    tp = (gt & pred).sum(0)
    fp = (~gt & pred).sum(0)
    tn = (~gt & ~pred).sum(0)
    n_pos, n_neg = gt.sum(0), (~gt).sum(0)
    label_mode = {"rethinking": "eps", "deepmar": "nan", "rap-matlab": "zero"}[convention]
    pos_recall = _divide(tp, n_pos, label_mode)
    neg_recall = _divide(tn, n_neg, label_mode)
    ma_j = (pos_recall + neg_recall) / 2.0
    precision_j = _divide(tp, tp + fp, label_mode)
    f1_j = _divide(2 * precision_j * pos_recall, precision_j + pos_recall, label_mode)

    # instance-based, per image over attributes
    inter = (gt & pred).sum(1)
    union = (gt | pred).sum(1)
    n_gt, n_pred = gt.sum(1), pred.sum(1)
    if convention == "rethinking":
        acc = float(_divide(inter, union, "eps").mean())
        prec = float(_divide(inter, n_pred, "eps").mean())
        rec = float(_divide(inter, n_gt, "eps").mean())
        f1 = 2 * prec * rec / (prec + rec + EPS)
    else:
        if convention == "deepmar":
            keep = n_gt > 0
            acc_mask, prec_mask, rec_mask = keep, keep, keep
        else:
            acc_mask, prec_mask, rec_mask = union > 0, n_pred > 0, n_gt > 0
        acc = _mean_over(_divide(inter, union, "zero"), acc_mask)
        prec = _mean_over(_divide(inter, n_pred, "zero"), prec_mask)
        rec = _mean_over(_divide(inter, n_gt, "zero"), rec_mask)
        f1 = 2 * prec * rec / (prec + rec) if prec + rec > 0 else 0.0

    return {
        "mA": float(ma_j.mean()),
        "Acc": acc,
        "Prec": prec,
        "Rec": rec,
        "F1": float(f1),
        "num_images": int(p.shape[0]),
        "num_attributes": n_attr,
        "attributes_without_positives": [names[j] for j in np.flatnonzero(n_pos == 0)],
        "per_attribute": {
            "name": names,
            "positives": n_pos.astype(np.int64),
            "pos_recall": pos_recall,
            "neg_recall": neg_recall,
            "mA": ma_j,
            "precision": precision_j,
            "F1": f1_j,
        },
        "protocol": {
            "convention": convention,
            "threshold": thr,
            "threshold_rule": f"probs {threshold_rule} threshold",
            "eps": EPS if convention == "rethinking" else None,
            "F1": "from the averaged instance precision and recall",
        },
    }

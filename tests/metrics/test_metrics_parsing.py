"""SCHP's parsing metrics: the brief's worked example, the empty-class rule, ignore 255, accumulation, the flip test."""

from __future__ import annotations

import numpy as np
import pytest

from plipbench.metrics import MetricInputError, ParsingConfusion, evaluate_parsing, merge_flip
from plipbench.metrics.parsing import LIP_CLASSES, LIP_FLIP_PAIRS, flip_permutation


def schp_reference(preds, gts, num_classes):
    """SCHP ``compute_mean_ioU`` as more-tasks.md §2.2 describes it, written out loop by loop."""
    matrix = np.zeros((num_classes, num_classes))
    for pred, gt in zip(preds, gts, strict=True):
        gt, pred = np.asarray(gt, dtype=np.int32), np.asarray(pred, dtype=np.uint8)
        ignore = gt != 255
        gt, pred = gt[ignore], pred[ignore]
        index = (gt * num_classes + pred).astype("int32")
        count = np.bincount(index)
        for i in range(num_classes):
            for j in range(num_classes):
                k = i * num_classes + j
                if k < len(count):
                    matrix[i, j] += count[k]
    pos, res, tp = matrix.sum(1), matrix.sum(0), np.diag(matrix)
    return {"pixel_accuracy": tp.sum() / pos.sum(), "mean_accuracy": (tp / np.maximum(1.0, pos)).mean(),
            "iou": tp / np.maximum(1.0, pos + res - tp)}


def test_the_worked_example_of_the_brief() -> None:
    gt, pred = np.array([[0, 0, 1, 1, 2, 2]]), np.array([[0, 1, 1, 1, 2, 0]])
    r = evaluate_parsing(pred, gt, 3)
    assert r["confusion"].tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert r["per_class_iou"] == pytest.approx([1 / 3, 2 / 3, 1 / 2])
    assert r["mIoU"] == pytest.approx(0.5)
    assert r["pixel_accuracy"] == pytest.approx(4 / 6) and r["mean_accuracy"] == pytest.approx(2 / 3)
    assert r["classes_absent"] == [] and r["num_images"] == 1
    assert r["protocol"]["empty_class"].startswith("IoU 0")


def test_a_class_absent_from_labels_and_predictions_scores_zero_and_counts_in_the_mean() -> None:
    gt, pred = np.array([[0, 0, 1, 1, 2, 2]]), np.array([[0, 1, 1, 1, 2, 0]])
    r = evaluate_parsing(pred, gt, 4)
    assert r["per_class_iou"][3] == 0.0 and not np.isnan(r["per_class_iou"]).any()
    assert r["mIoU"] == pytest.approx((1 / 3 + 2 / 3 + 1 / 2 + 0) / 4)
    assert r["mean_accuracy"] == pytest.approx((0.5 + 1 + 0.5 + 0) / 4)
    assert r["classes_absent"] == ["3"]
    names = evaluate_parsing(pred, gt, 4, class_names=["bg", "a", "b", "never"])
    assert names["classes_absent"] == ["never"]


def test_ignore_label_drops_the_pixel_and_its_prediction() -> None:
    gt = np.array([[0, 255, 1, 255], [2, 2, 255, 1]])
    pred = np.array([[0, 2, 1, 0], [2, 1, 2, 1]])
    r = evaluate_parsing(pred, gt, 3)
    assert r["confusion"].sum() == 5
    kept = evaluate_parsing(np.array([[0, 1, 2, 1, 1]]), np.array([[0, 1, 2, 2, 1]]), 3)
    assert r["mIoU"] == pytest.approx(kept["mIoU"])
    with pytest.raises(MetricInputError, match="no labelled pixel"):
        evaluate_parsing(np.zeros((2, 2), int), np.full((2, 2), 255), 3)


def test_equals_the_reference_loop_and_sklearn_on_random_maps_of_different_sizes() -> None:
    from sklearn.metrics import jaccard_score

    rng = np.random.default_rng(0)
    c = 20
    shapes = [(37, 23), (64, 32), (5, 91), (128, 64)]
    gts = [rng.integers(0, c, size=s) for s in shapes]
    for g in gts:
        g[rng.random(g.shape) < 0.1] = 255
        g[g == 7] = 1  # class 7 never in the labels; predicted sometimes
    preds = [np.where(rng.random(g.shape) < 0.6, np.where(g == 255, 0, g), rng.integers(0, c, size=g.shape))
             for g in gts]
    for p in preds:
        p[p == 11] = 12  # class 11 never predicted
    r = evaluate_parsing(preds, gts, c, class_names=LIP_CLASSES)
    ref = schp_reference(preds, gts, c)
    assert r["per_class_iou"] == pytest.approx(ref["iou"], abs=1e-12)
    assert r["pixel_accuracy"] == pytest.approx(ref["pixel_accuracy"], abs=1e-12)
    assert r["mean_accuracy"] == pytest.approx(ref["mean_accuracy"], abs=1e-12)
    flat_g = np.concatenate([g.ravel() for g in gts])
    flat_p = np.concatenate([p.ravel() for p in preds])
    keep = flat_g != 255
    sk = jaccard_score(flat_g[keep], flat_p[keep], labels=list(range(c)), average=None, zero_division=0)
    assert r["per_class_iou"] == pytest.approx(sk, abs=1e-12)
    # streaming, batch by batch, and in tiny chunks: the same matrix
    acc = ParsingConfusion(c, chunk_pixels=17)
    for p, g in zip(preds, gts, strict=True):
        acc.update(p, g)
    assert (acc.compute()["confusion"] == r["confusion"]).all() and acc.images == 4
    batch = evaluate_parsing(np.stack([p[:5, :23] for p in preds]), np.stack([g[:5, :23] for g in gts]), c)
    one_by_one = evaluate_parsing([p[:5, :23] for p in preds], [g[:5, :23] for g in gts], c)
    assert (batch["confusion"] == one_by_one["confusion"]).all()


def test_torch_inputs_and_integer_floats_are_accepted() -> None:
    import torch

    gt, pred = torch.tensor([[0, 0, 1, 1, 2, 2]]), torch.tensor([[0, 1, 1, 1, 2, 0]], dtype=torch.float32)
    assert evaluate_parsing(pred, gt, 3)["mIoU"] == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("pred", "target", "classes", "message"),
    [
        (np.zeros((2, 3), int), np.zeros((3, 2), int), 3, r"image 0: pred shape \(2, 3\) differs"),
        (np.zeros((2, 2), int), np.array([[0, 5], [1, 1]]), 3, r"target\[0\]: label 5 outside 0..2"),
        (np.array([[0, -1], [1, 1]]), np.zeros((2, 2), int), 3, r"pred\[0\]: label -1 outside 0..2"),
        (np.array([[0.5, 1], [1, 1]]), np.zeros((2, 2), int), 3, "non-integer"),
        ([np.zeros((2, 2), int)], [np.zeros((2, 2), int)] * 2, 3, "1 image"),
        (np.zeros((2, 2), int), np.zeros((2, 2), int), 0, "num_classes"),
        (np.zeros(4, int), np.zeros(4, int), 3, "expected an"),
    ],
)
def test_bad_input_is_one_clear_error(pred, target, classes, message) -> None:
    with pytest.raises(MetricInputError, match=message):
        evaluate_parsing(pred, target, classes)


def test_ignore_label_inside_the_class_range_is_refused() -> None:
    with pytest.raises(MetricInputError, match="is a class label"):
        evaluate_parsing(np.zeros((2, 2), int), np.zeros((2, 2), int), 3, ignore_index=2)


def test_flip_merge_swaps_left_and_right_and_mirrors_back() -> None:
    import torch

    assert flip_permutation(20, LIP_FLIP_PAIRS)[14:20] == [15, 14, 17, 16, 19, 18]
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(2, 20, 4, 6))
    # a model that is exactly mirror-equivariant: its logits of the mirrored image are the mirrored logits
    # with left and right exchanged, so the merge returns the logits unchanged
    mirrored = np.flip(logits, axis=-1)[:, flip_permutation(20, LIP_FLIP_PAIRS)]
    assert np.allclose(merge_flip(logits, mirrored), logits)
    t = merge_flip(torch.from_numpy(logits), torch.from_numpy(mirrored.copy()))
    assert torch.allclose(t, torch.from_numpy(logits))
    # the SCHP formula, by hand, on one channel pair: out[14] = (a[14] + flip(b[15])) / 2
    b = rng.normal(size=logits.shape)
    merged = merge_flip(logits, b)
    assert np.allclose(merged[:, 14], (logits[:, 14] + np.flip(b[:, 15], axis=-1)) / 2)
    assert np.allclose(merged[:, 0], (logits[:, 0] + np.flip(b[:, 0], axis=-1)) / 2)
    # no sides (PASCAL-Person-Part): only the mirror
    assert np.allclose(merge_flip(logits[:, :7], b[:, :7], ()), (logits[:, :7] + np.flip(b[:, :7], axis=-1)) / 2)
    with pytest.raises(MetricInputError, match="overlap"):
        flip_permutation(20, [(14, 15), (15, 16)])

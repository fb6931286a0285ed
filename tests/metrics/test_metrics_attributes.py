"""Attribute metrics: the worked example under the three conventions, thresholds, empty cases, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from plipbench.metrics import evaluate_attributes

GT = np.array([[1, 0, 1, 0], [0, 0, 0, 0], [1, 1, 0, 0], [0, 1, 0, 0]])
PRED = np.array([[1, 0, 0, 1], [0, 1, 0, 0], [0, 0, 0, 0], [0, 1, 0, 0]])
PROBS = np.where(PRED == 1, 0.8, 0.2)


@pytest.mark.parametrize(
    ("convention", "acc", "prec", "rec", "f1"),
    [("rethinking", 0.3333, 0.375, 0.375, 0.375), ("deepmar", 0.4444, 0.5, 0.5, 0.5),
     ("rap-matlab", 0.3333, 0.5, 0.5, 0.5)],
)
def test_worked_example(convention, acc, prec, rec, f1):
    r = evaluate_attributes(PROBS, GT, convention=convention)
    assert [r["Acc"], r["Prec"], r["Rec"], r["F1"]] == pytest.approx([acc, prec, rec, f1], abs=5e-5)
    assert r["protocol"]["convention"] == convention
    if convention == "deepmar":
        assert np.isnan(r["mA"]) and r["attributes_without_positives"] == ["attr_3"]
    else:
        assert r["mA"] == pytest.approx(0.53125, abs=1e-12)


def test_per_attribute_table():
    r = evaluate_attributes(PROBS, GT, attribute_names=["a", "b", "c", "d"])
    t = r["per_attribute"]
    assert t["name"] == ["a", "b", "c", "d"]
    assert t["pos_recall"] == pytest.approx([0.5, 0.5, 0.0, 0.0])
    assert t["neg_recall"] == pytest.approx([1.0, 0.5, 1.0, 0.75])
    assert t["mA"] == pytest.approx([0.75, 0.5, 0.5, 0.375])
    assert t["precision"] == pytest.approx([1.0, 0.5, 0.0, 0.0])
    assert t["F1"] == pytest.approx([2 / 3, 0.5, 0.0, 0.0])
    assert t["positives"].tolist() == [2, 2, 1, 0]


def test_threshold_rules_at_exactly_the_threshold():
    probs = np.array([[0.5, 0.2], [0.9, 0.5]])
    labels = np.array([[1, 0], [1, 1]])
    strict = evaluate_attributes(probs, labels)
    loose = evaluate_attributes(probs, labels, threshold_rule=">=")
    assert strict["per_attribute"]["pos_recall"] == pytest.approx([0.5, 0.0])
    assert loose["per_attribute"]["pos_recall"] == pytest.approx([1.0, 1.0])
    assert loose["Acc"] == pytest.approx(1.0) and strict["Acc"] == pytest.approx((0 + 0.5) / 2)
    assert loose["protocol"]["threshold_rule"] == "probs >= threshold"


def test_all_empty_instances_give_zero_not_nan():
    zeros = np.zeros((3, 2))
    for convention in ("rethinking", "rap-matlab", "deepmar"):
        r = evaluate_attributes(zeros, zeros.astype(int), convention=convention)
        assert [r["Acc"], r["Prec"], r["Rec"], r["F1"]] == [0.0, 0.0, 0.0, 0.0]
    assert evaluate_attributes(zeros, zeros.astype(int))["mA"] == pytest.approx(0.5)  # neg recall 1, pos recall 0


@pytest.mark.parametrize(
    ("probs", "labels", "kwargs", "message"),
    [
        (PROBS[:3], GT, {}, "labels"),
        (PROBS + 0.5, GT, {}, "probs"),
        (np.where(PROBS > 0.5, np.nan, PROBS), GT, {}, "probs"),
        (PROBS, GT * 2, {}, "labels"),
        (PROBS, GT, dict(convention="peta"), "convention"),
        (PROBS, GT, dict(threshold_rule=">>"), "threshold_rule"),
        (PROBS, GT, dict(threshold=1.5), "threshold"),
        (PROBS, GT, dict(attribute_names=["a"]), "attribute_names"),
        (PROBS[:, :0], GT[:, :0], {}, "probs"),
        (PROBS[0], GT[0], {}, "probs"),
    ],
)
def test_bad_input(probs, labels, kwargs, message):
    with pytest.raises(ValueError, match=message):
        evaluate_attributes(probs, labels, **kwargs)

"""Factories for made-up but internally consistent TaskResults (scores equal the means of the per-query arrays)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from plipbench.evaluation.results import Provenance, TaskResult, encode_array


def _provenance(params: float | None, images_per_second: float | None, pretraining_seconds: float | None,
                fingerprint: str = "fp-test") -> Provenance:
    backbone: dict[str, Any] = {"name": "made-up"}
    if params is not None:
        backbone["parameter_count"] = params
    if pretraining_seconds is not None:
        backbone["pretraining_seconds"] = pretraining_seconds
    timings = {"total": 1.0}
    if images_per_second is not None:
        timings["images_per_second"] = images_per_second
    return Provenance(plipbench_version="0.1.0", task_spec_hash="spec", dataset_fingerprint=fingerprint,
                      backbone=backbone, created="2025-01-01T00:00:00Z", timings=timings)


def retrieval_result(backbone: str, task: str, *, hit_rate: float = 0.6, n: int = 400, seed: int = 0,
                     family: str = "text-reid", protocol: str = "zero-shot", main: str = "R@1",
                     dataset: str | None = None, saw: bool = False, params: float | None = None,
                     images_per_second: float | None = None, pretraining_seconds: float | None = None,
                     first_hit_rank: np.ndarray | None = None) -> TaskResult:
    """A ReID/retrieval result whose R@k, mAP and mINP are the means of its per-query arrays."""
    if first_hit_rank is None:
        rng = np.random.default_rng(seed)
        first_hit_rank = np.where(rng.random(n) < hit_rate, 0, rng.integers(1, 30, size=n))
    ranks = np.asarray(first_hit_rank, dtype=np.int64)
    ap = np.where(ranks >= 0, 1.0 / (np.maximum(ranks, 0) + 1.0), 0.0)
    inp = ap * 0.9
    scores = {f"R@{k}": float(((ranks >= 0) & (ranks < k)).mean()) for k in (1, 5, 10)}
    scores.update({"mAP": float(ap.mean()), "mINP": float(inp.mean())})
    return TaskResult(
        backbone=backbone, task=task, task_family=family, protocol=protocol, dataset=dataset or task,
        main_score=main, scores=scores, zero_shot=protocol == "zero-shot", saw_task_training_data=saw,
        per_query={"first_hit_rank": encode_array(ranks), "AP": encode_array(ap), "INP": encode_array(inp)},
        provenance=_provenance(params, images_per_second, pretraining_seconds),
    )


def plain_result(backbone: str, task: str, score: float, *, family: str = "text-reid",
                 protocol: str = "zero-shot", main: str = "R@1", saw: bool = False, **cost: float) -> TaskResult:
    """A result with a score only (no per-query data)."""
    return TaskResult(
        backbone=backbone, task=task, task_family=family, protocol=protocol, dataset=task, main_score=main,
        scores={main: score}, zero_shot=protocol == "zero-shot", saw_task_training_data=saw,
        provenance=_provenance(cost.get("params"), cost.get("images_per_second"), cost.get("pretraining_seconds")),
    )


def attribute_result(backbone: str, task: str = "pa100k", *, noise: float = 0.3, n: int = 300, n_attr: int = 6,
                     seed: int = 0, per_attribute: bool = True, protocol: str = "linear-probe") -> TaskResult:
    """An attribute result: probs/labels per image; scores from plipbench.metrics.evaluate_attributes."""
    from plipbench.metrics import evaluate_attributes

    rng = np.random.default_rng(seed)
    labels = (rng.random((n, n_attr)) < 0.4).astype(np.int64)
    probs = np.clip(labels * (1 - noise) + rng.random((n, n_attr)) * noise * 1.6, 0.0, 1.0)
    metrics = evaluate_attributes(probs, labels)
    scores = {k: float(metrics[k]) for k in ("mA", "Acc", "Prec", "Rec", "F1")}
    details: dict[str, Any] = {}
    if per_attribute:
        table = metrics["per_attribute"]
        details["per_attribute"] = [{"name": f"attr{j}", "mA": float(table["mA"][j])} for j in range(n_attr)]
    return TaskResult(
        backbone=backbone, task=task, task_family="attributes", protocol=protocol, dataset=task, main_score="mA",
        scores=scores, zero_shot=False, per_query={"probs": encode_array(probs), "labels": encode_array(labels)},
        details=details, provenance=_provenance(None, None, None),
    )


@pytest.fixture
def make_retrieval() -> Callable[..., TaskResult]:
    return retrieval_result


@pytest.fixture
def make_plain() -> Callable[..., TaskResult]:
    return plain_result


@pytest.fixture
def make_attribute() -> Callable[..., TaskResult]:
    return attribute_result

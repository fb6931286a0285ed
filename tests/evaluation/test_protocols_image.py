from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from protocol_fixtures import (
    IMAGE_TASK,
    assert_state_unchanged,
    check_fractions,
    image_only_backbone,
    make_context,
    plip_mini,
    real_store,
    state_snapshot,
    synthetic_dataset,
    task_data,
)

from plipbench.errors import ConfigError
from plipbench.evaluation.protocols import get_protocol
from plipbench.evaluation.protocols.image_reid import IMAGE_FINE_TUNE_DEFAULTS, batch_hard_triplet_loss

KEYS = ["R@1", "R@5", "R@10", "mAP", "mINP"]


@pytest.fixture(scope="module")
def market(tmp_path_factory):
    return synthetic_dataset(tmp_path_factory.getbasetemp(), "synth-market", "market1501", 48, 4)  # 18 train ids: two P x K batches


def _check_per_query(out, n_queries: int) -> None:
    pq = out.per_query
    assert set(pq) == {"AP", "INP", "first_hit_rank", "valid"}
    assert all(len(v) == n_queries for v in pq.values())
    valid = pq["valid"]
    assert valid.any()
    assert math.isclose(pq["AP"][valid].mean(), out.scores["mAP"], abs_tol=1e-9)
    assert math.isclose(pq["INP"][valid].mean(), out.scores["mINP"], abs_tol=1e-9)
    assert math.isclose((pq["first_hit_rank"][valid] == 0).mean(), out.scores["R@1"], abs_tol=1e-9)
    assert (pq["first_hit_rank"][~valid] == -1).all()


def test_zero_shot_scores_flip_and_rerank(market):
    backbone = plip_mini()
    data = task_data(market, val=False)
    store = real_store(backbone)
    plain = get_protocol("image-reid", "zero-shot")(make_context(IMAGE_TASK, "zero-shot", data, backbone, store))
    check_fractions(plain.scores, KEYS)
    _check_per_query(plain, len(data.query_records))
    assert plain.zero_shot and plain.selection_split is None
    assert plain.options == {"flip": False, "rerank": None}
    assert plain.metric_protocol["metric"] == "cosine" and plain.metric_protocol["rerank"] is None

    rerank = {"k1": 5, "k2": 2, "lambda_value": 0.3}
    other = get_protocol("image-reid", "zero-shot")(
        make_context(IMAGE_TASK, "zero-shot", data, backbone, store, {"flip": True, "rerank": rerank}))
    check_fractions(other.scores, KEYS)
    _check_per_query(other, len(data.query_records))
    assert other.options == {"flip": True, "rerank": rerank}
    assert other.metric_protocol["rerank"]["k1"] == 5
    assert not np.array_equal(other.per_query["AP"], plain.per_query["AP"])


def test_zero_shot_option_errors(market):
    backbone = image_only_backbone()
    data = task_data(market, val=False)
    run = get_protocol("image-reid", "zero-shot")
    with pytest.raises(ConfigError, match=r"synth-market1501, protocol zero-shot.*'flips'"):
        run(make_context(IMAGE_TASK, "zero-shot", data, backbone, real_store(backbone), {"flips": True}))
    with pytest.raises(ConfigError, match="rerank"):
        run(make_context(IMAGE_TASK, "zero-shot", data, backbone, real_store(backbone), {"rerank": {"k": 3}}))
    with pytest.raises(ConfigError, match="flip"):
        run(make_context(IMAGE_TASK, "zero-shot", data, backbone, real_store(backbone), {"flip": "yes"}))
    with pytest.raises(ConfigError, match="metric option 'ks'"):
        run(make_context(IMAGE_TASK, "zero-shot", data, backbone, real_store(backbone), metric_options={"ks": [1]}))
    with pytest.raises(ConfigError, match="max_steps"):
        get_protocol("image-reid", "fine-tune")(
            make_context(IMAGE_TASK, "fine-tune", data, backbone, real_store(backbone), {"max_steps": 0}))


def test_fine_tune_bot_copy_last_epoch(market):
    backbone = plip_mini()
    before = state_snapshot(backbone)
    data = task_data(market, val=False)
    ctx = make_context(IMAGE_TASK, "fine-tune", data, backbone, real_store(backbone), {"max_steps": 2, "flip": True})
    out = get_protocol("image-reid", "fine-tune")(ctx)
    assert_state_unchanged(backbone, before)
    check_fractions(out.scores, KEYS)
    _check_per_query(out, len(data.query_records))
    assert not out.zero_shot and out.selection_split is None
    assert out.details["selection"] == "last-epoch" and out.details["steps"] == 2
    assert out.options == {**IMAGE_FINE_TUNE_DEFAULTS, "max_steps": 2, "flip": True}
    assert np.isfinite(out.details["train_loss"][0]["id"]) and np.isfinite(out.details["train_loss"][0]["triplet"])


def test_fine_tune_domain_generalization_trains_on_the_source(market, tmp_path_factory):
    duke = synthetic_dataset(tmp_path_factory.getbasetemp(), "synth-duke", "dukemtmc", 20, 3)
    backbone = image_only_backbone()
    data = task_data(market, val=False, source=duke)
    out = get_protocol("image-reid", "fine-tune")(
        make_context(IMAGE_TASK, "fine-tune", data, backbone, real_store(backbone), {"max_steps": 1}))
    check_fractions(out.scores, KEYS)
    assert out.details["num_train_images"] == len(duke.split("train"))
    assert out.details["num_valid_queries"] > 0


def test_fine_tune_few_identities_lowers_p(market):
    backbone = image_only_backbone()
    data = task_data(market, val=False)
    pids = sorted({r.pid for r in data.train_records})[:2]
    data.train_records = [r for r in data.train_records if r.pid in pids]
    out = get_protocol("image-reid", "fine-tune")(
        make_context(IMAGE_TASK, "fine-tune", data, backbone, real_store(backbone), {"identities_per_batch": 16}))
    assert out.details["effective_identities_per_batch"] <= 2 * 2
    assert out.details["num_train_identities"] == 2


def test_batch_hard_triplet_hand_case():
    features = torch.tensor([[0.0], [1.0], [3.0]])
    labels = torch.tensor([0, 0, 1])
    assert batch_hard_triplet_loss(features, labels, margin=0.3).item() == 0.0
    # margin 3: anchors (dp, dn) = (1, 3), (1, 2), (~0, 2) -> (1 + 2 + 1) / 3
    assert math.isclose(batch_hard_triplet_loss(features, labels, margin=3.0).item(), 4 / 3, abs_tol=1e-5)
    assert batch_hard_triplet_loss(features, torch.zeros(3, dtype=torch.long), margin=0.3).item() == 0.0

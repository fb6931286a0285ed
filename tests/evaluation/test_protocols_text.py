from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from protocol_fixtures import (
    TEXT_TASK,
    assert_state_unchanged,
    check_fractions,
    engineered_text_data,
    image_only_backbone,
    make_context,
    plip_mini,
    real_store,
    state_snapshot,
    stub_text_backbone,
    synthetic_dataset,
    task_data,
)

from plipbench.errors import ConfigError, PlipbenchError
from plipbench.evaluation.protocols import get_protocol
from plipbench.evaluation.protocols.options import TextLinearProbeOptions
from plipbench.evaluation.protocols.text_reid import cmpc_loss

KEYS = ["R@1", "R@5", "R@10", "mAP", "mINP"]


@pytest.fixture(scope="module")
def cuhk(tmp_path_factory):
    return synthetic_dataset(tmp_path_factory.getbasetemp(), "synth-cuhk", "cuhk-pedes", 40, 2)


def _check_per_query(out, n_queries: int) -> None:
    assert set(out.per_query) == {"AP", "INP", "first_hit_rank"}
    assert all(len(v) == n_queries for v in out.per_query.values())
    assert math.isclose(out.per_query["AP"].mean(), out.scores["mAP"], abs_tol=1e-9)
    assert math.isclose(out.per_query["INP"].mean(), out.scores["mINP"], abs_tol=1e-9)
    assert math.isclose((out.per_query["first_hit_rank"] == 0).mean(), out.scores["R@1"], abs_tol=1e-9)


def test_zero_shot_scores_and_per_query(cuhk):
    backbone = plip_mini()
    data = task_data(cuhk)
    out = get_protocol("text-reid", "zero-shot")(make_context(TEXT_TASK, "zero-shot", data, backbone,
                                                              real_store(backbone)))
    check_fractions(out.scores, KEYS)
    n_captions = sum(len(r.captions) for r in data.test_records)
    _check_per_query(out, n_captions)
    assert out.zero_shot and out.selection_split is None
    assert out.options == {"directions": ["t2i"]}
    assert out.metric_protocol["ks"] == [1, 5, 10]
    assert out.details["num_gallery"] == len(data.test_records)


def test_zero_shot_i2t_and_option_errors():
    data, store = engineered_text_data()
    ctx = make_context(TEXT_TASK, "zero-shot", data, stub_text_backbone(), store, {"directions": ["t2i", "i2t"]},
                       metric_options={"ks": [1, 3]})
    out = get_protocol("text-reid", "zero-shot")(ctx)
    check_fractions(out.scores, ["R@1", "R@3", "mAP", "mINP", "i2t_R@1", "i2t_R@3", "i2t_mAP", "i2t_mINP"])
    assert "R@5" not in out.scores
    with pytest.raises(ConfigError, match=r"synth-cuhk-pedes.*zero-shot.*'epochs'"):
        get_protocol("text-reid", "zero-shot")(make_context(TEXT_TASK, "zero-shot", data, stub_text_backbone(),
                                                            store, {"epochs": 3}))
    with pytest.raises(ConfigError, match="directions"):
        get_protocol("text-reid", "zero-shot")(make_context(TEXT_TASK, "zero-shot", data, stub_text_backbone(),
                                                            store, {"directions": ["i2i"]}))
    with pytest.raises(ConfigError, match="metric option 'metric'"):
        get_protocol("text-reid", "zero-shot")(make_context(TEXT_TASK, "zero-shot", data, stub_text_backbone(),
                                                            store, metric_options={"metric": "cosine"}))
    with pytest.raises(ConfigError, match="'lr'"):
        get_protocol("text-reid", "linear-probe")(make_context(TEXT_TASK, "linear-probe", data, stub_text_backbone(),
                                                               store, {"lr": -1}))


def test_image_only_backbone_is_a_clear_error(cuhk):
    backbone = image_only_backbone()
    for base in ("zero-shot", "linear-probe", "fine-tune"):
        ctx = make_context(TEXT_TASK, base, task_data(cuhk), backbone, real_store(backbone))
        with pytest.raises(PlipbenchError, match="tiny-cnn has no text encoder; task synth-cuhk-pedes"):
            get_protocol("text-reid", base)(ctx)


def test_linear_probe_learns_what_zero_shot_cannot():
    data, store = engineered_text_data()
    zs = get_protocol("text-reid", "zero-shot")(make_context(TEXT_TASK, "zero-shot", data, stub_text_backbone(), store))
    ctx = make_context(TEXT_TASK, "linear-probe", data, stub_text_backbone(), store, {"epochs": 30})
    lp = get_protocol("text-reid", "linear-probe")(ctx)
    assert zs.scores["R@1"] < 0.3
    assert lp.scores["R@1"] > 0.9
    check_fractions(lp.scores, KEYS)
    _check_per_query(lp, sum(len(r.captions) for r in data.test_records))
    assert not lp.zero_shot
    assert lp.selection_split == "val" and lp.details["selection"] == "best val R@1"
    assert lp.options == {**TextLinearProbeOptions.defaults(), "epochs": 30, "lr": 1e-3}
    assert len(lp.details["val_R1"]) == 30
    assert lp.details["val_R1"][lp.details["selected_epoch"] - 1] == max(lp.details["val_R1"])


def test_linear_probe_selection_never_reads_the_test_split():
    runs = []
    for test_seed in (1, 2):
        data, store = engineered_text_data(test_seed=test_seed)
        out = get_protocol("text-reid", "linear-probe")(
            make_context(TEXT_TASK, "linear-probe", data, stub_text_backbone(), store, {"epochs": 8}))
        runs.append(out)
    assert runs[0].details["val_R1"] == runs[1].details["val_R1"]
    assert runs[0].details["train_loss"] == runs[1].details["train_loss"]
    assert runs[0].details["selected_epoch"] == runs[1].details["selected_epoch"]
    assert runs[0].per_query["AP"].tolist() != runs[1].per_query["AP"].tolist()  # the test sets do differ


def test_linear_probe_without_val_keeps_the_last_epoch_and_is_seeded():
    data, store = engineered_text_data()
    data.val_records = []
    outs = [get_protocol("text-reid", "linear-probe")(
        make_context(TEXT_TASK, "linear-probe", data, stub_text_backbone(), store, {"epochs": 3, "init": "random"},
                     seed=seed)) for seed in (0, 0, 1)]
    assert outs[0].selection_split is None
    assert outs[0].details["selection"] == "last-epoch" and outs[0].details["selected_epoch"] == 3
    assert outs[0].scores == outs[1].scores
    assert outs[0].details["train_loss"] != outs[2].details["train_loss"]


def test_fine_tune_trains_a_copy_and_selects_on_val(cuhk):
    backbone = plip_mini()
    before = state_snapshot(backbone)
    data = task_data(cuhk)
    ctx = make_context(TEXT_TASK, "fine-tune", data, backbone, real_store(backbone), {"epochs": 2})
    out = get_protocol("text-reid", "fine-tune")(ctx)
    assert_state_unchanged(backbone, before)
    check_fractions(out.scores, KEYS)
    _check_per_query(out, sum(len(r.captions) for r in data.test_records))
    assert not out.zero_shot and out.selection_split == "val"
    assert len(out.details["val_R1"]) == 2 and out.details["steps"] >= 2
    curve = out.details["curve"]
    assert [p["epoch"] for p in curve] == [1, 2] and [p["val"] for p in curve] == out.details["val_R1"]
    assert [p["loss"]["loss"] for p in curve] == out.details["train_loss"]
    assert all(len(p["lr_groups"]) == 2 for p in curve)  # the encoder's and the CMPC classifier's
    assert all(np.isfinite(out.details["train_loss"]))
    assert out.options["epochs"] == 2 and out.options["loss"] == "cmpm+cmpc"
    assert {"train_s", "test_features_s", "metric_s"} <= set(out.timings)


def test_cmpc_loss_hand_cases():
    torch.manual_seed(0)
    image, text = torch.randn(5, 8), torch.randn(5, 8)
    labels = torch.tensor([0, 1, 2, 0, 1])
    same_columns = torch.ones(8, 3)  # every class scores the same: each cross-entropy is log(3)
    assert math.isclose(cmpc_loss(image, text, labels, same_columns).item(), 2 * math.log(3), rel_tol=1e-6)
    # scaling a column does not matter (W is column-normalised)
    weight = torch.randn(8, 3)
    scaled = weight * torch.tensor([1.0, 5.0, 0.2])
    assert torch.allclose(cmpc_loss(image, text, labels, weight), cmpc_loss(image, text, labels, scaled))
    # identical image/text pairs classified by their own directions: lower loss than by random columns
    codes = torch.eye(8)[:3] * 10
    aligned = cmpc_loss(codes, codes, torch.arange(3), codes.t().clone())
    assert aligned.item() < cmpc_loss(codes, codes, torch.arange(3), weight).item()


def test_fine_tune_does_not_depend_on_the_global_rng(cuhk):
    """Text dropout draws from torch's RNG: a result must not change with whatever ran before it."""
    import torch

    backbone = plip_mini()
    data = task_data(cuhk)
    scores = []
    for prior in (0, 12345):
        torch.manual_seed(prior)
        ctx = make_context(TEXT_TASK, "fine-tune", data, backbone, real_store(backbone), {"max_steps": 2})
        scores.append(get_protocol("text-reid", "fine-tune")(ctx).scores)
    assert scores[0] == scores[1]

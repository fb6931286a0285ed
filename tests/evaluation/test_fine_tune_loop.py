"""The shared fine-tune loop: the per-epoch curve in ``details["curve"]`` and the progress bar."""

from __future__ import annotations

import pytest
import torch
from protocol_fixtures import (
    ATTRIBUTE_TASK,
    IMAGE_TASK,
    image_only_backbone,
    make_context,
    real_store,
    synthetic_dataset,
    task_data,
)

from plipbench.evaluation.protocols import get_protocol
from plipbench.evaluation.protocols.loop import RankShard


@pytest.fixture(scope="module")
def pa100k(tmp_path_factory):
    return task_data(synthetic_dataset(tmp_path_factory.mktemp("data"), "synth-pa100k", "pa100k", 12, 4))


def test_curve_has_loss_parts_lr_and_val_per_epoch(pa100k) -> None:
    torch.set_num_threads(1)
    backbone = image_only_backbone()
    ctx = make_context(ATTRIBUTE_TASK, "fine-tune", pa100k, backbone, real_store(backbone),
                       {"epochs": 3, "batch_size": 8, "warmup_steps": 6, "lr": 1e-3})
    out = get_protocol("attributes", "fine-tune")(ctx)
    curve = out.details["curve"]
    steps_per_epoch = out.details["steps"] // 3
    assert [p["epoch"] for p in curve] == [1, 2, 3]
    assert [p["steps"] for p in curve] == [steps_per_epoch * e for e in (1, 2, 3)]
    assert [p["val"] for p in curve] == out.details["val_mA"]
    assert [p["loss"]["loss"] for p in curve] == out.details["train_loss"]
    # linear warm-up over 6 steps from 1/7 of the rate: the rate after the epoch's last step
    for point in curve:
        factor = min(1.0, (point["steps"] + 1) / 7)
        assert point["lr"] == pytest.approx(1e-3 * factor, rel=1e-5)
        assert point["lr_groups"] == pytest.approx([1e-3 * factor, 1e-2 * factor], rel=1e-5)


def test_image_reid_curve_has_both_loss_parts_and_no_val(tmp_path) -> None:
    backbone = image_only_backbone()
    data = task_data(synthetic_dataset(tmp_path, "synth-market", "market1501", 12, 4), val=False)
    out = get_protocol("image-reid", "fine-tune")(make_context(IMAGE_TASK, "fine-tune", data, backbone,
                                                               real_store(backbone), {"epochs": 2}))
    curve = out.details["curve"]
    assert len(curve) == 2 and all(set(p["loss"]) == {"id", "triplet"} and "val" not in p for p in curve)


def test_progress_shows_epoch_loss_parts_and_lr(pa100k, capsys) -> None:
    backbone = image_only_backbone()
    ctx = make_context(ATTRIBUTE_TASK, "fine-tune", pa100k, backbone, real_store(backbone),
                       {"epochs": 2, "batch_size": 8})
    quiet = get_protocol("attributes", "fine-tune")(ctx)
    assert capsys.readouterr().out == ""  # progress is off unless asked for (--no-progress, tests)
    ctx.progress = True
    shown = get_protocol("attributes", "fine-tune")(ctx)
    text = " ".join(capsys.readouterr().out.split())  # the console wraps long lines
    assert "attributes fine-tune epoch 1/2: loss" in text and "epoch 2/2" in text and "lr 1.00e-04" in text
    assert shown.scores == quiet.scores  # the bar changes no number


def test_rank_shards_are_exact_and_contiguous() -> None:
    batches = [list(range(10)), list(range(10, 15))]
    shards = [list(RankShard(batches, rank, 3)) for rank in range(3)]
    assert shards[0] == [[0, 1, 2], [10]] and shards[1] == [[3, 4, 5], [11, 12]] and shards[2] == [[6, 7, 8, 9],
                                                                                               [13, 14]]
    assert sorted(sum((s[1] for s in shards), [])) == batches[1]

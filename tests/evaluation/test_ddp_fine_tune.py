"""Real DDP fine-tunes: 2 gloo ranks at half the batch each equal 1 process at the full batch."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from ddp_fixtures import attribute_fine_tune, rank_worker
from protocol_fixtures import (
    ATTRIBUTE_TASK,
    image_only_backbone,
    make_context,
    real_store,
    synthetic_dataset,
    task_data,
)

from plipbench.errors import ConfigError
from plipbench.evaluation.protocols import get_protocol


@pytest.mark.distributed
@pytest.mark.parametrize("batch_size", [16, 13])  # 13: uneven shards (6 + 7), the loss scaling at work
def test_two_gloo_ranks_at_half_the_batch_equal_one_process(tmp_path, batch_size) -> None:
    dataset = synthetic_dataset(tmp_path / "data", "synth-pa100k", "pa100k", 16, 4)
    n_train = len(dataset.split("train"))
    train_sizes = [min(batch_size, n_train - start) for start in range(0, n_train, batch_size)]
    one = attribute_fine_tune(dataset.root, {"batch_size": batch_size})
    mp.spawn(rank_worker, args=(2, str(dataset.root), {"batch_size": batch_size}, str(tmp_path)), nprocs=2,
             join=True)
    shards = [json.loads((tmp_path / f"shards-{r}.json").read_text()) for r in (0, 1)]
    epochs = one.details["steps"] // len(train_sizes)
    assert epochs == 2
    assert [a + b for a, b in zip(*shards, strict=True)] == train_sizes * epochs, "each rank took its shard"
    assert shards[0] == [n // 2 for n in train_sizes] * epochs
    two = json.loads((tmp_path / "result.json").read_text())
    probs = np.load(tmp_path / "probs.npy")
    print(f"batch {batch_size}: max |probs difference| {np.abs(probs - one.per_query['probs']).max():.2e}")
    np.testing.assert_allclose(probs, one.per_query["probs"], rtol=0, atol=1e-5)
    for key, value in one.scores.items():
        assert two["scores"][key] == pytest.approx(value, abs=1e-5), key
    assert two["details"]["selected_epoch"] == one.details["selected_epoch"]
    for a, b in zip(one.details["curve"], two["details"]["curve"], strict=True):
        assert b["loss"]["loss"] == pytest.approx(a["loss"]["loss"], abs=1e-4) and b["lr"] == a["lr"]


def test_sync_bn_is_refused_on_cpu(tmp_path) -> None:
    dataset = synthetic_dataset(tmp_path / "data", "synth-pa100k", "pa100k", 12, 4)
    backbone = image_only_backbone()
    ctx = make_context(ATTRIBUTE_TASK, "fine-tune", task_data(dataset), backbone, real_store(backbone),
                       {"sync_bn": True})
    with pytest.raises(ConfigError, match=r"sync_bn.*CUDA with nccl only, not on CPU or gloo"):
        get_protocol("attributes", "fine-tune")(ctx)
    assert not torch.distributed.is_initialized()

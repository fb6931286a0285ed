from __future__ import annotations

import pytest

from plipbench.pretrain.sampler import IdentityBatchSampler

PIDS = [p for p in range(10) for _ in range(4)] + [10]  # identity 10 has a single image


def test_batches_are_p_groups_of_k_same_identity_images() -> None:
    sampler = IdentityBatchSampler(PIDS, identities_per_batch=3, images_per_identity=2, seed=1)
    batches = list(sampler)
    assert len(batches) == len(sampler) > 0
    for batch in batches:
        assert len(batch) == 6
        for g in range(3):
            group = batch[2 * g:2 * g + 2]
            assert len({PIDS[i] for i in group}) == 1
    assert sampler.short_identities == 1
    assert "1 identities have fewer than K=2 images" in sampler.describe()


def test_deterministic_per_seed_and_epoch() -> None:
    a = IdentityBatchSampler(PIDS, identities_per_batch=2, images_per_identity=2, seed=3)
    b = IdentityBatchSampler(PIDS, identities_per_batch=2, images_per_identity=2, seed=3)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first


def test_ranks_get_disjoint_equal_shards() -> None:
    ranks = [
        IdentityBatchSampler(PIDS, identities_per_batch=2, images_per_identity=2, seed=0, rank=r, world_size=2)
        for r in range(2)
    ]
    b0, b1 = list(ranks[0]), list(ranks[1])
    assert len(b0) == len(b1) == len(ranks[0])
    groups0 = {tuple(b[i:i + 2]) for b in b0 for i in (0, 2)}
    groups1 = {tuple(b[i:i + 2]) for b in b1 for i in (0, 2)}
    assert not groups0 & groups1


def test_resume_continues_with_next_batch() -> None:
    full = IdentityBatchSampler(PIDS, identities_per_batch=2, images_per_identity=2, seed=5)
    full.set_epoch(2)
    expected = list(full)
    resumed = IdentityBatchSampler(PIDS, identities_per_batch=2, images_per_identity=2, seed=5)
    resumed.load_state_dict(full.state_dict(batches_done=3) | {"epoch": 2})
    assert list(resumed) == expected[3:]
    with pytest.raises(ValueError, match="seed"):
        resumed.load_state_dict({"epoch": 0, "batches_done": 0, "seed": 9})


def test_too_few_identities_is_an_error() -> None:
    with pytest.raises(ValueError, match="fewer than one batch"):
        IdentityBatchSampler([0, 1], identities_per_batch=4, images_per_identity=2)

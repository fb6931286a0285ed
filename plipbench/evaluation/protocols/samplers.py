"""Batch samplers of the fine-tune recipes besides the P x K identity sampler
(:class:`plipbench.pretrain.sampler.IdentityBatchSampler`)."""

from __future__ import annotations

from collections.abc import Iterator


class RandomBatchSampler:
    """Shuffled batches of ``batch_size`` indices out of ``n`` (the recipes' ``sampler.kind: random``: IRRA,
    PLIP's CMPM/C), a fresh permutation per epoch seeded by ``(seed, epoch)``; the last short batch is kept
    unless ``drop_last``."""

    def __init__(self, n: int, batch_size: int, *, drop_last: bool = False, seed: int = 0) -> None:
        self.n, self.batch_size, self.drop_last, self.seed, self.epoch = int(n), int(batch_size), drop_last, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[list[int]]:
        import numpy as np

        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.n).tolist()
        for start in range(0, len(order), self.batch_size):
            batch = order[start:start + self.batch_size]
            if len(batch) == self.batch_size or not self.drop_last:
                yield batch

    def __len__(self) -> int:
        full, rest = divmod(self.n, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def describe(self) -> str:
        return f"{self.n} samples shuffled per epoch, batches of {self.batch_size}, {len(self)} batches/epoch"

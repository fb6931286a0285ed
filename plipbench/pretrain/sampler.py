"""Identity-aware P x K batch sampling, sharded across ranks, deterministic and resumable.

IVLC needs several images of the same person in a batch (PLIP §2.3 defines positives by identity);
with random batches same-identity pairs would be rare. Each epoch, every identity's images are
shuffled and cut into groups of K; a last partial group is filled by sampling that identity's
images again (so identities with fewer than K images are repeated - :attr:`short_identities`
counts them); all groups are shuffled, dealt round-robin to the ranks (equal counts per rank, the
remainder dropped, so no rank waits for another), and P groups form one batch of P x K indices.

The order depends only on (seed, epoch), never on the number of workers; ``state_dict`` records the
epoch and the number of batches already consumed, so a resumed run continues with the next batch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np


class IdentityBatchSampler:
    def __init__(
        self,
        pids: Sequence[int],
        *,
        identities_per_batch: int,
        images_per_identity: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if identities_per_batch < 1 or images_per_identity < 1:
            raise ValueError("identities_per_batch and images_per_identity must be >= 1")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
        self.P, self.K = identities_per_batch, images_per_identity
        self.seed, self.rank, self.world_size = seed, rank, world_size
        by_pid: dict[int, list[int]] = {}
        for index, pid in enumerate(pids):
            by_pid.setdefault(int(pid), []).append(index)
        if not by_pid:
            raise ValueError("cannot sample from an empty dataset")
        self._pids = sorted(by_pid)
        self._indices = [np.asarray(by_pid[p], dtype=np.int64) for p in self._pids]
        self.short_identities = sum(len(ix) < self.K for ix in self._indices)
        self.epoch = 0
        self._start_batch = 0
        if len(self) == 0:
            raise ValueError(
                f"{len(self._pids)} identities give fewer than one batch of {self.P} identities per rank "
                f"on {self.world_size} rank(s)"
            )

    def describe(self) -> str:
        """One line for logs: sizes and what was done with identities that have fewer than K images."""
        return (
            f"{len(self._pids)} identities, P={self.P} x K={self.K}, {len(self)} batches/epoch/rank; "
            f"{self.short_identities} identities have fewer than K={self.K} images and are sampled with "
            "replacement"
        )

    def _groups(self, epoch: int) -> list[np.ndarray]:
        rng = np.random.default_rng([self.seed, epoch])
        groups: list[np.ndarray] = []
        for images in self._indices:
            shuffled = rng.permutation(images)
            n_full, rest = divmod(len(shuffled), self.K)
            for g in range(n_full):
                groups.append(shuffled[g * self.K:(g + 1) * self.K])
            if rest or n_full == 0:
                tail = shuffled[n_full * self.K:]
                fill = rng.choice(images, size=self.K - len(tail), replace=True)
                groups.append(np.concatenate([tail, fill]))
        order = rng.permutation(len(groups))
        return [groups[i] for i in order]

    def _batches(self, epoch: int) -> list[list[int]]:
        groups = self._groups(epoch)
        per_rank = len(groups) // self.world_size
        mine = groups[self.rank: per_rank * self.world_size: self.world_size]
        n_batches = len(mine) // self.P
        return [
            np.concatenate(mine[b * self.P:(b + 1) * self.P]).tolist() for b in range(n_batches)
        ]

    def __len__(self) -> int:
        n_groups = sum(max(1, -(-len(ix) // self.K)) for ix in self._indices)
        return (n_groups // self.world_size) // self.P

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        self._start_batch = 0

    def __iter__(self) -> Iterator[list[int]]:
        batches = self._batches(self.epoch)
        start, self._start_batch = self._start_batch, 0
        yield from batches[start:]

    def state_dict(self, batches_done: int) -> dict[str, int]:
        return {"epoch": self.epoch, "batches_done": int(batches_done), "seed": self.seed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if int(state["seed"]) != self.seed:
            raise ValueError(f"sampler seed {state['seed']} in the checkpoint differs from {self.seed}")
        self.epoch = int(state["epoch"])
        self._start_batch = int(state["batches_done"])

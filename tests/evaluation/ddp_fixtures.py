"""The worker of the DDP fine-tune test: one rank of a gloo process group running the attribute fine-tune.

A module of its own (not the test file) so that ``torch.multiprocessing.spawn`` can import it in the children.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

ATTRIBUTE_OPTIONS = {"epochs": 2, "lr": 1e-3, "logits_bn": False}  # no batch-dependent layer anywhere


def attribute_fine_tune(root: Path, options: dict):
    """The attribute fine-tune of the tiny BN-free CNN on the synthetic twin read from ``root``."""
    from protocol_fixtures import ATTRIBUTE_TASK, image_only_backbone, make_context, real_store, task_data

    from plipbench.data.readers import read_dataset
    from plipbench.evaluation.protocols import get_protocol

    torch.set_num_threads(1)
    backbone = image_only_backbone()
    ctx = make_context(ATTRIBUTE_TASK, "fine-tune", task_data(read_dataset("pa100k", root)), backbone,
                       real_store(backbone), {**ATTRIBUTE_OPTIONS, **options})
    return get_protocol("attributes", "fine-tune")(ctx)


def rank_worker(rank: int, world_size: int, root: str, options: dict, out: str) -> None:
    import faulthandler
    import os

    import torch.distributed as dist

    faulthandler.enable(all_threads=True)  # a crash in a rank prints every thread's stack

    from plipbench.evaluation.protocols import loop

    dist.init_process_group("gloo", init_method=f"file://{out}/rendezvous", rank=rank, world_size=world_size)
    shards: list[int] = []

    class CountingShard(loop.RankShard):  # records the shard sizes this rank trained on
        def __iter__(self):
            for batch in super().__iter__():
                shards.append(len(batch))
                yield batch

    loop.RankShard = CountingShard
    try:
        output = attribute_fine_tune(Path(root), options)
    finally:
        dist.destroy_process_group()
    Path(out, f"shards-{rank}.json").write_text(json.dumps(shards))
    if rank == 0:
        np.save(Path(out, "probs.npy"), output.per_query["probs"])
        Path(out, "result.json").write_text(json.dumps({"scores": output.scores, "details": output.details}))
    # The outputs are written: leave without the interpreter's and C++'s shutdown. Measured on a 2-core machine, 3 of
    # 9 runs of the test had a rank abort at exit ("terminate called without an active exception", SIGABRT) after
    # its work was done, which mp.spawn reports as a failed test.
    os._exit(0)

"""torch.distributed helpers: join the process group under torchrun, barriers, gathering objects.

Launch: ``torchrun --nproc_per_node N -m plipbench.cli <command> ...``. nccl on CUDA, gloo on CPU.
Without torchrun (WORLD_SIZE unset or 1) everything runs in one process and these are no-ops.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any


@dataclass
class DistributedContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed() -> DistributedContext:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1); nccl on CUDA, else gloo."""
    import torch
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    if dist.is_available() and dist.is_initialized():
        return DistributedContext(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    return DistributedContext()


def rank_device(device: str) -> str:
    """Under torchrun, a bare ``"cuda"`` becomes this rank's GPU ``cuda:<LOCAL_RANK>`` (made the current one), so
    that the ranks do not share GPU 0; any other device, and every single-process run, is returned unchanged."""
    if str(device) != "cuda" or int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return device
    import torch

    local = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    if torch.cuda.is_available():
        torch.cuda.set_device(torch.device(local))
    return local


def barrier(ctx: DistributedContext) -> None:
    if ctx.world_size > 1:
        import torch.distributed as dist

        dist.barrier()


def all_gather(ctx: DistributedContext, obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order (a list of one item without torchrun)."""
    if ctx.world_size == 1:
        return [obj]
    import torch.distributed as dist

    out: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast(ctx: DistributedContext, obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank."""
    if ctx.world_size == 1:
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]

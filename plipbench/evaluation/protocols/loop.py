"""The epoch loop every fine-tune protocol shares: checkpoints and resume, the per-epoch curve, a progress bar,
and real DistributedDataParallel under torchrun.

One process (the default, and every ``plipbench bench`` run): the loop is the plain one. Checkpoints only read
state (they draw no random numbers), the progress bar is off unless asked for, and no DDP code runs, so the
numbers are those of the loop without these features.

Under torchrun (``torch.distributed`` initialised with world size W > 1) the trainable modules are wrapped in
one :class:`torch.nn.parallel.DistributedDataParallel` (gloo on CPU, nccl on CUDA) and every global batch of
the protocol's sampler (the recipe's batch) is cut into W exact contiguous shards (rank r takes
``[r*B//W, (r+1)*B//W)``); each rank's loss is scaled by ``W * B_r / B`` so that DDP's gradient average equals
the gradient of the full batch's mean loss, also when B is not a multiple of W. A loss that couples the samples
of a batch (batch-hard triplet, CMPM) sees only a rank's shard, as in every DDP ReID trainer; a loss that is a
per-sample mean (the attribute BCE, cross-entropy) gives the single-process gradient up to float rounding.
Validation features are extracted by all ranks (sharded, :class:`~plipbench.evaluation.features.FeatureStore`)
and rank 0's score decides the kept epoch for everyone; only rank 0 writes checkpoints and results.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from plipbench.errors import PlipbenchError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from plipbench.evaluation.protocols.accel import Acceleration
    from plipbench.evaluation.resume import FineTuneCheckpoint
    from plipbench.recipes.schema import EmaSpec


class FineTuneRecord:
    """What :func:`fine_tune_loop` did: per-epoch mean losses, the val curve, the kept epoch, the steps, and
    ``curve``: per epoch ``{"epoch" (1-based), "steps" (so far), "loss" (each part's epoch mean), "lr" (the first
    parameter group's learning rate after the epoch's last step), "lr_groups" (every group's, when there are
    several), "val" (the validation score, when validating)}``. Protocols store it as ``details["curve"]``."""

    def __init__(self) -> None:
        self.losses: list[dict[str, float]] = []  # per epoch: each loss part averaged over the epoch
        self.val_curve: list[float] = []
        self.best_epoch: int | None = None  # 0-based epoch whose weights were kept (None: the last one)
        self.last_epoch = -1
        self.steps = 0
        self.curve: list[dict[str, Any]] = []

    @property
    def selected_epoch(self) -> int:
        """1-based epoch whose weights the model holds after the loop."""
        return (self.best_epoch if self.best_epoch is not None else self.last_epoch) + 1

    def to_json(self) -> dict[str, Any]:
        return {"losses": self.losses, "val_curve": self.val_curve, "best_epoch": self.best_epoch,
                "last_epoch": self.last_epoch, "steps": self.steps, "curve": self.curve}

    @classmethod
    def from_json(cls, stored: Mapping[str, Any]) -> FineTuneRecord:
        record = cls()
        for key in ("losses", "val_curve", "best_epoch", "last_epoch", "steps", "curve"):
            setattr(record, key, stored[key])
        return record


# -- distributed -----------------------------------------------------------------------------------------
def _world() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class RankShard:
    """The batch sampler of one rank: its exact contiguous shard of every global batch of ``sampler``."""

    def __init__(self, sampler: Any, rank: int, world_size: int) -> None:
        self.sampler, self.rank, self.world_size = sampler, rank, world_size

    def __iter__(self) -> Any:
        for batch in self.sampler:
            batch = list(batch)
            if len(batch) < self.world_size:
                raise PlipbenchError(f"a training batch of {len(batch)} sample(s) cannot be shared by "
                                     f"{self.world_size} ranks; use a larger batch or fewer ranks")
            yield batch[len(batch) * self.rank // self.world_size:len(batch) * (self.rank + 1) // self.world_size]

    def __len__(self) -> int:
        return len(self.sampler)


def _ddp(train_modules: Sequence[Any], extra: Sequence[Any], step: Callable[[Any], Any], device: str) -> Any:
    """Every trainable module (and bare parameter) of a step as one ``nn.Module`` whose forward is the step,
    wrapped in DistributedDataParallel, so that DDP sees the forward and all-reduces the gradients in backward."""
    import torch
    from torch.nn.parallel import DistributedDataParallel

    class Steps(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.parts = torch.nn.ModuleList(train_modules)
            self.extra = torch.nn.ParameterList(extra)

        def forward(self, batch: Any) -> Any:
            return step(batch)

    device_ids = [torch.device(device).index or 0] if str(device).startswith("cuda") else None
    # unused parameters: a backbone's pre-training heads (text decoder, MLM) get no gradient in a fine-tune
    return DistributedDataParallel(Steps(), device_ids=device_ids, find_unused_parameters=True)


def _reduce_sums(sums: dict[str, float], seen: float) -> tuple[dict[str, float], float]:
    """Epoch sums of the loss parts and weights added over the ranks (for the curve)."""
    import torch
    import torch.distributed as dist

    names = sorted(sums)
    box = torch.tensor([sums[n] for n in names] + [seen], dtype=torch.float64)
    dist.all_reduce(box)
    return {n: float(v) for n, v in zip(names, box[:-1].tolist(), strict=True)}, float(box[-1])


def _broadcast_score(score: float) -> float:
    import torch
    import torch.distributed as dist

    box = torch.tensor([score], dtype=torch.float64)
    dist.broadcast(box, src=0)
    return float(box[0])


# -- progress ---------------------------------------------------------------------------------------------
def _progress(enabled: bool) -> Any:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[losses]}"),
        TextColumn("lr {task.fields[lr]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
        disable=not enabled, transient=True,  # the bar goes when done; the per-epoch lines stay
    )  # fmt: skip


def _parts_text(parts: Mapping[str, float]) -> str:
    return " ".join(f"{k} {v:.4f}" for k, v in parts.items())


def _total_steps(loader: Any, epochs: int, max_steps: int | None) -> int | None:
    try:
        total = len(loader) * epochs
    except TypeError:
        return None
    return min(total, max_steps) if max_steps is not None else total


# -- checkpoints ------------------------------------------------------------------------------------------
def _capture(record: FineTuneRecord, best: tuple[float, dict[str, Any]] | None, train_modules: Sequence[Any],
             extra: Sequence[Any], optimizer: Any, scheduler: Any, loader: Any, device: str, ema: Any = None
             ) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    from plipbench.evaluation.resume import optimizer_state, rng_state

    tensors: dict[str, Any] = {}
    for i, module in enumerate(train_modules):
        tensors.update({f"module.{i}.{k}": v for k, v in module.state_dict().items()})
    tensors.update({f"param.{i}": p for i, p in enumerate(extra)})
    optimizer_json, optimizer_tensors = optimizer_state(optimizer)
    rng_json, rng_tensors = rng_state(device, loader)
    tensors.update(optimizer_tensors)
    tensors.update(rng_tensors)
    if best is not None:
        tensors.update({f"best.{k}": v for k, v in best[1].items()})
    if ema is not None:
        tensors.update({f"ema.{k}": v for k, v in ema.module.state_dict().items()})
    state = {"record": record.to_json(), "best_score": None if best is None else best[0],
             "optimizer": optimizer_json, "scheduler": scheduler.state_dict(), "rng": rng_json}
    return state, tensors


def _capture_extra(state: dict[str, Any], tensors: dict[str, Any], extra_optimizers: Sequence[Any]) -> None:
    """The extra optimizers' states under ``extra_optimizers`` / ``extra_optimizer.{j}.*`` (none: nothing added,
    so a checkpoint without them is what it always was)."""
    from plipbench.evaluation.resume import optimizer_state

    stored = []
    for j, extra_optimizer in enumerate(extra_optimizers):
        json_state, extra_tensors = optimizer_state(extra_optimizer)
        stored.append(json_state)
        tensors.update({f"extra_optimizer.{j}.{k}": v for k, v in extra_tensors.items()})
    state["extra_optimizers"] = stored


def _restore_extra(state: dict[str, Any], tensors: dict[str, Any], extra_optimizers: Sequence[Any]) -> None:
    from plipbench.evaluation.resume import load_optimizer_state

    stored = state.get("extra_optimizers") or []
    if len(stored) != len(extra_optimizers):
        raise PlipbenchError(f"the checkpoint holds {len(stored)} extra optimizer(s), this run has "
                             f"{len(extra_optimizers)}: resume with the same recipe")
    for j, extra_optimizer in enumerate(extra_optimizers):
        prefix = f"extra_optimizer.{j}."
        load_optimizer_state(extra_optimizer, stored[j],
                             {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})


def _restore(state: dict[str, Any], tensors: dict[str, torch.Tensor], train_modules: Sequence[Any],
             extra: Sequence[Any], optimizer: Any, scheduler: Any, loader: Any, device: str, ema: Any = None
             ) -> tuple[FineTuneRecord, tuple[float, dict[str, Any]] | None]:
    import torch

    from plipbench.evaluation.resume import load_optimizer_state, load_rng_state

    for i, module in enumerate(train_modules):
        prefix = f"module.{i}."
        module.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
    with torch.no_grad():
        for i, parameter in enumerate(extra):
            parameter.copy_(tensors[f"param.{i}"])
    load_optimizer_state(optimizer, state["optimizer"], tensors)
    scheduler.load_state_dict(state["scheduler"])
    load_rng_state(state["rng"], tensors, device, loader)
    if ema is not None:
        stored = {k[len("ema."):]: v for k, v in tensors.items() if k.startswith("ema.")}
        if not stored:
            raise PlipbenchError("cannot resume: the checkpoint holds no EMA weights, and this run keeps an EMA")
        ema.module.load_state_dict(stored)
    record = FineTuneRecord.from_json(state["record"])
    best = None
    if state["best_score"] is not None:
        best = (state["best_score"], {k[len("best."):]: v for k, v in tensors.items() if k.startswith("best.")})
    return record, best


def _scaled_step(scaler: Any, loss: torch.Tensor, optimizer: Any, parameters: Sequence[Any],
                 clip_grad_norm: float | None, extra_optimizers: Sequence[Any] = ()) -> None:
    """fp16's backward and step: scaled loss, gradients unscaled before clipping, the step skipped on inf/NaN;
    the extra optimizers (not clipped) are stepped through the same scaler, which is updated once."""
    import torch

    scaler.scale(loss).backward()
    if clip_grad_norm is not None:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(parameters, clip_grad_norm)
    scaler.step(optimizer)
    for extra_optimizer in extra_optimizers:
        scaler.step(extra_optimizer)
    scaler.update()


# -- EMA ----------------------------------------------------------------------------------------------------
def _build_ema(state_module: Any, spec: EmaSpec) -> Any:
    """timm's ModelEmaV3 over ``state_module`` at the constant ``spec.decay`` (its ``update`` is called without a
    step, so no warm-up), on the module's device and dtype."""
    from timm.utils import ModelEmaV3

    if state_module is None:
        raise PlipbenchError("fine_tune_loop: ema needs state_module, the module whose weights are averaged")
    return ModelEmaV3(state_module, decay=float(spec.decay))


def _validate_on(state_module: Any, weights: Any, validate: Callable[[], Any]) -> Any:
    """``validate()`` with ``weights``' state loaded into ``state_module``; the module's own state (the raw
    training weights) is put back afterwards, value for value."""
    raw = {k: v.detach().clone() for k, v in state_module.state_dict().items()}
    state_module.load_state_dict(weights.state_dict())
    try:
        return validate()
    finally:
        state_module.load_state_dict(raw)


def _split_validation(outcome: Any) -> tuple[float, dict[str, float]]:
    """A validation's ``(score, other named values)``; ``outcome`` is a number or ``{"score": ..., ...}``."""
    if isinstance(outcome, Mapping):
        rest = {str(k): float(v) for k, v in outcome.items() if k != "score"}
        return float(outcome["score"]), rest
    return outcome, {}


# -- the loop ---------------------------------------------------------------------------------------------
def fine_tune_loop(
    loader: Any, sampler: Any, dataset: Any, optimizer: Any, scheduler: Any, *,
    epochs: int, max_steps: int | None, train_modules: Sequence[Any],
    step: Callable[[Any], tuple[torch.Tensor, Mapping[str, torch.Tensor], int]],
    validate: Callable[[], float | Mapping[str, float]] | None = None, state_module: Any = None,
    clip_grad_norm: float | None = None, checkpoint: FineTuneCheckpoint | None = None,
    progress: bool = False, device: str = "cpu", label: str = "fine-tune", ema: EmaSpec | None = None,
    extra_optimizers: Sequence[Any] = (),
    accel: Acceleration | None = None,
) -> FineTuneRecord:
    """The epoch loop every fine-tune protocol shares.

    Each epoch reseeds the sampler and the dataset, puts ``train_modules`` in train mode and, for every
    batch, calls ``step(batch) -> (loss, parts, weight)``, then back-propagates ``loss`` (gradient norm
    clipped at ``clip_grad_norm`` if given) and steps the optimizer and scheduler. ``parts`` (named
    scalar tensors) are averaged over the epoch with ``weight`` (1 per batch, or the batch size).
    ``max_steps`` stops the loop after that many steps in all. With ``validate`` (a score, higher is
    better) the epoch with the best score is kept: ``state_module`` is restored to it (earliest on ties).

    ``checkpoint`` (:class:`~plipbench.evaluation.resume.FineTuneCheckpoint`): the state is saved after every
    epoch, and a resumed run starts after the stored epoch. ``progress``: a rich bar with the epoch, the loss
    parts, the learning rate and the ETA. Under torchrun: DistributedDataParallel (see the module docstring).
    The parameters the optimizer holds outside ``train_modules`` (a bare classifier matrix) are checkpointed
    and all-reduced too.

    ``extra_optimizers``: optimizers of parameters that the main ``optimizer`` must not step (BoT's centres and
    their :class:`~plipbench.evaluation.protocols.losses.CenterSGD`); their parameters belong to a module in
    ``train_modules`` (checkpointed, all-reduced). Each is zeroed with the main one, stepped right after the main
    step (before the scheduler), not clipped, and its state is checkpointed and restored on resume.

    ``accel`` (:class:`~plipbench.evaluation.protocols.accel.Acceleration`): each ``step`` runs under its autocast
    (and through ``torch.compile`` if asked); with fp16 a GradScaler scales the backward, unscales the gradients
    before clipping and steps the optimizer (skipping steps with inf/NaN gradients), and its state is saved in
    the checkpoint. None (or fp32 without a scaler): the plain loop, bit for bit.

    ``validate`` may also return a mapping ``{"score": float, <name>: float, ...}``: the other entries go into
    the curve as ``val_<name>`` (``val_loss``). A ``scheduler`` with an ``end_epoch(metrics)`` method (the
    recipes' :class:`~plipbench.evaluation.protocols.recipe_run.EpochScheduler`, whose plateau schedule watches
    a loss) gets, after each epoch's validation, ``{"train_<part>": epoch mean, "val_score": ...,
    "val_<name>": ...}``; the curve's ``lr`` is then read after it (the next epoch's, as for the others).

    ``ema`` (``decay``, ``evaluate_ema``; the recipes' ``EmaSpec``): an exponential moving average of
    ``state_module`` (parameters and buffers) with timm's :class:`~timm.utils.ModelEmaV3` at a constant
    ``decay`` (no warm-up, as timm's ModelEmaV2 that Rethinking_of_PAR uses), updated after every optimizer
    step. With ``evaluate_ema`` each validation runs on the EMA weights (swapped into ``state_module`` for the
    call, the raw weights put back exactly before training goes on), the kept best state is the EMA's, and
    without ``validate`` the module ends with the EMA weights; so the protocol's test sees them. Without
    ``evaluate_ema`` the average is kept and checkpointed but not used. It is saved in and restored from the
    per-epoch checkpoint, so ``--resume`` stays exact. ``ema=None`` (the default) runs none of this.
    """
    import contextlib

    import torch

    from plipbench.evaluation.protocols._training import state_copy

    record = FineTuneRecord()
    best: tuple[float, dict[str, Any]] | None = None
    parameters = [p for group in optimizer.param_groups for p in group["params"]]
    inside = {id(p) for m in train_modules for p in m.parameters()}
    extra = [p for p in parameters if id(p) not in inside]
    rank, world = _world()
    forward = step
    if world > 1:
        forward = _ddp(train_modules, extra, step, device)
        # loader.dataset / batch_sampler: the protocol's own, or accel's epoch-tagged wrappers around them
        loader = torch.utils.data.DataLoader(loader.dataset,
                                             batch_sampler=RankShard(loader.batch_sampler, rank, world),
                                             num_workers=loader.num_workers, collate_fn=loader.collate_fn,
                                             generator=loader.generator, pin_memory=loader.pin_memory,
                                             persistent_workers=loader.persistent_workers)
    # acceleration (accel.py): autocast around the step, optional compile, a GradScaler for fp16
    autocast = accel.autocast if accel is not None else contextlib.nullcontext
    scaler = accel.scaler() if accel is not None else None
    if accel is not None:
        forward = accel.compiled(forward)
    averaged = None
    if ema is not None:
        averaged = _build_ema(state_module, ema)
    start = 0
    if checkpoint is not None:
        stored = checkpoint.begin()
        if stored is not None:
            record, best = _restore(*stored, train_modules, extra, optimizer, scheduler, loader, device,
                                    ema=averaged)
            if extra_optimizers:
                _restore_extra(*stored, extra_optimizers)
            if scaler is not None and "grad_scaler" in stored[0]:
                scaler.load_state_dict(stored[0]["grad_scaler"])
            start = stored[0]["epoch"] + 1
    bar = _progress(progress)
    with bar:
        task = bar.add_task(label, total=_total_steps(loader, epochs, max_steps), completed=record.steps,
                            losses="", lr="")
        for epoch in range(start, epochs):
            if max_steps is not None and record.steps >= max_steps:
                break
            started = time.perf_counter()
            record.last_epoch = epoch
            sampler.set_epoch(epoch)
            dataset.set_epoch(epoch)
            sizes = [len(batch) for batch in sampler] if world > 1 else None
            for module in train_modules:
                module.train()
            sums: dict[str, float] = {}
            seen = 0
            for index, batch in enumerate(loader):
                with autocast():
                    loss, parts, weight = forward(batch)
                if sizes is not None:  # the full batch's mean, whatever the shard sizes (module docstring)
                    loss = loss * (world * len(batch[-1]) / sizes[index])
                optimizer.zero_grad(set_to_none=True)
                for extra_optimizer in extra_optimizers:
                    extra_optimizer.zero_grad(set_to_none=True)
                if scaler is None:
                    loss.backward()
                    if clip_grad_norm is not None:
                        torch.nn.utils.clip_grad_norm_(parameters, clip_grad_norm)
                    optimizer.step()
                    for extra_optimizer in extra_optimizers:
                        extra_optimizer.step()
                else:
                    _scaled_step(scaler, loss, optimizer, parameters, clip_grad_norm, extra_optimizers)
                scheduler.step()
                if averaged is not None:
                    averaged.update(state_module)
                for name, value in parts.items():
                    sums[name] = sums.get(name, 0.0) + value.item() * weight
                seen, record.steps = seen + weight, record.steps + 1
                bar.update(task, advance=1, description=f"{label} epoch {epoch + 1}/{epochs}",
                           losses=_parts_text(parts), lr=f"{optimizer.param_groups[0]['lr']:.2e}")
                if max_steps is not None and record.steps >= max_steps:
                    break
            if world > 1:
                sums, seen = _reduce_sums(sums, seen)
            record.losses.append({name: total / max(seen, 1) for name, total in sums.items()})
            point: dict[str, Any] = {"epoch": epoch + 1, "steps": record.steps,
                                     "loss": {k: round(v, 6) for k, v in record.losses[-1].items()},
                                     "lr": float(f"{optimizer.param_groups[0]['lr']:.6g}")}
            if len(optimizer.param_groups) > 1:
                point["lr_groups"] = [float(f"{g['lr']:.6g}") for g in optimizer.param_groups]
            on_ema = averaged is not None and ema.evaluate_ema
            extras: dict[str, float] = {}
            if validate is not None:
                outcome = _validate_on(state_module, averaged.module, validate) if on_ema else validate()
                score, extras = _split_validation(outcome)
                if world > 1:
                    score = _broadcast_score(score)
                    extras = {k: _broadcast_score(v) for k, v in extras.items()}
                record.val_curve.append(score)
                point["val"] = round(record.val_curve[-1], 6)
                point.update({f"val_{k}": round(v, 6) for k, v in extras.items()})
                if best is None or record.val_curve[-1] > best[0]:
                    kept = state_copy(averaged.module if on_ema else state_module)
                    best, record.best_epoch = (record.val_curve[-1], kept), epoch
            if hasattr(scheduler, "end_epoch"):
                metrics = {f"train_{k}": v for k, v in record.losses[-1].items()}
                if validate is not None:
                    metrics.update({"val_score": record.val_curve[-1], **{f"val_{k}": v for k, v in extras.items()}})
                scheduler.end_epoch(metrics)
                point["lr"] = float(f"{optimizer.param_groups[0]['lr']:.6g}")
                if "lr_groups" in point:
                    point["lr_groups"] = [float(f"{g['lr']:.6g}") for g in optimizer.param_groups]
            record.curve.append(point)
            if checkpoint is not None:
                state, tensors = _capture(record, best, train_modules, extra, optimizer, scheduler, loader, device,
                                          ema=averaged)
                if extra_optimizers:
                    _capture_extra(state, tensors, extra_optimizers)
                if scaler is not None:
                    state["grad_scaler"] = scaler.state_dict()
                checkpoint.save(epoch, state, tensors)
            if progress:
                bar.console.print(f"{label} epoch {epoch + 1}/{epochs}: {_parts_text(record.losses[-1])}, "
                                  f"lr {point['lr']:.2e}" + (f", val {point['val']:.4f}" if "val" in point else "")
                                  + f" ({time.perf_counter() - started:.1f} s)", markup=False, highlight=False)
    if best is not None:
        state_module.load_state_dict(best[1])
    elif averaged is not None and ema.evaluate_ema:
        state_module.load_state_dict(averaged.module.state_dict())
    return record

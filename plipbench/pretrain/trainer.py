"""The pre-training loop: distributed (torchrun; nccl on GPU, gloo on CPU), bf16 autocast where
supported, gradient accumulation, atomic resumable checkpoints, a JSON-lines metrics log.

Run layout (``OUT``)::

    OUT/pretrain_config.json    the validated config and its hash (a resume must match it)
    OUT/tokenizer/              WordPiece tokenizer trained on the corpus captions (when none is given)
    OUT/checkpoints/step-XXXXXXXX.pt   training state (model, optimizer, scheduler, sampler, RNG, step)
    OUT/metrics.jsonl           one line per logged step: losses, lr, mask ratio, samples/s
    OUT/model/                  the final plipbench PLIP checkpoint: create_backbone("plip:OUT/model")
    OUT/pretrain_summary.json   what was run, for how long, final losses, whether ranks stayed in sync

Exact resume: a step is one optimizer update. Each checkpoint holds everything that decides the
next batch and update - model, optimizer and scheduler states, the sampler's (epoch, batches done),
every rank's torch RNG state (dropout) - and the IAP masking generator and the data augmentation
are seeded from (seed, rank, step) and (seed, epoch, index). So a run killed with SIGKILL and
resumed ends with the same weights as an uninterrupted run (on CPU; GPU kernels may be
non-deterministic). Checkpoints are written to a temporary file and renamed, so a kill during a
write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from pathlib import Path
from typing import Any

from plipbench.distributed import DistributedContext, init_distributed
from plipbench.distributed import all_gather as _all_gather
from plipbench.distributed import barrier as _barrier
from plipbench.errors import ConfigError, PlipbenchError
from plipbench.io import atomic_torch_save, atomic_write_json, atomic_write_text, sweep_temp_files
from plipbench.pretrain.config import PretrainConfig, config_differences

CHECKPOINT_DIR = "checkpoints"
CONFIG_FILE = "pretrain_config.json"


def lr_factor(step: int, steps_per_epoch: int, optim: Any) -> float:
    """Linear warm-up over ``warmup_epochs``, then x ``gamma`` at each milestone epoch (paper recipe)."""
    epoch = step / steps_per_epoch
    factor = optim.gamma ** sum(epoch >= m for m in optim.milestones)
    warmup_steps = optim.warmup_epochs * steps_per_epoch
    if warmup_steps > 0 and step < warmup_steps:
        factor *= (step + 1) / warmup_steps
    return factor


def _checkpoints(out: Path) -> list[Path]:
    return sorted((out / CHECKPOINT_DIR).glob("step-*.pt"))


def _prepare_run_dir(config: PretrainConfig, out: Path, resume: bool, ctx: DistributedContext) -> Path | None:
    """Check ``out`` against ``config``; return the checkpoint to resume from (or None)."""
    stored_path = out / CONFIG_FILE
    existing = _checkpoints(out)
    if stored_path.is_file():
        stored = json.loads(stored_path.read_text(encoding="utf-8"))
        if stored.get("config_hash") != config.config_hash():
            diff = config_differences(stored.get("config", {}), config)
            raise ConfigError(
                f"{out} holds a run of a different config (differing keys: {', '.join(diff) or 'unknown'}); "
                "use another --out or the same config"
            )
    if existing and not resume:
        raise ConfigError(f"{out} already holds checkpoints; pass --resume to continue that run or choose another --out")
    if ctx.is_main and not stored_path.is_file():
        atomic_write_json(stored_path, {"config_hash": config.config_hash(), "config": config.model_dump(mode="json")})
    return existing[-1] if (resume and existing) else None


def _sweep_interrupted_writes(out: Path) -> None:
    """Remove the hidden temporary files a killed run left behind (a SIGKILL during a checkpoint write
    leaves a ``.step-XXXXXXXX.pt.<random>.tmp`` as large as a checkpoint). The run folder belongs to
    this run, so every such file is stale."""
    import sys

    removed = sweep_temp_files(out / CHECKPOINT_DIR) + sweep_temp_files(out)
    if removed:
        print(f"note: removed {len(removed)} temporary file(s) left by an interrupted run in {out}", file=sys.stderr)


def _load_checkpoint(path: Path, previous: Path | None) -> dict[str, Any]:
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or foreign file: refuse, and say what is still intact
        hint = f"; the previous checkpoint {previous} is intact: delete {path.name} to resume from it" if previous else ""
        first = (str(err).strip().splitlines() or [""])[0][:200]
        raise PlipbenchError(f"{path}: corrupt or unreadable checkpoint ({type(err).__name__}: {first}){hint}") from None


def resolve_corpus(config: PretrainConfig, ctx: DistributedContext):
    """The pre-training corpus as a PersonDataset (rank 0 generates a synthetic preset first)."""
    from plipbench.data.readers import read_dataset

    data = config.data
    if data.root is not None:
        root = Path(os.path.expandvars(data.root)).expanduser()
        if "$" in str(root):
            raise ConfigError(f"data.root {data.root!r} names an environment variable that is not set")
    else:
        from plipbench.data.synthetic_cache import ensure_synthetic, synthetic_path

        root = synthetic_path(data.preset, layout=data.layout, identities=data.identities,
                              images_per_id=data.images_per_id, seed=data.seed)
        if ctx.is_main:
            ensure_synthetic(data.preset, layout=data.layout, identities=data.identities,
                             images_per_id=data.images_per_id, seed=data.seed)
        _barrier(ctx)
    dataset = read_dataset(data.layout, root)
    return dataset, root


def corpus_fingerprint(dataset: Any) -> str:
    """sha256 over (relative path, pid, captions) of every record - cheap, no image bytes read."""
    h = hashlib.sha256()
    for r in dataset.records:
        h.update(f"{Path(r.image_path).name}|{r.pid}|{'|'.join(r.captions)}\n".encode())
    return h.hexdigest()


def _tokenizer(config: PretrainConfig, model_config: Any, out: Path, texts: list[str], ctx: DistributedContext):
    from plipbench.models.plip.tokenizer import load_tokenizer, train_tokenizer_dir

    if model_config.text.pretrained:
        return load_tokenizer(model_config.text.pretrained)
    directory = out / "tokenizer"
    if ctx.is_main and not directory.is_dir():
        vocab = int(model_config.text.bert.get("vocab_size", 2000))
        train_tokenizer_dir(texts, directory, vocab_size=vocab)
    _barrier(ctx)
    return load_tokenizer(directory)


def _flatten_overrides(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"image": {"width": 8}, "text.bert.hidden_size": 32}`` -> dotted keys; nested mappings merge
    into the named config instead of replacing a whole section."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out.update(_flatten_overrides(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def build_model_config(config: PretrainConfig):
    from plipbench.models.plip.model import PlipConfig, named_config

    if isinstance(config.model, str):
        base = named_config(config.model).model_dump(mode="json")
    else:
        base = dict(config.model)
    for dotted, value in _flatten_overrides(config.model_overrides).items():
        node = base
        keys = dotted.split(".")
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value
    try:
        return PlipConfig.model_validate(base)
    except Exception as err:
        raise ConfigError(f"model: invalid PLIP config ({str(err).splitlines()[0]}: {err})") from None


def _param_digest(module: Any) -> str:
    """sha256 of every parameter's bytes. Buffers are left out: BatchNorm running statistics are
    per-rank until DDP broadcasts rank 0's at the next forward, and rank 0 writes the checkpoint."""
    import torch

    h = hashlib.sha256()
    for name, tensor in sorted(module.named_parameters()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def pretrain(
    config: PretrainConfig,
    out: str | Path,
    *,
    resume: bool = False,
    max_steps: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Pre-train a PLIP model with ``config`` into ``out``; returns the run summary (also written to disk)."""
    import torch
    from torch.nn.parallel import DistributedDataParallel

    from plipbench.models.plip.checkpoint import save_plip_checkpoint
    from plipbench.models.plip.model import PlipModel
    from plipbench.pretrain.data import CaptionCollator, CaptionedImages
    from plipbench.pretrain.pretrainer import PlipPretrainer
    from plipbench.pretrain.sampler import IdentityBatchSampler

    out = Path(out)
    ctx = init_distributed()
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    device = torch.device(f"cuda:{ctx.local_rank}" if torch.cuda.is_available() else "cpu")
    use_bf16 = config.train.precision == "bf16" or (
        config.train.precision == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported()
    )
    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
    _barrier(ctx)
    resume_from = _prepare_run_dir(config, out, resume, ctx)
    if ctx.is_main:
        _sweep_interrupted_writes(out)
    started = time.perf_counter()

    dataset, root = resolve_corpus(config, ctx)
    model_config = build_model_config(config)
    texts = [c for r in dataset.records for c in r.captions]
    tokenizer = _tokenizer(config, model_config, out, texts, ctx)
    images = CaptionedImages(
        dataset.records, root=root, size=tuple(model_config.image.input_size), mean=model_config.image.mean,
        std=model_config.image.std, flip=config.data.flip, seed=config.data.seed,
    )  # fmt: skip
    sampler = IdentityBatchSampler(
        images.pids, identities_per_batch=config.sampler.identities_per_batch,
        images_per_identity=config.sampler.images_per_identity, seed=config.train.seed,
        rank=ctx.rank, world_size=ctx.world_size,
    )  # fmt: skip
    if sampler.short_identities and ctx.is_main:
        import sys

        print(f"note: {sampler.describe()}", file=sys.stderr)
    loader = torch.utils.data.DataLoader(
        images, batch_sampler=sampler, collate_fn=CaptionCollator(tokenizer, model_config.max_length),
        num_workers=config.train.num_workers,
        # its own generator: creating an iterator must not draw from the global RNG (exact resume)
        generator=torch.Generator().manual_seed(config.train.seed),
    )  # fmt: skip

    torch.manual_seed(config.train.seed)  # identical initial weights on every rank
    model = PlipModel(model_config, vocab_size=len(tokenizer))
    pooler = getattr(model.text.encoder, "pooler", None)
    if model_config.text.pooling != "pooler" and pooler is not None:
        pooler.requires_grad_(False)  # unused by mean / cls pooling; DDP needs every trainable param used
    trainer = PlipPretrainer(model, config, mask_token_id=tokenizer.mask_token_id, vocab_size=len(tokenizer)).to(device)
    text_params = {id(p) for p in trainer.text_parameters()}
    groups = [
        {"params": [p for p in trainer.parameters() if p.requires_grad and id(p) not in text_params], "lr": config.optim.lr},
        {"params": trainer.text_parameters(), "lr": config.optim.lr * config.optim.text_lr_scale},
    ]
    if config.optim.name == "adan":
        from timm.optim import Adan

        optimizer = Adan(groups, lr=config.optim.lr, weight_decay=config.optim.weight_decay)
    else:
        optimizer = torch.optim.AdamW(groups, lr=config.optim.lr, weight_decay=config.optim.weight_decay)
    accumulation = config.optim.grad_accumulation
    steps_per_epoch = len(sampler) // accumulation
    if steps_per_epoch < 1:
        raise ConfigError(
            f"an epoch has {len(sampler)} batches, fewer than grad_accumulation={accumulation}; "
            "lower sampler sizes or grad_accumulation"
        )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, steps_per_epoch, config.optim)
    )
    total_steps = math.ceil(config.optim.epochs * steps_per_epoch)
    target = min(total_steps, max_steps) if max_steps is not None else total_steps

    step, epoch, batches_done, elapsed_before = 0, 0, 0, 0.0
    if resume_from is not None:
        previous = _checkpoints(out)[-2] if len(_checkpoints(out)) > 1 else None
        state = _load_checkpoint(resume_from, previous)
        if state.get("config_hash") != config.config_hash():
            raise ConfigError(f"{resume_from}: written by a different config; refusing to resume")
        trainer.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step, epoch, batches_done = int(state["step"]), int(state["epoch"]), int(state["batches_done"])
        elapsed_before = float(state.get("elapsed", 0.0))
        torch.set_rng_state(state["rng_torch"][ctx.rank])
        sampler.load_state_dict({"epoch": epoch, "batches_done": batches_done, "seed": config.train.seed})
    else:
        sampler.set_epoch(0)
    log_path = out / "metrics.jsonl"
    if ctx.is_main:
        kept = []
        if resume_from is not None and log_path.is_file():
            kept = [ln for ln in log_path.read_text().splitlines() if ln and json.loads(ln)["step"] <= step]
        atomic_write_text(log_path, "".join(ln + "\n" for ln in kept))

    wrapped = DistributedDataParallel(trainer) if ctx.world_size > 1 else trainer
    trainer.train()

    def save_checkpoint() -> None:
        rng = _all_gather(ctx, torch.get_rng_state())
        if not ctx.is_main:
            return
        state = {
            "step": step, "epoch": epoch, "batches_done": batches_done, "config_hash": config.config_hash(),
            "model": trainer.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "rng_torch": rng, "elapsed": elapsed_before + time.perf_counter() - started,
        }  # fmt: skip
        path = out / CHECKPOINT_DIR / f"step-{step:08d}.pt"
        atomic_torch_save(state, path)
        for old in _checkpoints(out)[: -config.train.keep_checkpoints]:
            old.unlink(missing_ok=True)

    bar = _progress(progress and ctx.is_main)
    last_parts: dict[str, float] = {}
    samples, window_start = 0, time.perf_counter()
    with bar:
        task = bar.add_task("pretrain", total=target, completed=step, losses="", speed="")
        while step < target:
            images.set_epoch(epoch)
            micro = 0
            optimizer.zero_grad(set_to_none=True)
            for batch in loader:
                batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
                generator = torch.Generator().manual_seed(_step_seed(config.train.seed, ctx.rank, step, micro % accumulation))
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                    parts = wrapped(batch, step / max(total_steps, 1), generator)
                (parts["total"] / accumulation).backward()
                micro += 1
                batches_done += 1
                samples += batch["images"].shape[0] * ctx.world_size
                if micro % accumulation:
                    continue
                if config.optim.clip_grad_norm:
                    torch.nn.utils.clip_grad_norm_(trainer.parameters(), config.optim.clip_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                last_parts = {k: float(v.detach()) for k, v in parts.items()}
                if ctx.is_main and (step % config.train.log_every == 0 or step == target):
                    now = time.perf_counter()
                    speed = samples / max(now - window_start, 1e-9)
                    samples, window_start = 0, now
                    record = {"step": step, "epoch": epoch, "lr": scheduler.get_last_lr()[0],
                              "samples_per_second": round(speed, 2), **{k: round(v, 6) for k, v in last_parts.items()}}
                    with log_path.open("a", encoding="utf-8") as fh:
                        fh.write(json.dumps(record) + "\n")
                    bar.update(task, losses=" ".join(f"{k}={v:.3f}" for k, v in last_parts.items()),
                               speed=f"{speed:.1f} samples/s")
                bar.update(task, completed=step)
                if step % config.train.checkpoint_every == 0 or step == target:
                    save_checkpoint()
                if step >= target:
                    break
            if step >= target:
                break
            epoch += 1
            batches_done = 0
            sampler.set_epoch(epoch)

    in_sync = len(set(_all_gather(ctx, _param_digest(trainer)))) == 1
    elapsed = elapsed_before + time.perf_counter() - started
    summary = {
        "config_name": config.name,
        "config_hash": config.config_hash(),
        "steps": step,
        "total_steps": total_steps,
        "epochs_completed": step / steps_per_epoch,
        "world_size": ctx.world_size,
        "ranks_in_sync": in_sync,
        "precision": "bf16" if use_bf16 else "fp32",
        "seconds": round(elapsed, 2),
        "final_losses": last_parts,
        "sampler": sampler.describe(),
        "corpus_root": str(root),
        "corpus_fingerprint": corpus_fingerprint(dataset),
        "corpus_images": len(images),
    }
    if ctx.is_main:
        from plipbench import __version__
        from plipbench.environment import git_commit

        summary |= {"plipbench_version": __version__, "git_commit": git_commit()}
        save_plip_checkpoint(
            model, out / "model", tokenizer=tokenizer, overwrite=True,
            extra={"pretrain": summary, "config": config.model_dump(mode="json")},
        )  # fmt: skip
        atomic_write_json(out / "pretrain_summary.json", summary)
    _barrier(ctx)
    return summary


def _step_seed(*key: int) -> int:
    return int.from_bytes(hashlib.sha256(":".join(map(str, key)).encode()).digest()[:8], "little")


def _progress(enabled: bool):
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
        TextColumn("{task.fields[speed]}"), TimeElapsedColumn(), TimeRemainingColumn(), disable=not enabled,
    )  # fmt: skip


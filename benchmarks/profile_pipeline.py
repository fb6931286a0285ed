"""Where the time goes: one pre-training step of the mini config, and frozen feature extraction.

    python benchmarks/profile_pipeline.py [--steps 10] [--images 2000] [--batch-size 64] [--threads N]
                                          [--skip-pretrain] [--skip-features]

1. Pre-training step (``plipbench/configs/pretrain/mini.yaml``, the trainer's own dataset, sampler,
   collator and optimizer): milliseconds per step and share of the step for
   - decode: JPEG decode + resize of the step's images. The legacy dataset decodes the whole corpus
     once per run (``preload``), shown amortised over the run's steps; the decoded-image cache
     (``plipbench.data.decoded``) decodes once per corpus and size, for every run;
   - augment: ``__getitem__`` (uint8 -> float, flip, normalise) and collation (tokenise, stack);
   - forward, backward, optimizer (AdamW step + scheduler).
2. Feature extraction of N synthetic Market images with a random-init PLIP-mini:
   - bare forward: ``backbone.encode_image`` on the images already preprocessed into one tensor;
   - legacy pipeline: the loader as of commit 68e54db (PIL decode + torchvision transform per item,
     a DataLoader with batch 64) - copied here so before and after run side by side;
   - current pipeline: ``FeatureStore.encode_images_with`` cold (decoded cache built) and warm.
   Overhead = (pipeline - bare forward) / bare forward. Target: <= 15%.

   "inputs only" times the input preparation alone (decode, transform, batch; no forward), which a
   loaded machine disturbs less than the difference of two totals.
Times are medians of the steps (pre-training) and the best of interleaved rounds (features).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path


# -- the legacy loaders (commit 68e54db), kept for side-by-side timing --------------------------
def legacy_load_image(path: Path, size: tuple[int, int]):
    import numpy as np
    from PIL import Image

    with Image.open(path) as img:
        img = img.convert("RGB")
        if img.size != (size[1], size[0]):
            img = img.resize((size[1], size[0]), Image.Resampling.BICUBIC)
        return np.asarray(img, dtype=np.uint8)


class LegacyRecordImages:
    def __init__(self, records, transform) -> None:
        self.records, self.transform = list(records), transform

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int):
        from PIL import Image

        with Image.open(self.records[index].image_path) as img:
            return self.transform(img.convert("RGB"))


def legacy_encode(backbone, records, batch_size: int):
    import torch

    from plipbench.models.backbone import build_torchvision_transform

    dataset = LegacyRecordImages(records, build_torchvision_transform(backbone.image_transform))
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=0, shuffle=False)
    return torch.cat([backbone.encode_image(batch).cpu() for batch in loader])


# -- 1. pre-training step ----------------------------------------------------------------------
def pretrain_profile(steps: int) -> None:
    import numpy as np
    import torch

    from plipbench.distributed import init_distributed
    from plipbench.models.plip.model import PlipModel
    from plipbench.models.plip.tokenizer import load_tokenizer, train_tokenizer_dir
    from plipbench.pretrain.config import load_config
    from plipbench.pretrain.data import CaptionCollator, CaptionedImages
    from plipbench.pretrain.pretrainer import PlipPretrainer
    from plipbench.pretrain.sampler import IdentityBatchSampler
    from plipbench.pretrain.trainer import build_model_config, lr_factor, resolve_corpus

    config = load_config("mini")
    ctx = init_distributed()
    dataset, root = resolve_corpus(config, ctx)
    model_config = build_model_config(config)
    size = tuple(model_config.image.input_size)
    records = [r for r in dataset.records if r.captions]

    started = time.perf_counter()
    legacy_pixels = np.stack([legacy_load_image(r.image_path, size) for r in records])
    legacy_decode = time.perf_counter() - started

    decoded_cold = decoded_warm = None
    try:
        from plipbench.data import decoded as decoded_mod
    except ImportError:
        decoded_mod = None
    if decoded_mod is not None:
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            cold = decoded_mod.decoded_images(records, decoded_mod.pretrain_resize(size), cache_dir=tmp)
            decoded_cold = time.perf_counter() - started
            started = time.perf_counter()
            warm = decoded_mod.decoded_images(records, decoded_mod.pretrain_resize(size), cache_dir=tmp)
            decoded_warm = time.perf_counter() - started
            assert np.array_equal(np.asarray(cold), legacy_pixels) and np.array_equal(np.asarray(warm), legacy_pixels)
            del cold, warm

    with tempfile.TemporaryDirectory() as tmp:
        texts = [c for r in records for c in r.captions]
        train_tokenizer_dir(texts, Path(tmp) / "tok", vocab_size=int(model_config.text.bert.get("vocab_size", 2000)))
        tokenizer = load_tokenizer(Path(tmp) / "tok")
    images = CaptionedImages(dataset.records, root=root, size=size, mean=model_config.image.mean,
                             std=model_config.image.std, flip=config.data.flip, seed=config.data.seed)
    sampler = IdentityBatchSampler(images.pids, identities_per_batch=config.sampler.identities_per_batch,
                                   images_per_identity=config.sampler.images_per_identity, seed=config.train.seed)
    collate = CaptionCollator(tokenizer, model_config.max_length)
    torch.manual_seed(config.train.seed)
    model = PlipModel(model_config, vocab_size=len(tokenizer))
    trainer = PlipPretrainer(model, config, mask_token_id=tokenizer.mask_token_id, vocab_size=len(tokenizer))
    optimizer = torch.optim.AdamW([p for p in trainer.parameters() if p.requires_grad], lr=config.optim.lr,
                                  weight_decay=config.optim.weight_decay)
    steps_per_epoch = len(sampler)
    total_steps = int(config.optim.epochs * steps_per_epoch)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, steps_per_epoch, config.optim))
    sampler.set_epoch(0)
    trainer.train()
    phases: dict[str, list[float]] = {k: [] for k in ("getitem", "collate", "forward", "backward", "optimizer")}
    batches = iter(sampler)
    for step in range(steps + 1):  # the first step is a warm-up, not counted
        indices = next(batches)
        t0 = time.perf_counter()
        items = [images[i] for i in indices]
        t1 = time.perf_counter()
        batch = collate(items)
        t2 = time.perf_counter()
        parts = trainer(batch, step / total_steps, torch.Generator().manual_seed(step))
        t3 = time.perf_counter()
        parts["total"].backward()
        t4 = time.perf_counter()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        t5 = time.perf_counter()
        if step:
            for key, value in zip(phases, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True):
                value_ms = 1000 * value
                phases[key].append(value_ms)
    ms = {k: statistics.median(v) for k, v in phases.items()}
    batch_size = len(indices)
    per_image_ms = 1000 * legacy_decode / len(records)
    rows = [
        ("decode, legacy preload amortised", 1000 * legacy_decode / total_steps),
        ("augment: __getitem__ x batch", ms["getitem"]),
        ("augment: collate (tokenise, stack)", ms["collate"]),
        ("forward", ms["forward"]),
        ("backward", ms["backward"]),
        ("optimizer (AdamW + scheduler)", ms["optimizer"]),
    ]
    total = sum(v for _, v in rows)
    print(f"pre-training step, config mini: batch {batch_size}, {len(records)} images at {size[0]}x{size[1]}, "
          f"{total_steps} steps a run, {torch.get_num_threads()} threads, median of {steps} steps")
    for label, value in rows:
        print(f"  {label:38s} {value:8.2f} ms  {100 * value / total:5.1f}%")
    print(f"  {'step total':38s} {total:8.2f} ms")
    print(f"  JPEG decode + resize: {per_image_ms:.3f} ms/image; decoding every step's images instead of "
          f"preloading would add {per_image_ms * batch_size:.1f} ms/step ({100 * per_image_ms * batch_size / total:.0f}%)")
    print(f"  corpus decode, legacy preload (every run): {legacy_decode:6.2f} s")
    if decoded_cold is not None:
        print(f"  corpus decode, decoded cache: cold {decoded_cold:6.2f} s (once per corpus and size), "
              f"warm {decoded_warm:6.3f} s (every later run)")


# -- 2. feature extraction ---------------------------------------------------------------------
def features_profile(n_images: int, batch_size: int, repeats: int = 3) -> None:
    import torch

    from plipbench.data.readers import read_dataset
    from plipbench.data.synthetic_cache import ensure_synthetic
    from plipbench.evaluation.features import FeatureStore
    from plipbench.models import create_backbone
    from plipbench.models.backbone import build_torchvision_transform

    backbone = create_backbone("random:plip-mini")
    root = ensure_synthetic("synth-market", progress=False)
    records = list(read_dataset("market1501", root).records)[:n_images]
    transform = build_torchvision_transform(backbone.image_transform)
    tensors = torch.stack([LegacyRecordImages(records, transform)[i] for i in range(len(records))])
    backbone.encode_image(tensors[:batch_size])  # warm-up

    def bare() -> None:
        for start in range(0, len(tensors), batch_size):
            backbone.encode_image(tensors[start:start + batch_size])

    def legacy_inputs() -> None:  # decode + transform + batch, no forward
        loader = torch.utils.data.DataLoader(LegacyRecordImages(records, transform), batch_size=batch_size)
        for _ in loader:
            pass

    def current_inputs() -> None:
        from plipbench.data.decoded import decoded_images, to_model_input, transform_resize

        spec = backbone.image_transform
        pixels = decoded_images(records, transform_resize(spec))
        for start in range(0, len(pixels), batch_size):
            to_model_input(pixels[start:start + batch_size], spec.mean, spec.std)

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["PLIPBENCH_CACHE"] = tmp  # a cold decoded cache, then a warm one
        store = FeatureStore(backbone, batch_size=batch_size)
        started = time.perf_counter()
        new = store.encode_images_with(backbone, records)
        cold = time.perf_counter() - started
        # interleaved rounds, best of each: a shared machine's load hits every variant alike
        runs = {"bare forward": bare, "legacy pipeline (68e54db)": lambda: legacy_encode(backbone, records, batch_size),
                "current pipeline, warm": lambda: store.encode_images_with(backbone, records),
                "legacy inputs only": legacy_inputs, "current inputs only": current_inputs}
        best = dict.fromkeys(runs, float("inf"))
        for _ in range(repeats):
            for label, fn in runs.items():
                started = time.perf_counter()
                fn()
                best[label] = min(best[label], time.perf_counter() - started)
        same = torch.equal(new, legacy_encode(backbone, records, batch_size))
    forward = best["bare forward"]
    print(f"feature extraction: random:plip-mini, {len(records)} synth-market images, batch {batch_size}, "
          f"{torch.get_num_threads()} threads, best of {repeats} interleaved rounds")
    rows = [(k, best[k]) for k in ("bare forward", "legacy pipeline (68e54db)")]
    rows += [("current pipeline, cold", cold), ("current pipeline, warm", best["current pipeline, warm"])]
    for label, seconds in rows:
        over = "" if label == "bare forward" else f"  overhead {100 * (seconds - forward) / forward:6.1f}%"
        print(f"  {label:28s} {seconds:7.3f} s  {len(records) / seconds:8.1f} img/s{over}")
    for label in ("legacy inputs only", "current inputs only"):
        print(f"  {label:28s} {best[label]:7.3f} s  = {100 * best[label] / forward:6.1f}% of the bare forward")
    print(f"  current pipeline features bit-identical to the legacy pipeline's: {same}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-pretrain", action="store_true")
    parser.add_argument("--skip-features", action="store_true")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if not args.skip_pretrain:
        pretrain_profile(args.steps)
    if not args.skip_features:
        features_profile(args.images, args.batch_size, args.repeats)


if __name__ == "__main__":
    main()

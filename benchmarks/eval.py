"""Evaluation speed: the data pipeline against the bare forward pass, and a suite run cold vs warm.

    python benchmarks/eval.py [--model random:plip-mini] [--images 2000] [--workers 0] [--suite mini] [--skip-suite]

1. Feature extraction of N synthetic Market images through ``FeatureStore`` (decode JPEG, transform,
   batch, forward) against ``backbone.encode_image`` on the same images already decoded into one
   tensor. Target: the pipeline costs at most 20% on top of the forward pass.
2. ``evaluate(model, suite=...)`` cold (fresh cache: data generation, features, protocols), then warm
   (results and features cached), then with ``overwrite=True`` (features cached, protocols rerun).
   Target: the warm run under 10% of the cold run.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time


def pipeline_overhead(model: str, n_images: int, workers: int, batch_size: int) -> None:
    import torch

    from plipbench.data.readers import read_dataset
    from plipbench.data.synthetic_cache import ensure_synthetic
    from plipbench.evaluation.features import FeatureStore, RecordImages
    from plipbench.models import create_backbone
    from plipbench.models.backbone import build_torchvision_transform

    backbone = create_backbone(model)
    root = ensure_synthetic("synth-market", progress=False)
    records = [r for r in read_dataset("market1501", root).records][:n_images]
    store = FeatureStore(backbone, batch_size=batch_size, num_workers=workers)
    store.encode_images_with(backbone, records[:batch_size])  # warm-up
    started = time.perf_counter()
    store.encode_images_with(backbone, records)
    pipeline = time.perf_counter() - started

    dataset = RecordImages(records, build_torchvision_transform(backbone.image_transform))
    tensors = torch.stack([dataset[i] for i in range(len(dataset))])
    started = time.perf_counter()
    for start in range(0, len(tensors), batch_size):
        backbone.encode_image(tensors[start:start + batch_size])
    forward = time.perf_counter() - started
    print(f"{len(records)} images, batch {batch_size}, {workers} loader workers, {torch.get_num_threads()} threads")
    print(f"  bare forward:        {forward:7.2f} s  ({len(records) / forward:8.1f} images/s)")
    print(f"  feature pipeline:    {pipeline:7.2f} s  ({len(records) / pipeline:8.1f} images/s)")
    print(f"  pipeline overhead:   {100 * (pipeline - forward) / forward:6.1f}% on top of the forward (target <= 20%)")


def suite_cold_warm(model: str, suite: str) -> None:
    from plipbench.evaluation.runner import evaluate

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["PLIPBENCH_CACHE"] = os.path.join(tmp, "cache")
        out = os.path.join(tmp, "results")
        runs = {}
        for label, kwargs in (("cold", {}), ("warm", {}), ("warm, --overwrite", {"overwrite": True})):
            started = time.perf_counter()
            frame = evaluate(model, suite=suite, out=out, progress=False, **kwargs)
            runs[label] = time.perf_counter() - started
            print(f"  suite {suite} {label:18s} {runs[label]:7.1f} s  ({(frame.status == 'done').sum()} computed, "
                  f"{(frame.status == 'cached').sum()} cached, {(frame.status == 'skipped').sum()} skipped)")
        print(f"  warm / cold: {100 * runs['warm'] / runs['cold']:.1f}% (target < 10%); "
              f"overwrite with warm features / cold: {100 * runs['warm, --overwrite'] / runs['cold']:.1f}%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="random:plip-mini")
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--suite", default="mini")
    parser.add_argument("--skip-suite", action="store_true")
    args = parser.parse_args()
    pipeline_overhead(args.model, args.images, args.workers, args.batch_size)
    if not args.skip_suite:
        suite_cold_warm(args.model, args.suite)


if __name__ == "__main__":
    main()

"""Images per second of one fine-tune training step (forward, cross-entropy, backward, SGD step) of a ResNet-50
and a ViT-B/16 (timm, random weights) at person-shaped 256x128, under each acceleration of
:mod:`plipbench.evaluation.protocols.accel`: precision fp32 / bf16 / fp16 (with the GradScaler), channels_last
on/off (CNNs only), ``torch.compile`` on/off. Prints one line per configuration with images/s and peak memory.

The step goes through the same :class:`~plipbench.evaluation.protocols.accel.Acceleration` calls as
``fine_tune_loop`` (autocast, scaler, channels_last hooks, compiled step), on random tensors already on the
device, so it measures the model, not the loader.

Usage (GPU): ``python benchmarks/gpu_accel.py --device cuda --batch 64 --steps 20 --warmup 5``.
CPU smoke (one step, tiny batch): ``python benchmarks/gpu_accel.py --device cpu --batch 2 --steps 1 --warmup 0
--precision fp32 bf16 --compile off``.
"""

from __future__ import annotations

import argparse
import itertools
import time

MODELS = {"resnet50": "cnn", "vit_base_patch16_224": "vit"}


def _model(name: str, device: str):
    import timm

    kwargs = {"img_size": (256, 128)} if MODELS[name] == "vit" else {}
    return timm.create_model(name, pretrained=False, num_classes=751, **kwargs).to(device)


def measure(name: str, device: str, precision: str, channels_last: bool, compile_step: bool, batch: int,
            steps: int, warmup: int) -> tuple[float, float | None]:
    """``(images/s, peak memory in GiB or None on CPU)`` of ``steps`` timed steps after ``warmup`` ones."""
    import torch

    from plipbench.evaluation.protocols.accel import Acceleration

    device_type = "cuda" if device.startswith("cuda") else "cpu"
    accel = Acceleration(device_type=device_type, precision=precision, requested=precision,
                         grad_scaler=precision == "fp16", channels_last=channels_last, compile=compile_step)
    torch.manual_seed(0)
    model = _model(name, device).train()
    accel.prepare(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    scaler = accel.scaler()
    images = torch.randn(batch, 3, 256, 128, device=device)
    labels = torch.randint(0, 751, (batch,), device=device)

    def step(x, y):
        return torch.nn.functional.cross_entropy(model(x), y)

    forward = accel.compiled(step)

    def train_step() -> None:
        with accel.autocast():
            loss = forward(images, labels)
        optimizer.zero_grad(set_to_none=True)
        if scaler is None:
            loss.backward()
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()

    sync = torch.cuda.synchronize if device_type == "cuda" else (lambda: None)
    for _ in range(warmup):
        train_step()
    sync()
    if device_type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    for _ in range(steps):
        train_step()
    sync()
    elapsed = time.perf_counter() - started
    peak = torch.cuda.max_memory_allocated() / 2**30 if device_type == "cuda" else None
    return batch * steps / elapsed, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--precision", nargs="+", default=["fp32", "bf16", "fp16"], choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--compile", nargs="+", default=["off", "on"], choices=["off", "on"])
    args = parser.parse_args()
    import torch

    torch.backends.cudnn.benchmark = True
    print(f"device {args.device}, batch {args.batch}, {args.steps} timed steps after {args.warmup}, "
          f"torch {torch.__version__}")
    for name in args.models:
        layouts = [False, True] if MODELS[name] == "cnn" else [False]
        for precision, layout, compiled in itertools.product(args.precision, layouts, args.compile):
            if precision == "fp16" and not args.device.startswith("cuda"):
                continue  # fp16 autocast with a scaler is CUDA-only (accel.py)
            label = f"{name:22s} {precision:5s} channels_last {'on ' if layout else 'off'} compile {compiled:3s}"
            try:
                rate, peak = measure(name, args.device, precision, layout, compiled == "on", args.batch,
                                     args.steps, args.warmup)
            except Exception as err:  # one failing configuration (no compiler, out of memory) skips one line
                print(f"{label}: failed ({type(err).__name__}: {str(err).splitlines()[0][:100]})")
                continue
            memory = f", peak {peak:.2f} GiB" if peak is not None else ""
            print(f"{label}: {rate:8.1f} images/s{memory}", flush=True)


if __name__ == "__main__":
    main()

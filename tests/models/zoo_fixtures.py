"""Helpers for the zoo equality tests: seeded perturbation of a reference model, official-format files."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch


def perturb(model: torch.nn.Module, seed: int = 0, scale: float = 0.02) -> torch.nn.Module:
    """Add seeded noise to every parameter and BN running statistic, so no tensor keeps its init value."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in model.parameters():
            tensor.add_(torch.randn(tensor.shape, generator=gen) * scale)
        for name, buffer in model.named_buffers():
            if name.endswith("running_mean"):
                buffer.copy_(torch.randn(buffer.shape, generator=gen) * 0.1)
            elif name.endswith("running_var"):
                buffer.copy_(torch.rand(buffer.shape, generator=gen) + 0.5)
    return model.eval()


def dino_args() -> argparse.Namespace:
    """The kind of command line a DINO-style snapshot stores under 'args'."""
    return argparse.Namespace(arch="vit_small", patch_size=16, out_dim=65536, lr=0.0005, epochs=100,
                              global_crops_scale=(0.4, 1.0), data_path="/data/LUPerson")  # fmt: skip


def dino_head(width: int, out: int = 32) -> dict[str, torch.Tensor]:
    """DINOHead keys (mlp of three linears, weight-normalised last layer), at a small size."""
    return {
        "head.mlp.0.weight": torch.randn(64, width), "head.mlp.0.bias": torch.randn(64),
        "head.mlp.2.weight": torch.randn(64, 64), "head.mlp.2.bias": torch.randn(64),
        "head.mlp.4.weight": torch.randn(16, 64), "head.mlp.4.bias": torch.randn(16),
        "head.last_layer.weight_g": torch.randn(out, 1), "head.last_layer.weight_v": torch.randn(out, 16),
    }  # fmt: skip


def save(obj: Any, path: Path) -> Path:
    torch.save(obj, path)
    return path


def batch(height: int = 256, width: int = 128, n: int = 2, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, 3, height, width, generator=torch.Generator().manual_seed(seed))

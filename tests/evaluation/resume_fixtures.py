"""A tiny image backbone for the resume tests, built from this file (``--model resume_fixtures.py:tiny_cnn``),
and a task folder with a small synthetic attribute task whose fine-tune takes a few quick epochs.

``PLIPBENCH_TEST_TRAIN_DELAY`` (seconds, default 0) slows every training forward down, so that a test can kill
the process between two epochs' checkpoints; it changes no number.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch
import yaml

from plipbench.evaluation.resume import FineTuneCheckpoint


class Killed(Exception):
    """Raised by :class:`DiesAfter`: the run stops as a kill would stop it."""


class DiesAfter(FineTuneCheckpoint):
    """A checkpoint that stops the run (as a kill would) once epoch ``after`` (0-based) is saved."""

    def __init__(self, *args, after: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.after = after

    def save(self, epoch, state, tensors) -> None:
        super().save(epoch, state, tensors)
        if epoch == self.after:
            raise Killed


class SlowCNN(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=4), torch.nn.ReLU(),
                                        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 16))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.training:
            time.sleep(float(os.environ.get("PLIPBENCH_TEST_TRAIN_DELAY", "0")))
        return self.body(images)


def tiny_cnn(device: str = "cpu"):
    from plipbench.models import BackboneMetadata, ImageTransform, ModuleBackbone

    torch.manual_seed(0)
    module = SlowCNN()
    meta = BackboneMetadata(name="tiny-cnn", family="test", embedding_dim=16,
                            num_parameters=sum(p.numel() for p in module.parameters()))
    return ModuleBackbone(module, meta, ImageTransform(size=(64, 32), mean=(0.5,) * 3, std=(0.25,) * 3),
                          device=device)


def write_attribute_task(root: Path, *, epochs: int = 4) -> Path:
    """``tiny-attr``: a synthetic PA-100K twin of 24 people x 2 images, fine-tuned ``epochs`` epochs in batches of 8."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "tiny-attr.yaml").write_text(yaml.safe_dump({
        "name": "tiny-attr", "kind": "attributes", "family": "attributes", "synthetic": True,
        "dataset": {"layout": "pa100k", "synthetic": {"preset": "synth-pa100k", "identities": 24, "images_per_id": 2}},
        "protocols": [{"name": "fine-tune", "base": "fine-tune", "options": {"epochs": epochs, "batch_size": 8}}],
        "main_score": "mA",
    }))
    return root

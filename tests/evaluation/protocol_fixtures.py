"""Shared helpers for the protocol tests: tiny synthetic datasets, contexts, stub feature stores.

Expensive objects (the random PLIP-mini backbone, generated datasets) are built once per test session
(module-level caches): the protocols never modify ``ctx.backbone`` (a test checks it).
"""

from __future__ import annotations

import functools
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from plipbench.data.records import PersonDataset, PersonRecord
from plipbench.evaluation.protocols.base import ProtocolContext, TaskData
from plipbench.evaluation.tasks import ProtocolSpec, TaskSpec, load_task_file

TASKS = Path(__file__).resolve().parents[2] / "tasks"
TEXT_TASK = TASKS / "text-reid" / "synth-cuhk-pedes.yaml"
IMAGE_TASK = TASKS / "image-reid" / "synth-market1501.yaml"
ATTRIBUTE_TASK = TASKS / "attributes" / "synth-pa100k.yaml"

_DATASETS: dict[tuple, PersonDataset] = {}


def synthetic_dataset(base: Path, preset: str, layout: str, identities: int, images_per_id: int) -> PersonDataset:
    """Generate (once per session) and read back a tiny synthetic dataset."""
    from plipbench.data.readers import read_dataset
    from plipbench.data.synth import generate

    key = (preset, layout, identities, images_per_id)
    if key not in _DATASETS:
        root = Path(base) / f"{preset}-{identities}x{images_per_id}"
        generate(preset, root, identities=identities, images_per_id=images_per_id, progress=False)
        _DATASETS[key] = read_dataset(layout, root)
    return _DATASETS[key]


@functools.lru_cache(maxsize=1)
def plip_mini() -> Any:
    from plipbench.models import create_backbone

    torch.set_num_threads(1)
    return create_backbone("random:plip-mini")


@functools.lru_cache(maxsize=1)
def image_only_backbone() -> Any:
    """A tiny image-only CNN backbone (no text encoder)."""
    from plipbench.models import BackboneMetadata, ImageTransform, ModuleBackbone

    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=4), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                                 torch.nn.Flatten(), torch.nn.Linear(8, 16))
    meta = BackboneMetadata(name="tiny-cnn", family="test", embedding_dim=16,
                            num_parameters=sum(p.numel() for p in module.parameters()))
    transform = ImageTransform(size=(64, 32), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    return ModuleBackbone(module, meta, transform)


def task_data(dataset: PersonDataset, *, val: bool = True, source: PersonDataset | None = None) -> TaskData:
    source = source or dataset
    return TaskData(
        target=dataset, source=source, train_records=source.split("train"),
        val_records=source.split("val") if val else [], test_records=dataset.split("test"),
        query_records=dataset.split("query"), gallery_records=dataset.split("gallery"),
        attribute_names=dataset.attribute_names, target_fingerprint="t", source_fingerprint="s",
    )  # fmt: skip


def make_context(task_file: Path, base: str, data: TaskData, backbone: Any, features: Any,
                 options: dict | None = None, *, metric_options: dict | None = None, seed: int = 0) -> ProtocolContext:
    task: TaskSpec = load_task_file(task_file)
    if metric_options is not None:
        task = task.model_copy(update={"metric_options": metric_options})
    return ProtocolContext(backbone=backbone, task=task, protocol=ProtocolSpec(name=base, base=base), data=data,
                           features=features, options=dict(options or {}), seed=seed)


def real_store(backbone: Any) -> Any:
    from plipbench.evaluation.features import FeatureStore

    return FeatureStore(backbone, cache_dir=None, batch_size=64)


def state_snapshot(backbone: Any) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in backbone.module.state_dict().items()}


def assert_state_unchanged(backbone: Any, before: dict[str, torch.Tensor]) -> None:
    after = backbone.module.state_dict()
    assert set(after) == set(before)
    for key, value in before.items():
        assert torch.equal(after[key], value), f"{key} changed"


def check_fractions(scores: dict[str, float], keys: list[str]) -> None:
    assert set(keys) <= set(scores), (keys, sorted(scores))
    for key in keys:
        assert 0.0 <= scores[key] <= 1.0, (key, scores[key])


# -- stub feature stores -------------------------------------------------------------------------
class StubFeatures:
    """A FeatureStore look-alike returning engineered features keyed by image path / caption text."""

    def __init__(self, images: dict[str, np.ndarray], texts: dict[str, np.ndarray] | None = None) -> None:
        self.images, self.texts = images, texts or {}
        self.image_requests: list[list[str]] = []

    def image_features(self, records: list[PersonRecord], *, flip: bool = False) -> torch.Tensor:
        self.image_requests.append([str(r.image_path) for r in records])
        return torch.from_numpy(np.stack([self.images[str(r.image_path)] for r in records]).astype(np.float32))

    def text_features(self, captions: list[str], *, task: str | None = None) -> torch.Tensor:
        return torch.from_numpy(np.stack([self.texts[c] for c in captions]).astype(np.float32))


def stub_text_backbone() -> Any:
    return SimpleNamespace(has_text=True, name="stub-vl")


def engineered_text_data(seed: int = 0, *, train_ids: int = 60, val_ids: int = 12, test_ids: int = 40,
                         code_dim: int = 12, dim: int = 32, noise: float = 0.05,
                         test_seed: int | None = None) -> tuple[TaskData, StubFeatures]:
    """Identity codes z_pid (Gaussian, ``code_dim``) embedded by two different random rotations of R^dim.

    Images: ``R_img [z; 0] + noise``; captions: ``R_txt [z; 0] + noise``. A linear map per modality
    aligns them for every identity (seen or not), but the raw cosine between modalities is near 0.
    ``test_seed`` draws different test identities (codes) while keeping train and val identical.
    """
    rng = np.random.default_rng(seed)
    r_img, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    r_txt, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    images, texts = {}, {}
    splits: dict[str, list[PersonRecord]] = {"train": [], "val": [], "test": []}
    pid = 0
    for split, count in (("train", train_ids), ("val", val_ids), ("test", test_ids)):
        split_rng = np.random.default_rng([seed, 7, test_seed]) if split == "test" and test_seed is not None else rng
        for _ in range(count):
            pid += 1
            code = np.zeros(dim)
            code[:code_dim] = split_rng.normal(size=code_dim)
            for k in range(2):
                path = f"/stub/{split}/{pid}_{k}.jpg"
                caps = tuple(f"caption {split} {pid} {k} {c}" for c in range(2))
                splits[split].append(PersonRecord(image_path=Path(path), pid=pid, split=split, captions=caps))
                images[path] = r_img @ code + noise * split_rng.normal(size=dim)
                for cap in caps:
                    texts[cap] = r_txt @ code + noise * split_rng.normal(size=dim)
    dataset = PersonDataset("stub", "stub", Path("/stub"), [r for rs in splits.values() for r in rs])
    data = TaskData(target=dataset, source=dataset, train_records=splits["train"], val_records=splits["val"],
                    test_records=splits["test"], query_records=[], gallery_records=[], attribute_names=None,
                    target_fingerprint="t", source_fingerprint="s")
    return data, StubFeatures(images, texts)


def engineered_attribute_data(seed: int = 0, *, n_train: int = 600, n_val: int = 150, n_test: int = 300,
                              dim: int = 24, n_attr: int = 6) -> tuple[TaskData, StubFeatures]:
    """Gaussian features; attribute j = [x . w_j > t_j] (linear in the features, some rare attributes)."""
    rng = np.random.default_rng(seed)
    weights = rng.normal(size=(dim, n_attr))
    thresholds = np.linspace(0.0, 1.5, n_attr) * np.sqrt(dim)
    images: dict[str, np.ndarray] = {}
    splits: dict[str, list[PersonRecord]] = {}
    for split, count in (("train", n_train), ("val", n_val), ("test", n_test)):
        x = rng.normal(size=(count, dim))
        y = (x @ weights > thresholds).astype(int)
        splits[split] = []
        for i in range(count):
            path = f"/stub/{split}/{i}.jpg"
            images[path] = x[i]
            splits[split].append(PersonRecord(image_path=Path(path), pid=i, split=split,
                                              attributes=tuple(int(v) for v in y[i])))
    names = [f"attr{j}" for j in range(n_attr)]
    dataset = PersonDataset("stub", "stub", Path("/stub"), [r for rs in splits.values() for r in rs],
                            attribute_names=names)
    data = TaskData(target=dataset, source=dataset, train_records=splits["train"], val_records=splits["val"],
                    test_records=splits["test"], query_records=[], gallery_records=[], attribute_names=names,
                    target_fingerprint="t", source_fingerprint="s")
    return data, StubFeatures(images)

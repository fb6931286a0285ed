"""What a protocol receives and returns.

``ProtocolContext.features`` gives cached, rank-sharded features of the *frozen* backbone; a
protocol that trains the backbone (fine-tune) uses ``ctx.backbone.module`` and the backbone's
differentiable forward (``ctx.backbone._encode_image`` / ``_encode_text``) with
``ctx.backbone.image_transform`` for preprocessing, and computes test features itself after
training (``ctx.features.encode_images_with(...)`` helps, uncached).

Data roles (``ctx.data``): ``train_records`` come from the source dataset (the target itself
unless the task is domain generalization), ``val_records`` too (or empty), and evaluation uses
``test_records`` (text-reid, attributes) or ``query_records`` / ``gallery_records`` (image-reid)
of the target. ``train_fraction < 1`` (few-shot) has already been applied to the training
identities, seeded. A person-search task (scenes, not person records) leaves every record list empty: its
protocol reads the :class:`~plipbench.data.readers.person_search.PersonSearchDataset` in ``target``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from plipbench.data.records import PersonDataset, PersonRecord
    from plipbench.evaluation.features import FeatureStore
    from plipbench.evaluation.tasks import ProtocolSpec, TaskSpec
    from plipbench.models.backbone import Backbone


@dataclass
class TaskData:
    target: PersonDataset
    source: PersonDataset
    train_records: list[PersonRecord]
    val_records: list[PersonRecord]
    test_records: list[PersonRecord]
    query_records: list[PersonRecord]
    gallery_records: list[PersonRecord]
    attribute_names: list[str] | None
    target_fingerprint: str
    source_fingerprint: str


@dataclass
class ProtocolContext:
    backbone: Backbone
    task: TaskSpec
    protocol: ProtocolSpec
    data: TaskData
    features: FeatureStore
    options: dict[str, Any]
    seed: int = 0
    device: str = "cpu"
    progress: bool = False
    is_main: bool = True
    # the per-epoch checkpoint of a fine-tune (plipbench.evaluation.resume.FineTuneCheckpoint); None: none kept
    checkpoint: Any = None


@dataclass
class ProtocolOutput:
    scores: dict[str, float]
    per_query: dict[str, np.ndarray] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    metric_protocol: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    selection_split: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    zero_shot: bool = True

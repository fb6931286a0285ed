"""Typed metadata of a backbone and of its image preprocessing (pydantic, unknown keys rejected).

``BackboneMetadata`` is what a result file records about the model that produced it, and what
the leaderboard uses to say whether a task is zero-shot for that model (``training_data``).
``ImageTransform`` says how a raw image becomes the model's input tensor, so that every backbone
is fed exactly the preprocessing it was trained with.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Modality = Literal["image", "text"]
Interpolation = Literal["nearest", "bilinear", "bicubic", "lanczos", "box", "hamming"]

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
SYNTH_PEDES_MEAN: tuple[float, float, float] = (0.357, 0.323, 0.328)
SYNTH_PEDES_STD: tuple[float, float, float] = (0.252, 0.242, 0.239)
CLIP_MEAN: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)


class ImageTransform(BaseModel):
    """How an RGB image becomes the model input: resize, scale to [0, 1], normalise.

    ``size`` is (height, width). ``resize="stretch"`` resizes straight to ``size`` (the ReID and
    PLIP convention: person crops are tall, cropping would cut heads and feet). ``resize="crop"``
    resizes the shorter side to ``min(size) / crop_pct`` and centre-crops ``size`` (the
    ImageNet/CLIP convention).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    size: tuple[int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: Interpolation = "bilinear"
    resize: Literal["stretch", "crop"] = "stretch"
    crop_pct: float = Field(1.0, gt=0.0, le=1.0)

    @field_validator("size")
    @classmethod
    def _positive(cls, value: tuple[int, int]) -> tuple[int, int]:
        if min(value) <= 0:
            raise ValueError(f"image size must be positive, got {value}")
        return value


class BackboneMetadata(BaseModel):
    """What a backbone is, where it came from, and what it was trained on.

    ``checkpoint_sha256`` is the sha256 of the weights file(s) the backbone was loaded from
    (``None`` for random initialisation). ``training_data`` lists dataset names (e.g.
    ``"SYNTH-PEDES"``, ``"ImageNet-1k"``, ``"Market-1501"``); a task on one of those is not
    zero-shot for this model (see :meth:`is_zero_shot_on`).
    """

    model_config = ConfigDict(extra="forbid")

    name: str
    family: str
    modalities: tuple[Modality, ...] = ("image",)
    embedding_dim: int = Field(gt=0)
    num_parameters: int = Field(ge=0)
    source: str = ""
    revision: str | None = None
    checkpoint_sha256: str | None = None
    license: str | None = None
    training_data: tuple[str, ...] = ()
    description: str = ""

    def is_zero_shot_on(self, datasets: list[str] | tuple[str, ...]) -> bool:
        """True when none of ``datasets`` (case-insensitive) is in this model's training data."""
        seen = {name.lower() for name in self.training_data}
        return not any(name.lower() in seen for name in datasets)

"""``PlipConfig`` and ``PlipModel``: image encoder + text encoder in a joint embedding space.

Named configs:
- ``plip-mini``: CPU-sized (width 16, layers [1,1,1,1], 128x64 input, 2-layer BERT hidden 128,
  joint 256, about 2.5M parameters) for tests, smoke runs and the leaderboard's random floor;
- ``plip-rn50``: the released architecture (ModifiedResNet-50, attention pool to 768, 256x128,
  BERT-base, pooler output, joint 768), the one the official checkpoint loads into.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from plipbench.errors import ConfigError
from plipbench.models.metadata import SYNTH_PEDES_MEAN, SYNTH_PEDES_STD, ImageTransform
from plipbench.models.plip.modified_resnet import ModifiedResNet
from plipbench.models.plip.text import PlipTextEncoder, TextPooling

BERT_BASE: dict[str, Any] = {
    "vocab_size": 30522,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
}


class ImageEncoderConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    layers: tuple[int, int, int, int] = (3, 4, 6, 3)
    width: int = Field(64, gt=0)
    head: Literal["attention", "maxpool"] = "attention"
    heads: int = Field(8, gt=0)
    input_size: tuple[int, int] = (256, 128)
    mean: tuple[float, float, float] = SYNTH_PEDES_MEAN
    std: tuple[float, float, float] = SYNTH_PEDES_STD
    interpolation: Literal["bilinear", "bicubic"] = "bicubic"
    timm: str | None = Field(None, description="use this timm model as the image encoder instead of the ModifiedResNet")
    timm_weights: str | None = Field(None, description="local weights file for the timm encoder")


class TextEncoderConfig(BaseModel):
    """Either ``pretrained`` (a local directory holding a BERT-family model) or ``bert`` (``BertConfig`` kwargs)."""

    model_config = ConfigDict(extra="forbid")

    pretrained: str | None = None
    bert: dict[str, Any] = Field(default_factory=lambda: dict(BERT_BASE))
    pooling: TextPooling = "mean"
    freeze_layers: int | None = None


class PlipConfig(BaseModel):
    """Full description of a PLIP model; stored as ``config.json`` in a plipbench checkpoint."""

    model_config = ConfigDict(extra="forbid")

    name: str = "plip"
    image: ImageEncoderConfig = Field(default_factory=ImageEncoderConfig)
    text: TextEncoderConfig = Field(default_factory=TextEncoderConfig)
    joint_dim: int = Field(768, gt=0)
    max_length: int = Field(64, gt=2)

    def image_transform(self) -> ImageTransform:
        return ImageTransform(
            size=self.image.input_size,
            mean=self.image.mean,
            std=self.image.std,
            interpolation=self.image.interpolation,
        )


NAMED_CONFIGS: dict[str, PlipConfig] = {
    "plip-mini": PlipConfig(
        name="plip-mini",
        image=ImageEncoderConfig(layers=(1, 1, 1, 1), width=16, heads=4, input_size=(128, 64)),
        text=TextEncoderConfig(
            bert={
                "vocab_size": 2000,
                "hidden_size": 128,
                "num_hidden_layers": 2,
                "num_attention_heads": 4,
                "intermediate_size": 256,
                "max_position_embeddings": 64,
            },
            pooling="mean",
        ),
        joint_dim=256,
    ),
    "plip-rn50": PlipConfig(
        name="plip-rn50",
        image=ImageEncoderConfig(),
        text=TextEncoderConfig(bert=dict(BERT_BASE), pooling="pooler"),
        joint_dim=768,
    ),
}


def named_config(name: str) -> PlipConfig:
    if name not in NAMED_CONFIGS:
        raise ConfigError(f"unknown PLIP config {name!r}; known: {', '.join(sorted(NAMED_CONFIGS))}")
    return NAMED_CONFIGS[name].model_copy(deep=True)


class PlipModel(nn.Module):
    """``visual`` (ModifiedResNet) + ``text`` (PlipTextEncoder) in a ``joint_dim`` space.

    ``encode_text`` takes token ids and an attention mask (tokenisation lives with the backbone
    adapter, which owns the tokenizer).
    """

    def __init__(self, config: PlipConfig, *, vocab_size: int | None = None) -> None:
        super().__init__()
        self.config = config
        img = config.image
        if img.timm is not None:
            from plipbench.models.plip.timm_encoder import TimmImageEncoder

            self.visual: nn.Module = TimmImageEncoder(img.timm, output_dim=config.joint_dim, weights=img.timm_weights)
        else:
            self.visual = ModifiedResNet(
                img.layers, width=img.width, output_dim=config.joint_dim, heads=img.heads,
                input_size=img.input_size, head=img.head,
            )  # fmt: skip
        txt = config.text
        if txt.pretrained:
            self.text = PlipTextEncoder.from_pretrained(
                txt.pretrained, joint_dim=config.joint_dim, pooling=txt.pooling
            )
        else:
            bert = dict(txt.bert)
            if vocab_size is not None:
                bert["vocab_size"] = vocab_size
            self.text = PlipTextEncoder.from_config(bert, joint_dim=config.joint_dim, pooling=txt.pooling)
        if txt.freeze_layers is not None:
            self.text.freeze_lower_layers(txt.freeze_layers)

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        return self.visual(images)

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.text(input_ids, attention_mask)

    def forward_features(self, images: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        return self.visual.forward_features(images)

    def forward(
        self, images: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encode_image(images), self.encode_text(input_ids, attention_mask)

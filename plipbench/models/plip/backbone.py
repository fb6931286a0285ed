"""``PlipBackbone``: a :class:`PlipModel` plus its tokenizer behind the :class:`Backbone` contract."""

from __future__ import annotations

from typing import Any

import torch

from plipbench.models.backbone import Backbone, Precision, count_parameters
from plipbench.models.metadata import BackboneMetadata
from plipbench.models.plip.model import PlipModel


class PlipBackbone(Backbone):
    """Image and text embeddings of a PLIP model.

    Captions are tokenised to ``config.max_length`` (64) with padding to that length and
    truncation, as in the released code. Without a tokenizer the backbone is image-only
    (``has_text`` is False) and ``encode_text`` says how to provide one.
    """

    def __init__(
        self,
        model: PlipModel,
        tokenizer: Any | None,
        *,
        name: str,
        source: str = "",
        checkpoint_sha256: str | None = None,
        license: str | None = None,
        training_data: tuple[str, ...] = (),
        revision: str | None = None,
        device: str = "cpu",
        precision: Precision = "fp32",
    ) -> None:
        self.module = model
        self.tokenizer = tokenizer
        self.image_transform = model.config.image_transform()
        self.metadata = BackboneMetadata(
            name=name,
            family="plip",
            modalities=("image", "text"),
            embedding_dim=model.config.joint_dim,
            num_parameters=count_parameters(model),
            source=source,
            revision=revision,
            checkpoint_sha256=checkpoint_sha256,
            license=license,
            training_data=training_data,
            description=f"PLIP {model.config.name}: ModifiedResNet {model.config.image.head} head + BERT "
            f"({model.config.text.pooling} pooling)",
        )
        model.eval()
        self.to(device)
        self.set_precision(precision)

    @property
    def model(self) -> PlipModel:
        return self.module  # type: ignore[return-value]

    @property
    def has_text(self) -> bool:
        return self.tokenizer is not None

    def _no_text_message(self, task: str | None) -> str:
        needs = f"task {task} needs it" if task else "encode_text needs it"
        return (
            f"backbone {self.metadata.name} was loaded without a tokenizer; {needs}: give tokenizer=DIR (a local "
            "BERT tokenizer directory, e.g. a saved bert-base-uncased) in the baseline YAML's args, or "
            "--arg tokenizer=DIR to models check"
        )

    def tokenize(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        assert self.tokenizer is not None
        enc = self.tokenizer(
            texts,
            padding="max_length",
            truncation=True,
            max_length=self.model.config.max_length,
            return_tensors="pt",
        )
        return enc["input_ids"].to(self.device), enc["attention_mask"].to(self.device)

    def _encode_image(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(images)

    def _encode_text(self, texts: list[str]) -> torch.Tensor:
        ids, mask = self.tokenize(texts)
        return self.model.encode_text(ids, mask)

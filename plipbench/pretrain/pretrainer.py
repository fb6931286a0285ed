"""The module that is trained: a :class:`~plipbench.models.plip.model.PlipModel` plus the heads its
pretext objectives need, returning every weighted loss part of one batch.

One PLIP step runs the image encoder twice (colour image for IVLC/IAP, grayscale for TIC) and the
text encoder twice (full caption for IVLC/TIC, masked caption for IAP); a CLIP step runs each once.
Heads are built only for objectives whose weight is > 0, so a disabled objective costs nothing.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from plipbench.models.plip.model import PlipModel
from plipbench.pretrain.attribute_prediction import (
    IGNORE_INDEX,
    AttributePredictionHead,
    attribute_prediction_loss,
    mask_attribute_phrases,
    mask_ratio,
)
from plipbench.pretrain.colorization import ColorizationDecoder, colorization_loss, to_grayscale
from plipbench.pretrain.config import PretrainConfig
from plipbench.pretrain.contrastive import LogitScale, clip_contrastive_loss, identity_contrastive_loss


class PlipPretrainer(nn.Module):
    def __init__(self, model: PlipModel, config: PretrainConfig, *, mask_token_id: int, vocab_size: int) -> None:
        super().__init__()
        self.model = model
        self.weights = config.objectives
        self.iap_config = config.iap
        self.tic_distance = config.tic.distance
        self.mask_token_id = mask_token_id
        self.mean = tuple(model.config.image.mean)
        self.std = tuple(model.config.image.std)
        joint = model.config.joint_dim
        hidden = model.text.encoder.config.hidden_size
        self.tic: ColorizationDecoder | None = None
        self.iap: AttributePredictionHead | None = None
        self.logit_scale: LogitScale | None = None
        self.ivlc_scale: LogitScale | None = None
        if self.weights.ivlc > 0 and config.ivlc.logits == "cosine":
            self.ivlc_scale = LogitScale(config.ivlc.init_temperature)
        if self.weights.tic > 0:
            self.tic = ColorizationDecoder(
                model.visual.feature_dims, joint, neck_dim=config.tic.neck_dim,
                pooling=config.tic.pooling, gate=config.tic.gate,
            )  # fmt: skip
        if self.weights.iap > 0:
            heads = config.iap.heads if hidden % config.iap.heads == 0 else 1
            self.iap = AttributePredictionHead(
                hidden, joint, vocab_size, hidden=hidden, layers=config.iap.layers, heads=heads,
                fusion=config.iap.fusion,
            )  # fmt: skip
        if self.weights.clip > 0:
            self.logit_scale = LogitScale()

    def text_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.model.text.encoder.parameters() if p.requires_grad]

    def forward(self, batch: dict[str, Tensor], progress: float, generator: torch.Generator) -> dict[str, Tensor]:
        """Weighted loss parts (keys ivlc, tic, iap, clip for enabled objectives) and ``total``."""
        w = self.weights
        images, ids, mask = batch["images"], batch["input_ids"], batch["attention_mask"]
        image_emb, _ = self.model.forward_features(images)
        text_emb, _ = self.model.text.forward_tokens(ids, mask)
        parts: dict[str, Tensor] = {}
        if w.ivlc > 0:
            scale = self.ivlc_scale() if self.ivlc_scale is not None else None
            parts["ivlc"] = w.ivlc * identity_contrastive_loss(image_emb, text_emb, batch["pids"], logit_scale=scale)
        if self.logit_scale is not None:
            parts["clip"] = w.clip * clip_contrastive_loss(image_emb, text_emb, self.logit_scale())
        if self.tic is not None:
            _, gray_maps = self.model.forward_features(to_grayscale(images, self.mean, self.std))
            parts["tic"] = w.tic * colorization_loss(self.tic(gray_maps, text_emb), images,
                                                        self.tic_distance)
        if self.iap is not None:
            ratio = mask_ratio(progress, low=self.iap_config.low, high=self.iap_config.high,
                               schedule=self.iap_config.schedule)
            masked, labels = mask_attribute_phrases(ids, batch["token_phrase"], ratio, self.mask_token_id, generator)
            _, states = self.model.text.forward_tokens(masked, mask)
            selected = labels != IGNORE_INDEX
            logits = self.iap(states, image_emb, mask, select=selected)
            parts["iap"] = w.iap * attribute_prediction_loss(logits, labels[selected])
        parts["total"] = sum(parts.values())
        return parts

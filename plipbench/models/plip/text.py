"""The PLIP text encoder: a BERT-family ``transformers`` model, a pooling rule and an optional projection.

The ``BertModel`` lives under the attribute ``encoder`` so that parameter names are
``encoder.embeddings.*``, ``encoder.encoder.layer.N.*``, ``encoder.pooler.*``: the names of the
released checkpoint's ``TxtEncoder_state_dict``.

Pooling (paper vs released code, brief §1.6):
- ``"mean"``: mean of the last hidden states over real tokens (attention mask), the paper's rule;
- ``"pooler"``: BERT ``pooler_output`` ([CLS] through dense + tanh), the released code's rule;
- ``"cls"``: the raw [CLS] hidden state.
A ``proj`` Linear maps hidden -> joint size only when they differ (none for the official model).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from plipbench.errors import PlipbenchError

TextPooling = Literal["mean", "pooler", "cls"]


def masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``hidden`` (B, L, H) over positions where ``mask`` (B, L) is 1."""
    weights = mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)


class PlipTextEncoder(nn.Module):
    """BERT + pooling + projection. Build with :meth:`from_config` (random init) or :meth:`from_pretrained`."""

    def __init__(self, bert: nn.Module, *, joint_dim: int, pooling: TextPooling = "mean") -> None:
        super().__init__()
        if pooling not in ("mean", "pooler", "cls"):
            raise ValueError(f"text pooling must be mean, pooler or cls, got {pooling!r}")
        self.encoder = bert
        self.pooling = pooling
        hidden = bert.config.hidden_size
        self.proj: nn.Linear | None = nn.Linear(hidden, joint_dim) if hidden != joint_dim else None
        self.output_dim = joint_dim

    @classmethod
    def from_config(
        cls, config: dict[str, Any], *, joint_dim: int, pooling: TextPooling = "mean"
    ) -> PlipTextEncoder:
        """A randomly initialised BERT from ``BertConfig(**config)`` (the pooler is always built)."""
        from transformers import BertConfig, BertModel

        return cls(
            BertModel(BertConfig(**config), add_pooling_layer=True), joint_dim=joint_dim, pooling=pooling
        )

    @classmethod
    def from_pretrained(
        cls, directory: str | Path, *, joint_dim: int, pooling: TextPooling = "mean"
    ) -> PlipTextEncoder:
        """A BERT-family model from a local pretrained directory (never downloads)."""
        from transformers import AutoModel

        directory = Path(directory).expanduser()
        if not (directory / "config.json").is_file():
            raise PlipbenchError(
                f"text encoder directory {directory} has no config.json (expected a saved BertModel)"
            )
        bert = AutoModel.from_pretrained(str(directory), local_files_only=True, add_pooling_layer=True)
        return cls(bert, joint_dim=joint_dim, pooling=pooling)

    def freeze_lower_layers(self, num_layers: int) -> None:
        """Freeze the embeddings and the first ``num_layers`` transformer layers (the rest stays trainable).

        The released PLIP code freezes embeddings + layers 0-7 of BERT-base (``num_layers=8``).
        """
        for p in self.encoder.embeddings.parameters():
            p.requires_grad_(False)
        layers = self.encoder.encoder.layer
        if not 0 <= num_layers <= len(layers):
            raise ValueError(f"cannot freeze {num_layers} layers of a {len(layers)}-layer encoder")
        for layer in layers[:num_layers]:
            for p in layer.parameters():
                p.requires_grad_(False)

    def forward_tokens(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(global (B, joint), hidden states (B, L, hidden))``."""
        out = self.encoder(input_ids=input_ids, attention_mask=attention_mask)
        hidden = out.last_hidden_state
        if self.pooling == "mean":
            pooled = masked_mean(hidden, attention_mask)
        elif self.pooling == "pooler":
            pooled = out.pooler_output
        else:
            pooled = hidden[:, 0]
        if self.proj is not None:
            pooled = self.proj(pooled)
        return pooled, hidden

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.forward_tokens(input_ids, attention_mask)[0]

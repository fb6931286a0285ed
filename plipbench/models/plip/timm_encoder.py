"""Any timm model as PLIP's image encoder (instead of the ModifiedResNet).

The timm model is built with ``features_only=True`` so that it returns its stage maps; the four
deepest maps are the ``[x1, x2, x3, x4]`` that TIC's FPN neck consumes (``feature_dims`` gives their
channels), and the global embedding is the paper's head: global max pool of the last map and a
linear layer to the joint size. Weights: random init, or a local timm checkpoint
(``weights=PATH``, loaded with ``weights_only=True``; the keys of the classifier head are ignored).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from plipbench.errors import ConfigError


class TimmImageEncoder(nn.Module):
    def __init__(self, name: str, *, output_dim: int, weights: str | None = None) -> None:
        super().__init__()
        import timm

        try:
            backbone = timm.create_model(name, pretrained=False, features_only=True)
        except Exception as err:  # unknown name or a model without feature extraction
            raise ConfigError(f"timm model {name!r} cannot be used as a PLIP image encoder: {err}") from None
        channels = list(backbone.feature_info.channels())
        if len(channels) < 4:
            raise ConfigError(f"timm model {name!r} exposes {len(channels)} stage maps; PLIP needs 4")
        self.stage_indices = list(range(len(channels) - 4, len(channels)))
        self.feature_dims = tuple(channels[i] for i in self.stage_indices)
        self.backbone = backbone
        if weights is not None:
            self._load(Path(weights).expanduser())
        self.maxpool_proj = nn.Linear(self.feature_dims[-1], output_dim)
        self.output_dim = output_dim

    def _load(self, path: Path) -> None:
        from plipbench.models.weights import load_state_dict_strict

        if not path.is_file():
            raise ConfigError(f"timm weights file {path} not found")
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = state.get("state_dict", state) if isinstance(state, dict) else state
        load_state_dict_strict(self.backbone, state, source=str(path),
                               skippable=("fc", "head", "classifier", "global_pool", "conv_head"))

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        maps = self.backbone(x)
        stages = [maps[i] for i in self.stage_indices]
        return self.maxpool_proj(torch.amax(stages[-1], dim=(2, 3))), stages

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)[0]

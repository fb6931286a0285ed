"""CLIP-style ModifiedResNet, the PLIP image encoder (paper §A.6.1; released ``visual_model.py``).

Differences from a torchvision ResNet, all kept here because the released checkpoint needs them:
a 3-conv stem (width/2, width/2, width channels; the first with stride 2) followed by a 2x2 average
pool; anti-aliased striding (every conv has stride 1 except the stem's first; a stride-2 block
downsamples with an AvgPool before its last 1x1 conv and before its 1x1 downsample conv, whose
``Sequential`` is keyed ``-1`` (pool), ``0`` (conv), ``1`` (BN)); Bottleneck blocks with x4 expansion. Parameter names match CLIP/PLIP exactly
(``conv1``..``bn3``, ``layerN.M.*``, ``attnpool.{positional_embedding,q_proj,k_proj,v_proj,c_proj}``).

Two heads: ``"attention"`` (CLIP ``AttentionPool2d``, the released code) and ``"maxpool"``
(global max pool + Linear, the paper's default; parameters ``maxpool_proj.*``).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

LAYERS: dict[str, tuple[int, int, int, int]] = {
    "RN50": (3, 4, 6, 3),
    "RN101": (3, 4, 23, 3),
    "RN152": (3, 8, 36, 3),
}


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        # Anti-aliasing: stride is done by an average pool, never by a strided conv.
        self.avgpool = nn.AvgPool2d(stride) if stride > 1 else nn.Identity()
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Sequential | None = None
        if stride > 1 or inplanes != planes * self.expansion:
            self.downsample = nn.Sequential(
                OrderedDict(
                    [
                        ("-1", nn.AvgPool2d(stride)),
                        ("0", nn.Conv2d(inplanes, planes * self.expansion, 1, stride=1, bias=False)),
                        ("1", nn.BatchNorm2d(planes * self.expansion)),
                    ]
                )
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(self.avgpool(out)))
        return self.relu(out + identity)


class AttentionPool2d(nn.Module):
    """QKV attention pooling: the mean token attends over all spatial tokens (+ learned positions).

    ``spatial`` is the (h, w) grid of the final feature map, so the positional embedding has
    ``h * w + 1`` rows (33 for a 256x128 input at stride 32). Other grid sizes are handled by
    bicubic interpolation of the spatial part of the embedding.
    """

    def __init__(self, spatial: tuple[int, int], embed_dim: int, num_heads: int, output_dim: int) -> None:
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        self.spatial = spatial
        self.num_heads = num_heads
        self.positional_embedding = nn.Parameter(
            torch.randn(spatial[0] * spatial[1] + 1, embed_dim) / embed_dim**0.5
        )
        self.k_proj = nn.Linear(embed_dim, embed_dim)
        self.q_proj = nn.Linear(embed_dim, embed_dim)
        self.v_proj = nn.Linear(embed_dim, embed_dim)
        self.c_proj = nn.Linear(embed_dim, output_dim)

    def _positions(self, h: int, w: int) -> torch.Tensor:
        pos = self.positional_embedding
        if (h, w) == self.spatial:
            return pos
        grid = pos[1:].T.reshape(1, -1, *self.spatial)
        grid = F.interpolate(grid, size=(h, w), mode="bicubic", align_corners=False)
        return torch.cat([pos[:1], grid.reshape(pos.shape[1], h * w).T])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        tokens = x.flatten(2).transpose(1, 2)  # (N, HW, C)
        tokens = torch.cat([tokens.mean(dim=1, keepdim=True), tokens], dim=1)
        tokens = tokens + self._positions(h, w).to(tokens.dtype)
        head_dim = c // self.num_heads

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(n, t.shape[1], self.num_heads, head_dim).transpose(1, 2)

        q = heads(self.q_proj(tokens[:, :1]))
        k = heads(self.k_proj(tokens))
        v = heads(self.v_proj(tokens))
        out = F.scaled_dot_product_attention(q, k, v)  # (N, heads, 1, head_dim)
        return self.c_proj(out.transpose(1, 2).reshape(n, c))


class ModifiedResNet(nn.Module):
    """ModifiedResNet image encoder. ``forward`` -> ``(N, output_dim)``; ``forward_features`` adds the 4 stage maps."""

    def __init__(
        self,
        layers: tuple[int, int, int, int] | list[int] = LAYERS["RN50"],
        *,
        width: int = 64,
        output_dim: int = 768,
        heads: int = 8,
        input_size: tuple[int, int] = (256, 128),
        head: Literal["attention", "maxpool"] = "attention",
    ) -> None:
        super().__init__()
        if len(layers) != 4:
            raise ValueError(f"layers must have 4 entries, got {layers}")
        if input_size[0] % 32 or input_size[1] % 32:
            raise ValueError(f"input size {input_size} must be a multiple of 32")
        self.output_dim = output_dim
        self.input_size = tuple(input_size)
        self.conv1 = nn.Conv2d(3, width // 2, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width // 2)
        self.conv2 = nn.Conv2d(width // 2, width // 2, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width // 2)
        self.conv3 = nn.Conv2d(width // 2, width, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(width)
        self.avgpool = nn.AvgPool2d(2)
        self.relu = nn.ReLU(inplace=True)
        self._inplanes = width
        self.layer1 = self._make_layer(width, layers[0])
        self.layer2 = self._make_layer(width * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(width * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(width * 8, layers[3], stride=2)
        embed_dim = width * 32
        self.feature_dims = (width * 4, width * 8, width * 16, width * 32)
        self.head = head
        if head == "attention":
            self.attnpool: AttentionPool2d | None = AttentionPool2d(
                (input_size[0] // 32, input_size[1] // 32), embed_dim, heads, output_dim
            )
            self.maxpool_proj: nn.Linear | None = None
        elif head == "maxpool":
            self.attnpool = None
            self.maxpool_proj = nn.Linear(embed_dim, output_dim)
        else:
            raise ValueError(f"head must be 'attention' or 'maxpool', got {head!r}")

        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He-normal convs (fan_out), unit BatchNorm, and ``d**-0.5`` std for the attention pool (as CLIP).

        PyTorch's default conv init shrinks the signal at every block, so a randomly initialised
        network would map every image to nearly the same vector; this keeps random features
        informative (the random baseline is a meaningful floor) and is a sane pre-training start.
        """
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if self.attnpool is not None:
            std = self.attnpool.c_proj.in_features**-0.5
            for proj in (
                self.attnpool.q_proj,
                self.attnpool.k_proj,
                self.attnpool.v_proj,
                self.attnpool.c_proj,
            ):
                nn.init.normal_(proj.weight, std=std)
                nn.init.zeros_(proj.bias)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        modules = [Bottleneck(self._inplanes, planes, stride)]
        self._inplanes = planes * Bottleneck.expansion
        modules += [Bottleneck(self._inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*modules)

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        x = self.relu(self.bn3(self.conv3(x)))
        return self.avgpool(x)

    def pool(self, x4: torch.Tensor) -> torch.Tensor:
        if self.attnpool is not None:
            return self.attnpool(x4)
        assert self.maxpool_proj is not None
        return self.maxpool_proj(torch.amax(x4, dim=(2, 3)))

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``(global (N, output_dim), [x1, x2, x3, x4])`` with the stage maps at strides 4, 8, 16, 32."""
        x = x.type(self.conv1.weight.dtype)
        x1 = self.layer1(self.stem(x))
        x2 = self.layer2(x1)
        x3 = self.layer3(x2)
        x4 = self.layer4(x3)
        return self.pool(x4), [x1, x2, x3, x4]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)[0]

"""TIC, text-guided image colorization (PLIP §2.1, §A.6.2).

The grayscale image goes through the *shared* image encoder (gray replicated to 3 channels, then
normalised like any input). An FPN-like neck maps the four stage maps (strides 4, 8, 16, 32) to
``neck_dim`` channels, merges them top-down, upsamples every level to stride 4 and concatenates
them (4 x neck_dim channels; 1024 in the paper). Two multimodal SE blocks, each conditioned on the
caption's global text embedding, gate the channels; each is followed by a stride-2 transposed
convolution, giving a 3 x H x W colour image. The loss is PLIP's ``(1/N) sum_i D(i_color, prediction)``
with D the Euclidean (L2) distance between the predicted and the normalised colour image, each taken
as one vector (option ``tic.distance="l2"``, default); ``"mse"`` is the per-pixel mean squared error,
whose size does not depend on the resolution and is about 100x smaller at 64x32 (with PLIP's weight
0.02 it then adds almost nothing to the total loss).

Paper/code choices, all options: SE pooling "avg" (appendix and deleted code; default) or "max"
(main text); gate "sigmoid" (default) or "softmax" (main text).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class MultimodalSEBlock(nn.Module):
    """Channel attention computed from the pooled visual map concatenated with a text embedding."""

    def __init__(self, channels: int, text_dim: int, *, pooling: str = "avg", gate: str = "sigmoid") -> None:
        super().__init__()
        if pooling not in ("avg", "max"):
            raise ValueError(f"pooling must be 'avg' or 'max', got {pooling!r}")
        if gate not in ("sigmoid", "softmax"):
            raise ValueError(f"gate must be 'sigmoid' or 'softmax', got {gate!r}")
        self.pooling, self.gate = pooling, gate
        self.fc = nn.Sequential(
            nn.Linear(channels + text_dim, channels), nn.ReLU(inplace=True), nn.Linear(channels, channels)
        )

    def forward(self, feature_map: Tensor, text_emb: Tensor) -> Tensor:
        pooled = feature_map.mean(dim=(2, 3)) if self.pooling == "avg" else feature_map.amax(dim=(2, 3))
        weights = self.fc(torch.cat([pooled, text_emb.to(pooled.dtype)], dim=1))
        weights = torch.sigmoid(weights) if self.gate == "sigmoid" else torch.softmax(weights, dim=1)
        return feature_map * weights[:, :, None, None]


class ColorizationDecoder(nn.Module):
    """FPN neck + two (multimodal SE block, deconvolution) stages -> a 3-channel image at input size."""

    def __init__(
        self,
        stage_channels: Sequence[int],
        text_dim: int,
        *,
        neck_dim: int = 256,
        pooling: str = "avg",
        gate: str = "sigmoid",
    ) -> None:
        super().__init__()
        if len(stage_channels) != 4:
            raise ValueError(f"expected four stage maps, got channels {list(stage_channels)}")
        self.lateral = nn.ModuleList(nn.Conv2d(c, neck_dim, kernel_size=1) for c in stage_channels)
        fused = 4 * neck_dim
        mid = max(fused // 4, 8)
        self.se1 = MultimodalSEBlock(fused, text_dim, pooling=pooling, gate=gate)
        self.deconv1 = nn.ConvTranspose2d(fused, mid, 3, stride=2, padding=1, output_padding=1)
        self.se2 = MultimodalSEBlock(mid, text_dim, pooling=pooling, gate=gate)
        self.deconv2 = nn.ConvTranspose2d(mid, 3, 3, stride=2, padding=1, output_padding=1)

    def forward(self, stage_maps: Sequence[Tensor], text_emb: Tensor) -> Tensor:
        laterals = [conv(m) for conv, m in zip(self.lateral, stage_maps, strict=True)]
        # top-down path: upsample x2 and add, from the coarsest level down
        for level in range(len(laterals) - 2, -1, -1):
            laterals[level] = laterals[level] + F.interpolate(
                laterals[level + 1], size=laterals[level].shape[-2:], mode="nearest"
            )
        size = laterals[0].shape[-2:]
        pyramid = torch.cat(
            [laterals[0]] + [F.interpolate(m, size=size, mode="nearest") for m in laterals[1:]], dim=1
        )
        x = self.deconv1(self.se1(pyramid, text_emb))
        x = F.relu(x, inplace=True)
        return self.deconv2(self.se2(x, text_emb))


def to_grayscale(images: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """Grayscale version of a batch of *normalised* images, replicated to 3 channels and renormalised.

    Luma weights ITU-R BT.601 (as torchvision's ``rgb_to_grayscale``).
    """
    mean_t = torch.tensor(mean, dtype=images.dtype, device=images.device)[None, :, None, None]
    std_t = torch.tensor(std, dtype=images.dtype, device=images.device)[None, :, None, None]
    rgb = images * std_t + mean_t
    weights = torch.tensor([0.299, 0.587, 0.114], dtype=images.dtype, device=images.device)
    gray = (rgb * weights[None, :, None, None]).sum(dim=1, keepdim=True).expand(-1, 3, -1, -1)
    return (gray - mean_t) / std_t


def colorization_loss(predicted: Tensor, target: Tensor, distance: str = "l2") -> Tensor:
    """Distance between the predicted and the true (normalised) colour image, averaged over the batch.

    ``"l2"``: the Euclidean distance between the two images as vectors, PLIP's
    ``L_tic = (1/N) sum_i D(i_color, theta(T, F_gray))`` with D the L2 distance; it grows with the
    image size (sqrt of the pixel count), which is the scale PLIP's weight 0.02 was set at.
    ``"mse"``: the mean squared error per pixel (the loss's size then does not depend on the resolution).
    """
    if predicted.shape != target.shape:
        predicted = F.interpolate(predicted, size=target.shape[-2:], mode="bilinear", align_corners=False)
    if distance == "mse":
        return F.mse_loss(predicted.float(), target.float())
    if distance != "l2":
        raise ValueError(f"distance must be 'l2' or 'mse', got {distance!r}")
    diff = (predicted.float() - target.float()).flatten(1)
    return diff.pow(2).sum(dim=1).add(1e-12).sqrt().mean()

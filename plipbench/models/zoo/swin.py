"""``solider:swin-tiny|swin-small|swin-base``: SOLIDER's Swin Transformer with its semantic controller.

SOLIDER (Chen et al., CVPR 2023) uses an mmdet-style Swin v1, and this module restates it with the same
parameter names, so the released teacher weights load as they are:

- windows of 7 with shift 3 on every odd block, even on stages smaller than the window; a feature map is
  padded to a multiple of the window *first* and the padded map is rolled (timm rolls first and pads
  after, and clamps the window on small stages: not equal at 256x128, hence no timm here);
- PatchMerging concatenates the 2x2 neighbours in ``nn.Unfold`` order (``reduction`` / ``norm`` weights as
  mmdet stores them);
- per-stage output norms ``norm0..norm3``; the feature is the mean over tokens of ``norm3`` of the last stage;
- the semantic controller: for ``s = [w, 1 - w]`` the downsampled output of stages 0-2 becomes
  ``x * softplus(semantic_embed_w[i](s)) + semantic_embed_b[i](s)``. ``semantic_embed_*.3`` exist in the
  file but act on nothing (SOLIDER rebinds the last stage's tensor after taking its output).
  ``semantic_weight`` is the option (SOLIDER-REID uses 0.2, SOLIDER-PAR 0.8, the demo 1.0); a negative
  value removes the controller, and its checkpoint keys are then dropped.

Checkpoint layouts: the full training dict ``{'teacher': {'backbone.*', 'head.*'}, 'student', 'args', ...}``
or the converted teacher (``convert_model.py``); ``module.`` is stripped. Dropped exactly: the DINO head
``head.*`` and the stored ``relative_position_index`` buffers (checked equal to the ones computed here).
"""

from __future__ import annotations

from typing import Any

from plipbench.errors import ConfigError, PlipbenchError
from plipbench.models.zoo.checkpoint import (
    Conversion,
    load_converted,
    load_official_checkpoint,
    strip_prefix,
    unwrap,
)

VARIANTS: dict[str, tuple[int, tuple[int, ...], tuple[int, ...]]] = {
    "swin-tiny": (96, (2, 2, 6, 2), (3, 6, 12, 24)),
    "swin-small": (96, (2, 2, 18, 2), (3, 6, 12, 24)),
    "swin-base": (128, (2, 2, 18, 2), (4, 8, 16, 32)),
}
WINDOW = 7
SOLIDER = Conversion("SOLIDER", renames=[(r"backbone\.(.*)", r"\1")], drops=[r"head\..*"])


def _torch_modules() -> Any:
    """The module classes, defined on first use so that importing this file does not import torch."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    def relative_index(window: int) -> torch.Tensor:
        coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
        rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window - 1)
        return rel[:, :, 0] * (2 * window - 1) + rel[:, :, 1]

    class WindowMSA(nn.Module):
        def __init__(self, dim: int, heads: int) -> None:
            super().__init__()
            self.heads = heads
            self.scale = (dim // heads) ** -0.5
            self.qkv = nn.Linear(dim, dim * 3)
            self.proj = nn.Linear(dim, dim)
            self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * WINDOW - 1) ** 2, heads))
            self.register_buffer("relative_position_index", relative_index(WINDOW), persistent=False)

        def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
            b, n, c = x.shape
            q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
            attn = (q * self.scale) @ k.transpose(-2, -1)
            bias = self.relative_position_bias_table[self.relative_position_index.reshape(-1)]
            attn = attn + bias.reshape(n, n, -1).permute(2, 0, 1).unsqueeze(0)
            if mask is not None:
                windows = mask.shape[0]
                attn = attn.view(b // windows, windows, self.heads, n, n) + mask[None, :, None]
                attn = attn.view(-1, self.heads, n, n)
            out = attn.softmax(dim=-1) @ v
            return self.proj(out.transpose(1, 2).reshape(b, n, c))

    class ShiftWindowMSA(nn.Module):
        def __init__(self, dim: int, heads: int, shift: int) -> None:
            super().__init__()
            self.shift = shift
            self.w_msa = WindowMSA(dim, heads)

        def _mask(self, h: int, w: int, device: torch.device) -> torch.Tensor:
            img = torch.zeros(1, h, w, 1, device=device)
            cuts = (slice(0, -WINDOW), slice(-WINDOW, -self.shift), slice(-self.shift, None))
            label = 0
            for hs in cuts:
                for ws in cuts:
                    img[:, hs, ws, :] = label
                    label += 1
            windows = _partition(img).reshape(-1, WINDOW * WINDOW)
            mask = windows.unsqueeze(1) - windows.unsqueeze(2)
            return mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0)

        def forward(self, x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
            b, _, c = x.shape
            h, w = hw
            x = x.view(b, h, w, c)
            pad_r, pad_b = (WINDOW - w % WINDOW) % WINDOW, (WINDOW - h % WINDOW) % WINDOW
            x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))  # pad first, then roll the padded map
            hp, wp = h + pad_b, w + pad_r
            mask = None
            if self.shift:
                x = torch.roll(x, shifts=(-self.shift, -self.shift), dims=(1, 2))
                mask = self._mask(hp, wp, x.device)
            out = self.w_msa(_partition(x).reshape(-1, WINDOW * WINDOW, c), mask)
            out = _reverse(out.view(-1, WINDOW, WINDOW, c), hp, wp)
            if self.shift:
                out = torch.roll(out, shifts=(self.shift, self.shift), dims=(1, 2))
            return out[:, :h, :w, :].reshape(b, h * w, c)

    def _partition(x: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        x = x.view(b, h // WINDOW, WINDOW, w // WINDOW, WINDOW, c)
        return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, WINDOW, WINDOW, c)

    def _reverse(windows: torch.Tensor, h: int, w: int) -> torch.Tensor:
        b = windows.shape[0] // ((h // WINDOW) * (w // WINDOW))
        x = windows.view(b, h // WINDOW, w // WINDOW, WINDOW, WINDOW, -1)
        return x.permute(0, 1, 3, 2, 4, 5).reshape(b, h, w, -1)

    class FFN(nn.Module):
        def __init__(self, dim: int) -> None:
            super().__init__()
            self.layers = nn.Sequential(nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU()), nn.Linear(4 * dim, dim))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.layers(x)

    class Block(nn.Module):
        def __init__(self, dim: int, heads: int, shift: int) -> None:
            super().__init__()
            self.norm1 = nn.LayerNorm(dim)
            self.attn = ShiftWindowMSA(dim, heads, shift)
            self.norm2 = nn.LayerNorm(dim)
            self.ffn = FFN(dim)

        def forward(self, x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
            x = x + self.attn(self.norm1(x), hw)
            return x + self.ffn(self.norm2(x))

    class PatchMerging(nn.Module):
        def __init__(self, dim: int) -> None:
            super().__init__()
            self.norm = nn.LayerNorm(4 * dim)
            self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

        def forward(self, x: torch.Tensor, hw: tuple[int, int]) -> tuple[torch.Tensor, tuple[int, int]]:
            b, _, c = x.shape
            h, w = hw
            x = x.view(b, h, w, c).permute(0, 3, 1, 2)
            x = F.pad(x, (0, w % 2, 0, h % 2))
            x = F.unfold(x, kernel_size=2, stride=2).transpose(1, 2)  # channels in Unfold order (c, kh, kw)
            return self.reduction(self.norm(x)), ((h + 1) // 2, (w + 1) // 2)

    class Stage(nn.Module):
        def __init__(self, dim: int, depth: int, heads: int, downsample: bool) -> None:
            super().__init__()
            self.blocks = nn.ModuleList([Block(dim, heads, 0 if j % 2 == 0 else WINDOW // 2) for j in range(depth)])
            self.downsample = PatchMerging(dim) if downsample else None

    class PatchEmbed(nn.Module):
        def __init__(self, dim: int) -> None:
            super().__init__()
            self.projection = nn.Conv2d(3, dim, kernel_size=4, stride=4)
            self.norm = nn.LayerNorm(dim)

    class SoliderSwin(nn.Module):
        def __init__(self, embed: int, depths: tuple[int, ...], heads: tuple[int, ...], semantic_weight: float) -> None:
            super().__init__()
            dims = [embed * 2**i for i in range(len(depths))]
            self.num_features = dims
            self.patch_embed = PatchEmbed(embed)
            self.stages = nn.ModuleList(
                [Stage(dims[i], depths[i], heads[i], i < len(depths) - 1) for i in range(len(depths))]
            )
            for i, dim in enumerate(dims):
                self.add_module(f"norm{i}", nn.LayerNorm(dim))
            self.semantic_weight = semantic_weight
            if semantic_weight >= 0:
                out = [dims[min(i + 1, len(dims) - 1)] for i in range(len(dims))]
                self.semantic_embed_w = nn.ModuleList([nn.Linear(2, d) for d in out])
                self.semantic_embed_b = nn.ModuleList([nn.Linear(2, d) for d in out])

        def stage_outputs(self, images: torch.Tensor) -> list[torch.Tensor]:
            """The normalised output of every stage, ``(B, H_i * W_i, C_i)``."""
            x = self.patch_embed.projection(images)
            hw = (x.shape[2], x.shape[3])
            x = self.patch_embed.norm(x.flatten(2).transpose(1, 2))
            s = None
            if self.semantic_weight >= 0:
                w = torch.full((x.shape[0], 1), float(self.semantic_weight), device=x.device, dtype=x.dtype)
                s = torch.cat([w, 1 - w], dim=-1)
            outs = []
            for i, stage in enumerate(self.stages):
                for block in stage.blocks:
                    x = block(x, hw)
                outs.append(getattr(self, f"norm{i}")(x))
                if stage.downsample is not None:
                    x, hw = stage.downsample(x, hw)
                    if s is not None:
                        x = x * F.softplus(self.semantic_embed_w[i](s)).unsqueeze(1)
                        x = x + self.semantic_embed_b[i](s).unsqueeze(1)
            return outs

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            return self.stage_outputs(images)[-1].mean(dim=1)

    return SoliderSwin, relative_index


def describe_swin(state: dict[str, Any]) -> str:
    """Which Swin a SOLIDER state dict holds, by the patch embedding width and the depth of stage 2."""
    weight = state.get("patch_embed.projection.weight")
    if weight is None:
        return "not a SOLIDER/mmdet Swin (no patch_embed.projection.weight)"
    embed = int(weight.shape[0])
    depths = tuple(
        len({k.split(".")[3] for k in state if k.startswith(f"stages.{i}.blocks.")}) for i in range(4)
    )
    for name, (e, d, _) in VARIANTS.items():
        if (e, d) == (embed, depths):
            return name
    return f"a Swin with embed {embed} and depths {depths}"


def build_solider(
    target: str | None,
    *,
    device: str = "cpu",
    weights: str | None = None,
    pretrained: bool | None = None,
    semantic_weight: float = 0.2,
    image_size: tuple[int, int] = (256, 128),
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406),
    std: tuple[float, float, float] = (0.229, 0.224, 0.225),
    interpolation: str = "bicubic",
) -> Any:
    import torch

    from plipbench.models.adapters._common import resolve_weights
    from plipbench.models.backbone import ModuleBackbone, count_parameters
    from plipbench.models.metadata import BackboneMetadata, ImageTransform
    from plipbench.models.weights import file_sha256

    if target not in VARIANTS:
        raise ConfigError(f"solider: unknown model {target!r}; known: {', '.join(VARIANTS)}")
    soliderswin, relative_index = _torch_modules()
    embed, depths, heads = VARIANTS[target]
    model = soliderswin(embed, depths, heads, float(semantic_weight))
    path = resolve_weights("solider", target, weights, pretrained)
    dropped: list[str] = []
    if path is not None:
        state, _ = unwrap(load_official_checkpoint(path), path, keys=("teacher", "state_dict", "model"))
        state, dropped = SOLIDER.apply(strip_prefix(state, "module."))
        found = describe_swin(state)
        if found != target:
            raise PlipbenchError(f"solider:{target}: {path} holds {found}, not {target}")
        expected_index = relative_index(WINDOW)
        for key in [k for k in state if k.endswith(".relative_position_index")]:
            if not torch.equal(state.pop(key).long(), expected_index):
                raise PlipbenchError(f"solider:{target}: {path}: {key} is not the index of window {WINDOW}")
            dropped.append(key)
        if semantic_weight < 0:
            semantic = [k for k in state if k.startswith("semantic_embed_")]
            dropped += semantic
            for key in semantic:
                state.pop(key)
        dropped.sort()
        load_converted(model, state, source=f"solider:{target} {path}")
    model.eval()
    meta = BackboneMetadata(
        name=f"solider:{target}", family="solider", modalities=("image",), embedding_dim=model.num_features[-1],
        num_parameters=count_parameters(model), source=str(path) if path else "random init",
        checkpoint_sha256=file_sha256(path) if path else None,
        description=f"SOLIDER {target}, semantic weight {semantic_weight}, mean of norm3 tokens at "
        f"{image_size[0]}x{image_size[1]}" + (f"; dropped {len(dropped)} checkpoint keys" if dropped else ""),
    )  # fmt: skip
    transform = ImageTransform(size=tuple(image_size), mean=tuple(mean), std=tuple(std), interpolation=interpolation)
    backbone = ModuleBackbone(model, meta, transform, image_fn=lambda m, x: m(x), device=device)
    backbone.dropped_keys = dropped
    return backbone

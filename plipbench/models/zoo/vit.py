"""``person-vit:vit-small|vit-base``: ViT-S/16 and ViT-B/16 person backbones, on timm's VisionTransformer.

One family, one ``layout`` per official release:

- ``dino`` (TransReID-SSL): raw DINO snapshots ``{'teacher': {'backbone.*', 'head.*'}, 'student', 'args':
  argparse.Namespace, ...}`` (optionally ``module.``-prefixed) or converted flat files. ``head.*`` (the
  DINO head) is dropped. Feature: CLS after the final norm.
- ``pass`` (PASS): the same wrapping, plus three part tokens with their own positions (``part_token1-3``,
  ``cls_pos``, ``part1_pos-part3_pos``, ``pos_embed`` over patches only); they become timm's three
  register tokens and one position table ``[cls, part1, part2, part3, patches]``, so the token order is
  PASS's. Feature: ``cat(CLS, mean(part tokens))`` (2 x width), PASS's fine-tuning feature.
- ``mae`` (HAP): ``{'model': {...}, 'epoch', 'arch', 'optimizer', 'scaler'}``; MAE's ``mask_token`` and
  ``decoder_*`` are dropped. Feature: CLS after the final norm.

Position embeddings: the releases were trained at 256x128 (a 16x8 grid). At another input size the
patch grid is resampled the way each reference does (TransReID-SSL and PASS: bilinear; HAP: bicubic;
``align_corners=False``, no antialias), with the cls (and part) positions kept; the resampling is
recorded in the metadata description.

ICS stem (``vit-small-ics``, ``vit-base-ics``: TransReID-SSL's ``vit_small_ics_cfs_lup.pth`` /
``vit_base_ics_cfs_lup.pth``): the 16x16 patch projection is replaced by an IBN convolution stem, conv 7x7
stride 2 (3 -> 64, no bias), IBN (instance norm with affine on the first 32 channels, batch norm on the other
32), ReLU, conv 3x3, IBN, ReLU, conv 3x3, BN, ReLU, then an 8x8 stride-8 projection to the width, so a
256x128 input still gives the 16x8 grid. Keys ``patch_embed.conv.{0,1.IN,1.BN,3,4.IN,4.BN,6,7}.*`` and
``patch_embed.proj.*``; the raw DINO teacher of these models is DDP-wrapped (``module.backbone.*``, because
of the batch norms), which the ``dino`` layout strips. A file's stem says which variant it is: an ICS file
for a plain model (or the reverse) is refused by name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from plipbench.errors import ConfigError, PlipbenchError
from plipbench.models.zoo.checkpoint import (
    Conversion,
    load_converted,
    load_official_checkpoint,
    strip_prefix,
    unwrap,
)

Layout = Literal["dino", "pass", "mae"]
VARIANTS = {
    "vit-small": ("vit_small_patch16_224", 384),
    "vit-base": ("vit_base_patch16_224", 768),
    "vit-small-ics": ("vit_small_patch16_224", 384),
    "vit-base-ics": ("vit_base_patch16_224", 768),
}
WIDTH_NAMES = {384: "vit-small", 768: "vit-base"}
ICS_HIDDEN, ICS_STRIDE = 64, 2
RESAMPLE = {"dino": "bilinear", "pass": "bilinear", "mae": "bicubic"}
PREFIX_TOKENS = {"dino": 1, "pass": 4, "mae": 1}
PATCH = 16


def _pass_tokens(state: dict[str, Any]) -> dict[str, Any]:
    import torch

    names = ["part_token1", "part_token2", "part_token3", "cls_pos", "part1_pos", "part2_pos", "part3_pos"]
    absent = [n for n in names if n not in state]
    if absent:
        raise PlipbenchError(f"not a PASS checkpoint: missing {', '.join(absent)}")
    out = dict(state)
    out["reg_token"] = torch.cat([out.pop(f"part_token{i}") for i in (1, 2, 3)], dim=1)
    prefix = [out.pop(n) for n in ("cls_pos", "part1_pos", "part2_pos", "part3_pos")]
    out["pos_embed"] = torch.cat([*prefix, out["pos_embed"]], dim=1)
    return out


CONVERSIONS = {
    "dino": Conversion("TransReID-SSL DINO", renames=[(r"backbone\.(.*)", r"\1")], drops=[r"head\..*"]),
    "pass": Conversion(
        "PASS", renames=[(r"backbone\.(.*)", r"\1")], drops=[r"head\..*"], transform=_pass_tokens
    ),
    "mae": Conversion("HAP MAE", drops=[r"mask_token", r"decoder_.*"]),
}


def describe_vit(state: dict[str, Any]) -> str:
    """What a ViT state dict is, by shape: ``vit-small`` / ``vit-base`` (or the width), with an ICS stem or not."""
    weight = state.get("patch_embed.proj.weight")
    if weight is None:
        return "not a ViT (no patch_embed.proj.weight)"
    width = int(weight.shape[0])
    depth = len({k.split(".")[1] for k in state if k.startswith("blocks.")})
    name = WIDTH_NAMES.get(width, f"a ViT of width {width}")
    if any(k.startswith("patch_embed.conv.") for k in state):
        return f"{name}-ics/16 (width {width}, depth {depth}, TransReID-SSL ICS-stem)"
    return f"{name}/16 (width {width}, depth {depth})"


def _ics_patch_embed() -> type:
    """timm's ``PatchEmbed`` with TransReID-SSL's IBN convolution stem in front of an 8x8 projection."""
    from timm.layers import PatchEmbed
    from torch import nn

    class IBN(nn.Module):
        """Instance norm (affine) on the first half of the channels, batch norm on the rest."""

        def __init__(self, channels: int) -> None:
            super().__init__()
            self.half = channels // 2
            self.IN = nn.InstanceNorm2d(self.half, affine=True)  # noqa: N815 - the checkpoint's key names
            self.BN = nn.BatchNorm2d(channels - self.half)  # noqa: N815

        def forward(self, x: Any) -> Any:
            import torch

            first, second = torch.split(x, [self.half, x.shape[1] - self.half], dim=1)
            return torch.cat([self.IN(first.contiguous()), self.BN(second.contiguous())], dim=1)

    class ICSPatchEmbed(PatchEmbed):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            in_chans, embed_dim = kwargs.get("in_chans", 3), self.proj.out_channels
            hidden, step = ICS_HIDDEN, self.patch_size[0] // ICS_STRIDE
            self.conv = nn.Sequential(
                nn.Conv2d(in_chans, hidden, kernel_size=7, stride=ICS_STRIDE, padding=3, bias=False),
                IBN(hidden), nn.ReLU(inplace=True),
                nn.Conv2d(hidden, hidden, kernel_size=3, stride=1, padding=1, bias=False),
                IBN(hidden), nn.ReLU(inplace=True),
                nn.Conv2d(hidden, hidden, kernel_size=3, stride=1, padding=1, bias=False),
                nn.BatchNorm2d(hidden), nn.ReLU(inplace=True),
            )  # fmt: skip
            self.proj = nn.Conv2d(hidden, embed_dim, kernel_size=step, stride=step)

        def forward(self, x: Any) -> Any:
            height, width = x.shape[-2:]
            if self.strict_img_size and (height, width) != tuple(self.img_size):
                raise PlipbenchError(
                    f"ICS-stem ViT built for {self.img_size}, got an input of {height}x{width}"
                )
            x = self.proj(self.conv(x))
            return self.norm(x.flatten(2).transpose(1, 2))

    return ICSPatchEmbed


def convert_vit(obj: Any, path: str | Path, layout: Layout) -> tuple[dict[str, Any], list[str]]:
    state, _ = unwrap(obj, path, keys=("teacher", "model", "state_dict"))
    state = strip_prefix(state, "module.")
    return CONVERSIONS[layout].apply(state)


def resample_grid(pos_embed: Any, prefix: int, old: tuple[int, int], new: tuple[int, int], mode: str) -> Any:
    """Resample the patch part of ``pos_embed [1, prefix + gh*gw, D]`` from grid ``old`` to ``new``."""
    import torch
    import torch.nn.functional as F

    head, grid = pos_embed[:, :prefix], pos_embed[:, prefix:]
    if grid.shape[1] != old[0] * old[1]:
        raise PlipbenchError(
            f"position embedding has {grid.shape[1]} patch positions, expected {old[0]}x{old[1]}"
        )
    grid = grid.reshape(1, old[0], old[1], -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=new, mode=mode, align_corners=False)
    return torch.cat([head, grid.permute(0, 2, 3, 1).reshape(1, new[0] * new[1], -1)], dim=1)


def build_person_vit(
    target: str | None,
    *,
    device: str = "cpu",
    weights: str | None = None,
    pretrained: bool | None = None,
    layout: Layout = "dino",
    image_size: tuple[int, int] = (256, 128),
    checkpoint_grid: tuple[int, int] = (16, 8),
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406),
    std: tuple[float, float, float] = (0.229, 0.224, 0.225),
    interpolation: str = "bicubic",
) -> Any:
    import timm
    import torch

    from plipbench.models.adapters._common import resolve_weights
    from plipbench.models.backbone import ModuleBackbone, count_parameters
    from plipbench.models.metadata import BackboneMetadata, ImageTransform
    from plipbench.models.weights import file_sha256

    if target not in VARIANTS:
        raise ConfigError(f"person-vit: unknown model {target!r}; known: {', '.join(VARIANTS)}")
    if layout not in CONVERSIONS:
        raise ConfigError(f"person-vit: unknown layout {layout!r}; known: {', '.join(CONVERSIONS)}")
    height, width = (int(v) for v in image_size)
    if height % PATCH or width % PATCH:
        raise ConfigError(f"person-vit: image_size {image_size} is not a multiple of the patch size {PATCH}")
    grid = (height // PATCH, width // PATCH)
    timm_name, _ = VARIANTS[target]
    extra: dict[str, Any] = {"reg_tokens": 3} if layout == "pass" else {}
    if target.endswith("-ics"):
        if layout != "dino":
            raise ConfigError(
                f"person-vit:{target}: the ICS stem exists only in the dino layout (TransReID-SSL)"
            )
        extra["embed_layer"] = _ics_patch_embed()
    model = timm.create_model(
        timm_name, pretrained=False, img_size=(height, width), num_classes=0, global_pool="token", **extra
    )
    path = resolve_weights("person-vit", target, weights, pretrained)
    dropped: list[str] = []
    notes = [f"{layout} layout at {height}x{width} (grid {grid[0]}x{grid[1]})"]
    if path is not None:
        state, dropped = convert_vit(load_official_checkpoint(path), path, layout)
        found = describe_vit(state)
        if not found.startswith(f"{target}/16"):
            raise PlipbenchError(f"person-vit:{target}: {path} holds {found}, not {target}/16")
        tuple_grid = tuple(int(g) for g in checkpoint_grid)
        if "pos_embed" in state and tuple_grid != grid:
            mode = RESAMPLE[layout]
            state["pos_embed"] = resample_grid(
                state["pos_embed"], PREFIX_TOKENS[layout], tuple_grid, grid, mode
            )
            notes.append(f"position embeddings resampled {tuple_grid[0]}x{tuple_grid[1]} -> {grid[0]}x{grid[1]} "
                         f"({mode}, cls{' and part' if layout == 'pass' else ''} positions kept)")  # fmt: skip
        load_converted(model, state, source=f"person-vit:{target} {path}")
        if dropped:
            notes.append(f"dropped {len(dropped)} checkpoint keys ({CONVERSIONS[layout].name} heads)")
    model.eval()
    dim = model.embed_dim * (2 if layout == "pass" else 1)

    def encode(m: Any, x: torch.Tensor) -> torch.Tensor:
        tokens = m.forward_features(x)
        if layout == "pass":
            return torch.cat([tokens[:, 0], tokens[:, 1:4].mean(dim=1)], dim=1)
        return tokens[:, 0]

    meta = BackboneMetadata(
        name=f"person-vit:{target}", family="person-vit", modalities=("image",), embedding_dim=dim,
        num_parameters=count_parameters(model), source=str(path) if path else "random init",
        checkpoint_sha256=file_sha256(path) if path else None, description="; ".join(notes),
    )  # fmt: skip
    transform = ImageTransform(
        size=(height, width), mean=tuple(mean), std=tuple(std), interpolation=interpolation
    )
    backbone = ModuleBackbone(model, meta, transform, image_fn=encode, device=device)
    backbone.dropped_keys = dropped
    return backbone

"""Run a ViT backbone at another input size: its absolute position embedding resampled to the new patch grid,
as TransReID's ``resize_pos_embed`` does (and IRRA's, and TransReID-SSL's).

The class (and other prefix) token positions are kept; the patch grid is reshaped to ``(rows, columns)`` and
interpolated with ``F.interpolate`` (``bilinear`` by default, ``align_corners=False``, no antialiasing), through
:func:`plipbench.recipes.transforms.resample_position_embedding` (timm's ``resample_abs_pos_embed``). Every
ViT family plipbench builds is covered, found inside the backbone's module by type:

- timm ``VisionTransformer`` (``timm:vit_*``, ``random:timm/vit_*``, the zoo's ``person-vit``, open_clip's timm
  towers): ``pos_embed`` resampled, ``patch_embed.set_input_size`` (``img_size``, ``grid_size``,
  ``num_patches``: the strict size check then accepts the new size) and timm's recorded input size updated;
  ``no_embed_class`` models have no prefix positions, register tokens (PASS's part tokens) are prefix tokens;
- open_clip ``VisionTransformer`` (``open_clip:*``, the zoo's ``person-clip``): ``positional_embedding``
  resampled, ``image_size`` and ``grid_size`` set;
- transformers ``CLIPVisionEmbeddings`` (``hf-clip:*``): a new ``position_embedding`` table and
  ``position_ids``, and the module's class switched to a subclass whose forward accepts ``(H, W)`` (the stock
  forward only accepts the square ``config.image_size``).

The module is edited in place: apply it to a training copy, never to ``ctx.backbone``. Anything else (a CNN, a
Swin, a ViT of another library, an input size that is not a multiple of the patch size) is a ConfigError.
"""

from __future__ import annotations

import functools
import sys
from typing import TYPE_CHECKING, Any

from plipbench.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

    from plipbench.models.backbone import Backbone


def _resample(posemb: torch.Tensor, prefix: int, old: tuple[int, int], new: tuple[int, int],
              interpolation: str) -> torch.Tensor:
    """``(1, prefix + old_rows*old_cols, D)`` -> ``(1, prefix + new_rows*new_cols, D)``."""
    if posemb.shape[1] != prefix + old[0] * old[1]:
        raise ConfigError(f"position embedding has {posemb.shape[1]} positions, expected {prefix} prefix + "
                          f"{old[0]}x{old[1]} patches")
    if old[0] == old[1]:
        from plipbench.recipes.transforms import resample_position_embedding

        return resample_position_embedding(posemb, new, interpolation=interpolation, prefix_tokens=prefix)
    # resample_position_embedding assumes a square stored grid (as TransReID's resize_pos_embed does); a
    # person-shaped one (the zoo's 16x8) needs timm's old_size, with the same interpolation settings
    from timm.layers import resample_abs_pos_embed

    return resample_abs_pos_embed(posemb, list(new), old_size=list(old), num_prefix_tokens=prefix,
                                  interpolation=interpolation, antialias=False)


def _grid(size: tuple[int, int], patch: tuple[int, int], where: str) -> tuple[int, int]:
    if size[0] % patch[0] or size[1] % patch[1]:
        raise ConfigError(f"{where}: input size {size[0]}x{size[1]} is not a multiple of the patch size "
                          f"{patch[0]}x{patch[1]}")
    return size[0] // patch[0], size[1] // patch[1]


def _pair(value: Any) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    return int(value[0]), int(value[1])


# -- the families ---------------------------------------------------------------------------------------------
def _resize_timm(model: nn.Module, size: tuple[int, int], interpolation: str, where: str) -> dict[str, Any]:
    import torch

    embed = model.patch_embed
    patch = _pair(embed.patch_size)
    old_size, old = _pair(embed.img_size), _pair(embed.grid_size)
    new = _grid(size, patch, where)
    prefix = 0 if getattr(model, "no_embed_class", False) else int(model.num_prefix_tokens)
    if model.pos_embed is None:
        raise ConfigError(f"{where}: this timm VisionTransformer has no absolute position embedding to resample")
    if new != old:
        with torch.no_grad():
            resampled = _resample(model.pos_embed.detach(), prefix, old, new, interpolation)
        model.pos_embed = torch.nn.Parameter(resampled, requires_grad=model.pos_embed.requires_grad)
    embed.set_input_size(img_size=size)
    try:
        from timm.models._input import update_model_input_size
    except ImportError:  # pragma: no cover - older timm keeps no record of the input size
        pass
    else:
        update_model_input_size(model, size)
    return {"family": "timm VisionTransformer", "old_input_size": list(old_size), "prefix_tokens": prefix,
            "old_grid": list(old), "new_grid": list(new), "patch_size": list(patch)}


def _resize_open_clip(visual: nn.Module, size: tuple[int, int], interpolation: str, where: str) -> dict[str, Any]:
    import torch

    patch = _pair(visual.patch_size)
    old_size, old = _pair(visual.image_size), _pair(visual.grid_size)
    new = _grid(size, patch, where)
    if new != old:
        table = visual.positional_embedding
        with torch.no_grad():
            resampled = _resample(table.detach()[None], 1, old, new, interpolation)[0]
        visual.positional_embedding = torch.nn.Parameter(resampled, requires_grad=table.requires_grad)
    visual.image_size, visual.grid_size = size, new
    return {"family": "open_clip VisionTransformer", "old_input_size": list(old_size), "prefix_tokens": 1,
            "old_grid": list(old), "new_grid": list(new), "patch_size": list(patch)}


@functools.cache
def _person_shaped_clip_embeddings() -> type:
    """transformers' ``CLIPVisionEmbeddings`` with a forward for a fixed ``(H, W)`` input (``input_size``)."""
    from transformers.models.clip.modeling_clip import CLIPVisionEmbeddings

    class PersonShapedCLIPVisionEmbeddings(CLIPVisionEmbeddings):
        input_size: tuple[int, int]

        def forward(self, pixel_values: torch.Tensor, interpolate_pos_encoding: bool = False) -> torch.Tensor:
            import torch

            batch, _, height, width = pixel_values.shape
            if (height, width) != tuple(self.input_size):
                raise ValueError(f"Input image size ({height}*{width}) doesn't match the resized model "
                                 f"({self.input_size[0]}*{self.input_size[1]}).")
            patches = self.patch_embedding(pixel_values.to(dtype=self.patch_embedding.weight.dtype))
            patches = patches.flatten(2).transpose(1, 2)
            embeddings = torch.cat([self.class_embedding.expand(batch, 1, -1), patches], dim=1)
            return embeddings + self.position_embedding(self.position_ids)

    PersonShapedCLIPVisionEmbeddings.__module__ = __name__
    return PersonShapedCLIPVisionEmbeddings


def _resize_hf_clip(embeddings: nn.Module, size: tuple[int, int], interpolation: str, where: str
                    ) -> dict[str, Any]:
    import torch

    patch = _pair(embeddings.patch_size)
    old_size = tuple(getattr(embeddings, "input_size", _pair(embeddings.image_size)))
    old = (old_size[0] // patch[0], old_size[1] // patch[1])
    new = _grid(size, patch, where)
    table = embeddings.position_embedding
    if new != old:
        with torch.no_grad():
            resampled = _resample(table.weight.detach()[None], 1, old, new, interpolation)[0]
        replacement = torch.nn.Embedding(resampled.shape[0], resampled.shape[1], device=resampled.device,
                                         dtype=resampled.dtype)
        with torch.no_grad():
            replacement.weight.copy_(resampled)
        replacement.weight.requires_grad_(table.weight.requires_grad)
        embeddings.position_embedding = replacement
        positions = resampled.shape[0]
        embeddings.register_buffer("position_ids", torch.arange(positions, device=resampled.device)[None],
                                   persistent=False)
        embeddings.num_patches, embeddings.num_positions = new[0] * new[1], positions
    embeddings.__class__ = _person_shaped_clip_embeddings()
    embeddings.input_size = size
    return {"family": "transformers CLIPVisionEmbeddings", "old_input_size": list(old_size), "prefix_tokens": 1,
            "old_grid": list(old), "new_grid": list(new), "patch_size": list(patch)}


def _family(module: nn.Module) -> Any:
    """The resize function for ``module`` when it is a ViT plipbench knows how to resize, else None."""
    from timm.models.vision_transformer import VisionTransformer

    if isinstance(module, VisionTransformer):
        return _resize_timm
    kind = type(module)
    if kind.__module__.startswith("open_clip") and kind.__name__ == "VisionTransformer":
        return _resize_open_clip
    clip = sys.modules.get("transformers.models.clip.modeling_clip")
    if clip is not None and isinstance(module, clip.CLIPVisionEmbeddings):
        return _resize_hf_clip
    return None


def resize_backbone_input(backbone: Backbone, size: tuple[int, int], *, interpolation: str = "bilinear"
                          ) -> dict[str, Any]:
    """Make ``backbone`` (a training copy: edited in place) take ``size`` = (height, width) inputs by resampling
    its ViT position embedding (module docstring). Returns what was done, for a result's details: ``family``,
    ``module`` (its name inside ``backbone.module``), ``old_input_size``, ``old_grid``, ``new_grid``,
    ``input_size``, ``patch_size``, ``prefix_tokens``, ``interpolation`` and ``resampled`` (false when the grid
    was already right). The backbone's ``image_transform`` size is set too. A backbone without a ViT this
    knows, or with several: ConfigError."""
    size = (int(size[0]), int(size[1]))
    if interpolation not in ("bilinear", "bicubic"):
        raise ConfigError(f"position-embedding interpolation must be bilinear or bicubic, got {interpolation!r}")
    found = [(name, module, fn) for name, module in backbone.module.named_modules()
             if (fn := _family(module)) is not None]
    where = f"backbone {backbone.name}"
    if not found:
        raise ConfigError(
            f"{where}: no ViT position embedding to resample to {size[0]}x{size[1]} (supported: timm "
            "VisionTransformer, open_clip VisionTransformer, transformers CLIP vision tower); "
            "train at its own size with input_size=native")
    if len(found) > 1:
        names = ", ".join(name or "<root>" for name, _, _ in found)
        raise ConfigError(f"{where}: several ViT towers ({names}); cannot tell which one to resize")
    name, module, fn = found[0]
    done = fn(module, size, interpolation, where)
    backbone.image_transform = backbone.image_transform.model_copy(update={"size": size})
    backbone._fingerprint = None
    return {**done, "module": name or "<root>", "input_size": list(size), "interpolation": interpolation,
            "resampled": done["old_grid"] != done["new_grid"]}

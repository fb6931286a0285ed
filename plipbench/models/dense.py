"""Dense feature maps of a backbone, for dense tasks (human parsing): :func:`encode_image_dense`.

A global embedding cannot show part-level features (what PLIP's colorization and SOLIDER's semantic controller
aim at), so parsing probes a backbone's spatial maps. Per family:

- PLIP / CLIP ModifiedResNet (``plip:``, ``random:``): the stage maps before the attention pool, at strides
  4, 8, 16 and 32 (``layers`` picks them; the default is the last, stride 32); a timm image encoder inside a
  PLIP model: its last four stage maps.
- timm CNNs (``timm:``): ``forward_features`` (the last stage, before pooling).
- timm ViTs: the patch tokens of ``forward_features`` (prefix tokens dropped) as a (C, H/p, W/p) grid.
- torchreid models with ``featuremaps`` (OSNet and the ResNets): that map.
- transformers CLIP (``hf-clip:``): every vision encoder layer's tokens without CLS as a (C, H/p, W/p) grid
  (``hidden_states[1:]``; the last is ``last_hidden_state``), positions interpolated by transformers
  (``interpolate_pos_encoding``) for person-shaped inputs.
- open_clip (``open_clip:``): a ModifiedResNet's four stage maps before the attention pool; a ViT's block outputs
  from its own ``forward_intermediates`` (NCHW, CLS dropped), at the model's native patch grid only (open_clip does
  not interpolate its positional table: another input size is a one-line error naming the size to use); the
  zoo's ``person-clip:`` (CLIP-ReID, an open_clip ViT tower) the same way.
- ``lup-resnet:`` (torchvision ResNet): layer1..layer4 (layer4 at stride 16 with last stride 1).
- ``person-vit:`` (timm ViTs, TransReID / PASS / ICS weights): as timm ViTs.
- ``solider:`` (SOLIDER Swin): each stage's normalised tokens (``stage_outputs``) as a grid, strides 4 to 32.

Any other backbone has no dense path here: :func:`dense_support` says why, and a parsing task skips it with that
reason. The maps come back float32, ``(B, C, h, w)``; several layers are resized (bilinear) to the first one's size
and concatenated on the channel axis (mmseg's ``resize_concat``).

This module is not part of a backbone's code fingerprint (it computes no embedding); the dense feature cache keys
on its source as well (:func:`code_hash`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plipbench.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from plipbench.models.backbone import Backbone


def code_hash() -> str:
    """sha256 of this module's source (part of every dense feature cache key)."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()


def _plip_maps(visual: Any) -> Callable[[torch.Tensor], list[torch.Tensor]] | None:
    from plipbench.models.plip.modified_resnet import ModifiedResNet

    if isinstance(visual, ModifiedResNet):
        def maps(x: torch.Tensor) -> list[torch.Tensor]:
            x = x.type(visual.conv1.weight.dtype)
            x1 = visual.layer1(visual.stem(x))
            x2 = visual.layer2(x1)
            x3 = visual.layer3(x2)
            return [x1, x2, x3, visual.layer4(x3)]

        return maps
    backbone = getattr(visual, "backbone", None)
    indices = getattr(visual, "stage_indices", None)
    if backbone is not None and indices is not None:  # TimmImageEncoder (features_only timm model)
        return lambda x: [backbone(x)[i] for i in indices]
    return None


def _timm_maps(module: Any) -> Callable[[torch.Tensor], list[torch.Tensor]] | None:
    if not hasattr(module, "forward_features") or not hasattr(module, "pretrained_cfg"):
        return None
    prefix = int(getattr(module, "num_prefix_tokens", 0) or 0)
    patch = getattr(getattr(module, "patch_embed", None), "patch_size", None)

    def maps(x: torch.Tensor) -> list[torch.Tensor]:
        out = module.forward_features(x)
        if out.ndim == 4:  # a CNN map (B, C, h, w)
            return [out]
        if out.ndim == 3 and patch is not None:  # ViT tokens (B, prefix + h*w, C)
            h, w = x.shape[-2] // patch[0], x.shape[-1] // patch[1]
            tokens = out[:, prefix:]
            if tokens.shape[1] != h * w:
                raise ConfigError(f"ViT returned {tokens.shape[1]} patch tokens for a {h}x{w} grid")
            return [tokens.transpose(1, 2).reshape(out.shape[0], out.shape[2], h, w)]
        raise ConfigError(f"timm model returned features of shape {tuple(out.shape)}; expected a map or tokens")

    return maps


def _token_grid(tokens: torch.Tensor, h: int, w: int, prefix: int) -> torch.Tensor:
    """``(B, prefix + h*w, C)`` tokens -> ``(B, C, h, w)`` (prefix tokens such as CLS dropped)."""
    grid = tokens[:, prefix:]
    if grid.shape[1] != h * w:
        raise ConfigError(f"ViT returned {grid.shape[1]} patch tokens for a {h}x{w} grid")
    return grid.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], h, w)


def _hf_clip_maps(module: Any) -> Callable[[torch.Tensor], list[torch.Tensor]] | None:
    vision = getattr(module, "vision_model", None)
    if vision is None:
        return None
    patch = int(module.config.vision_config.patch_size)

    def maps(x: torch.Tensor) -> list[torch.Tensor]:
        # every encoder layer's output (hidden_states[0] is the embedding), CLS dropped; positions interpolated by
        # transformers itself when the grid is not the pre-training one (person-shaped inputs)
        out = vision(pixel_values=x, output_hidden_states=True, interpolate_pos_encoding=True)
        h, w = x.shape[-2] // patch, x.shape[-1] // patch
        return [_token_grid(t, h, w, 1) for t in out.hidden_states[1:]]

    return maps


def _open_clip_maps(module: Any) -> tuple[Callable[[torch.Tensor], list[torch.Tensor]] | None, str]:
    visual = getattr(module, "visual", None)
    if visual is not None and all(hasattr(visual, n) for n in ("stem", "layer1", "layer4", "attnpool")):
        def resnet(x: torch.Tensor) -> list[torch.Tensor]:  # ModifiedResNet: the stage maps before the attnpool
            x = x.type(visual.conv1.weight.dtype)
            x1 = visual.layer1(visual.stem(x))
            x2 = visual.layer2(x1)
            x3 = visual.layer3(x2)
            return [x1, x2, x3, visual.layer4(x3)]

        return resnet, ""
    if visual is not None and hasattr(visual, "forward_intermediates") and hasattr(visual, "positional_embedding"):
        def vit(x: torch.Tensor) -> list[torch.Tensor]:  # every block's patch tokens as a grid, CLS dropped
            patch = visual.patch_size
            grid = (x.shape[-2] // patch[0], x.shape[-1] // patch[1])
            table = int(visual.positional_embedding.shape[0]) - 1
            if grid[0] * grid[1] != table:
                # open_clip adds its fixed positional table; it does not interpolate it
                native = tuple(getattr(visual, "grid_size", ()) or ())
                hint = f" (its grid is {native[0]}x{native[1]})" if len(native) == 2 else ""
                raise ConfigError(f"open_clip ViT: input {tuple(x.shape[-2:])} gives a {grid[0]}x{grid[1]} patch "
                                  f"grid, the model's positional table has {table} positions{hint}; set the "
                                  f"protocol's input_size to the model's own input size")
            return list(visual.forward_intermediates(x, intermediates_only=True)["image_intermediates"])

        return vit, ""
    return None, f"open_clip image tower {type(visual).__name__} has no dense path here"


def _torchvision_resnet_maps(module: Any) -> Callable[[torch.Tensor], list[torch.Tensor]] | None:
    if not all(hasattr(module, n) for n in ("conv1", "bn1", "maxpool", "layer1", "layer4")):
        return None

    def maps(x: torch.Tensor) -> list[torch.Tensor]:  # lup-resnet: torchvision ResNet stages (layer4: last stride)
        x = module.maxpool(module.relu(module.bn1(module.conv1(x))))
        x1 = module.layer1(x)
        x2 = module.layer2(x1)
        x3 = module.layer3(x2)
        return [x1, x2, x3, module.layer4(x3)]

    return maps


def _swin_maps(module: Any) -> Callable[[torch.Tensor], list[torch.Tensor]] | None:
    if not hasattr(module, "stage_outputs"):
        return None

    def maps(x: torch.Tensor) -> list[torch.Tensor]:  # SOLIDER Swin: every stage's normalised tokens as a grid
        h, w = -(-x.shape[-2] // 4), -(-x.shape[-1] // 4)  # the 4x4 patch embedding (padded)
        out = []
        for i, tokens in enumerate(module.stage_outputs(x)):
            hi, wi = -(-h // 2**i), -(-w // 2**i)  # each patch merging halves the grid (padded when odd)
            out.append(_token_grid(tokens, hi, wi, 0))
        return out

    return maps


def _extractor(backbone: Backbone) -> tuple[Callable[[torch.Tensor], list[torch.Tensor]] | None, str]:
    from plipbench.models.plip.backbone import PlipBackbone

    if isinstance(backbone, PlipBackbone):
        maps = _plip_maps(backbone.model.visual)
        return maps, "" if maps else f"PLIP image encoder {type(backbone.model.visual).__name__} has no stage maps"
    module = backbone.module
    if backbone.metadata.family == "timm":
        maps = _timm_maps(module)
        return maps, "" if maps else "timm model without forward_features"
    if backbone.metadata.family == "torchreid" and hasattr(module, "featuremaps"):
        return (lambda x: [module.featuremaps(x)]), ""
    if backbone.metadata.family == "hf-clip":
        maps = _hf_clip_maps(module)
        return maps, "" if maps else "transformers model without a vision_model"
    if backbone.metadata.family in ("open_clip", "person-clip"):
        return _open_clip_maps(module)
    if backbone.metadata.family == "person-vit":
        maps = _timm_maps(module)
        return maps, "" if maps else "person-vit model without forward_features"
    if backbone.metadata.family == "lup-resnet":
        maps = _torchvision_resnet_maps(module)
        return maps, "" if maps else "lup-resnet model is not a torchvision ResNet"
    if backbone.metadata.family == "solider":
        maps = _swin_maps(module)
        return maps, "" if maps else "solider model without stage_outputs"
    return None, f"no dense feature path for family {backbone.metadata.family!r} yet"


def dense_support(backbone: Backbone) -> str | None:
    """None when :func:`encode_image_dense` works for ``backbone``, else the reason it does not."""
    maps, why = _extractor(backbone)
    return None if maps is not None else why


def dense_maps(backbone: Backbone, images: torch.Tensor, layers: Sequence[int] = (-1,)) -> torch.Tensor:
    """The maps of :func:`encode_image_dense` with autograd and the module's own train / eval mode untouched (the
    parsing fine-tune trains through it); ``images`` must already be on the backbone's device."""
    import torch
    import torch.nn.functional as F

    maps_fn, why = _extractor(backbone)
    if maps_fn is None:
        raise ConfigError(f"backbone {backbone.name}: {why}")
    maps = maps_fn(images.to(dtype=torch.float32))
    try:
        chosen = [maps[i] for i in layers]
    except IndexError:
        raise ConfigError(f"backbone {backbone.name}: layers {list(layers)} out of range for its "
                          f"{len(maps)} dense map(s)") from None
    size = chosen[0].shape[-2:]
    chosen = [m if m.shape[-2:] == size else F.interpolate(m.float(), size=size, mode="bilinear",
                                                           align_corners=False) for m in chosen]
    return torch.cat([m.float() for m in chosen], dim=1)


def encode_image_dense(backbone: Backbone, images: torch.Tensor, layers: Sequence[int] = (-1,)) -> torch.Tensor:
    """``(B, 3, H, W)`` preprocessed images -> ``(B, C, h, w)`` float32 maps of ``layers`` (indices into the
    family's list of stage maps; several are resized to the first one's size and concatenated)."""
    import torch

    maps_fn, why = _extractor(backbone)
    if maps_fn is None:
        raise ConfigError(f"backbone {backbone.name}: {why}")
    backbone.module.eval()
    with torch.inference_mode(), backbone._autocast():
        return dense_maps(backbone, images.to(backbone.device, dtype=torch.float32), layers)

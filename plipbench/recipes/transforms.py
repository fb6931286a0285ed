"""The image pipelines of a resolved recipe (torchvision transforms v2, timm's pixel-mode erasing) and the
ViT position-embedding resampling (timm's ``resample_abs_pos_embed``).

Train: resize to the recipe's size (stretch, no centre crop: person crops keep their heads and feet),
flip, pad with zeros and random-crop back, scale to [0, 1], normalise, erase. Test: resize and
normalise. Where the libraries differ slightly from a reference, it is said here:
- flip before pad and crop (BoT, TransReID, IRRA) or after (Rethinking_of_PAR) give the same
  distribution with zero padding, so one order serves every recipe;
- torchvision's and timm's erasing draw the aspect ratio log-uniformly and try 10 boxes; BoT draws it
  uniformly and tries 100 (``attempts`` is recorded, not used: with these areas 10 tries almost never
  all fail).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from plipbench.errors import ConfigError

if TYPE_CHECKING:
    import torch

    from plipbench.recipes.resolve import ResolvedRecipe


def _interpolation(name: str) -> Any:
    from torchvision.transforms import InterpolationMode

    return InterpolationMode(name)


def _head(resolved: ResolvedRecipe, interpolation: str) -> list[Any]:
    from torchvision.transforms import v2

    # geometric steps on the PIL image, as the references do (PIL's resampling, not the tensor kernels)
    return [v2.Resize(list(resolved.recipe.input.size), interpolation=_interpolation(interpolation))]


def _tail(resolved: ResolvedRecipe) -> list[Any]:
    import torch
    from torchvision.transforms import v2

    return [
        v2.ToImage(),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(mean=list(resolved.mean), std=list(resolved.std)),
    ]


def build_train_transform(resolved: ResolvedRecipe, *, decoded: bool = False) -> Callable[[Any], torch.Tensor]:
    """PIL image (or uint8 tensor) -> the augmented, normalised ``(3, H, W)`` training input. ``decoded``: the
    input is a ``(3, H, W)`` uint8 tensor already resized to the recipe's size with its train interpolation
    (the decoded-image cache), and the resize step is left out."""
    from torchvision.transforms import v2

    recipe = resolved.recipe
    augment, size = recipe.augment, list(recipe.input.size)
    steps = [] if decoded else _head(resolved, recipe.input.train_interpolation)
    if augment.flip:
        steps.append(v2.RandomHorizontalFlip(p=augment.flip))
    if augment.pad:
        steps.append(v2.Pad(augment.pad, fill=0))
    if augment.random_crop:
        steps.append(v2.RandomCrop(size))
    steps += _tail(resolved)
    erasing = augment.random_erasing
    if erasing is not None and erasing.probability > 0:
        if erasing.fill == "pixel":
            from timm.data.random_erasing import RandomErasing

            steps.append(
                RandomErasing(
                    probability=erasing.probability,
                    min_area=erasing.area[0],
                    max_area=erasing.area[1],
                    min_aspect=erasing.aspect[0],
                    max_aspect=erasing.aspect[1],
                    mode="pixel",
                    max_count=erasing.max_count,
                    device="cpu",
                )  # fmt: skip
            )
        elif erasing.max_count != 1:
            raise ConfigError(
                f"recipe {recipe.name!r}: random_erasing.max_count > 1 needs fill: pixel (timm)"
            )
        else:
            value: Any = 0.0 if erasing.fill == "zero" else list(resolved.mean)
            steps.append(
                v2.RandomErasing(p=erasing.probability, scale=erasing.area, ratio=erasing.aspect, value=value)
            )
    return v2.Compose(steps)


def build_test_transform(resolved: ResolvedRecipe) -> Callable[[Any], torch.Tensor]:
    """PIL image (or uint8 tensor) -> the normalised ``(3, H, W)`` test input (resize only)."""
    from torchvision.transforms import v2

    return v2.Compose(_head(resolved, resolved.recipe.input.test_interpolation) + _tail(resolved))


def resample_position_embedding(
    posemb: torch.Tensor,
    new_grid: tuple[int, int],
    *,
    interpolation: str = "bilinear",
    prefix_tokens: int = 1,
) -> torch.Tensor:
    """A ViT's ``(1, prefix + h*w, dim)`` absolute position embedding resampled to ``new_grid`` (rows,
    columns), as TransReID's and IRRA's ``resize_pos_embed`` do: the class token kept, the square grid
    interpolated without antialiasing (``F.interpolate(mode='bilinear')``)."""
    from timm.layers import resample_abs_pos_embed

    return resample_abs_pos_embed(
        posemb, list(new_grid), num_prefix_tokens=prefix_tokens, interpolation=interpolation, antialias=False
    )

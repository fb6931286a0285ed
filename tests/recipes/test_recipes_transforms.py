"""The image pipelines and the position-embedding resampling built from resolved recipes."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from plipbench.errors import ConfigError
from plipbench.recipes import (
    build_test_transform,
    build_train_transform,
    default_recipe,
    resample_position_embedding,
    resolve_recipe,
)

# a 100x50 (H x W) image with a gradient, so that flips and crops change it
IMAGE = Image.fromarray(
    (torch.linspace(0, 255, 50).repeat(100, 1)[..., None].expand(100, 50, 3)).to(torch.uint8).numpy()
)


def test_test_transform_stretches_to_the_person_shape(resnet50, vit_b) -> None:
    bot = build_test_transform(resolve_recipe("bot", resnet50))(IMAGE)
    assert bot.shape == (3, 256, 128) and bot.dtype == torch.float32
    # ImageNet normalisation of the darkest column (value 0)
    assert bot[0, 0, 0].item() == pytest.approx((0 - 0.485) / 0.229, abs=1e-4)
    tr = build_test_transform(resolve_recipe("transreid", vit_b))(IMAGE)
    assert tr[0, 0, 0].item() == pytest.approx(-1.0, abs=1e-4)  # mean = std = 0.5


def erased_fraction(resolved, value: torch.Tensor) -> float:
    torch.manual_seed(0)
    out = build_train_transform(resolved)(IMAGE)
    return (out == value.view(3, 1, 1)).all(dim=0).float().mean().item()


def test_bot_erases_with_zero_after_pad_and_crop(resnet50) -> None:
    resolved = resolve_recipe("bot", resnet50, {"augment.random_erasing.probability": 1.0, "augment.pad": 0,
                                                "augment.random_crop": False})  # fmt: skip
    assert 0.02 <= erased_fraction(resolved, torch.zeros(3)) <= 0.4  # the area range, in normalised space
    torch.manual_seed(0)
    padded = build_train_transform(resolve_recipe("bot", resnet50))(IMAGE)
    assert padded.shape == (3, 256, 128)


def test_irra_erases_with_the_mean_written_into_the_normalised_tensor(clip_vit_b) -> None:
    resolved = resolve_recipe("irra", clip_vit_b, {"augment.random_erasing.probability": 1.0, "augment.pad": 0,
                                                    "augment.random_crop": False})  # fmt: skip
    assert 0.02 <= erased_fraction(resolved, torch.tensor(resolved.mean)) <= 0.4


def test_transreid_erases_with_per_pixel_noise(vit_b) -> None:
    resolved = resolve_recipe(
        "transreid", vit_b, {"augment.flip": 0.0, "augment.pad": 0, "augment.random_crop": False}
    )
    torch.manual_seed(0)
    clean = build_test_transform(resolve_recipe("transreid", vit_b, {"input.test_interpolation": "bicubic"}))(
        IMAGE
    )
    changed = []
    for seed in range(8):
        torch.manual_seed(seed)
        changed.append((build_train_transform(resolved)(IMAGE) != clean).any(dim=0).float().mean().item())
    assert any(c == 0 for c in changed) and all(c <= 1 / 3 + 1e-6 for c in changed) and max(changed) > 0.02


def test_max_count_above_one_needs_pixel_fill(resnet50) -> None:
    with pytest.raises(ConfigError, match="max_count > 1 needs fill: pixel"):
        build_train_transform(resolve_recipe("bot", resnet50, {"augment.random_erasing.max_count": 2}))


def test_position_embedding_resampled_as_transreid_does() -> None:
    torch.manual_seed(0)
    posemb = torch.randn(1, 1 + 14 * 14, 8)
    out = resample_position_embedding(posemb, (16, 8))
    # TransReID resize_pos_embed: keep the class token, bilinear-interpolate the 14x14 grid to 16x8
    grid = posemb[:, 1:].reshape(1, 14, 14, 8).permute(0, 3, 1, 2)
    grid = (
        torch.nn.functional.interpolate(grid, size=(16, 8), mode="bilinear")
        .permute(0, 2, 3, 1)
        .reshape(1, 128, 8)
    )
    assert torch.allclose(out, torch.cat([posemb[:, :1], grid], dim=1), atol=1e-6)


def test_default_recipe_per_task_and_backbone_kind(resnet50, vit_b, swin_b, plip_rn50, clip_vit_b) -> None:
    # downstream-recipes.md §9.1: one reference recipe per (task kind, backbone kind)
    assert default_recipe("image-reid", resnet50) == "bot"
    assert default_recipe("image-reid", vit_b) == default_recipe("image-reid", swin_b) == "transreid"
    assert default_recipe("text-reid", plip_rn50) == "plip-cmpmc"
    assert default_recipe("text-reid", clip_vit_b) == "irra"
    assert default_recipe("attributes", resnet50) == "rethinking"
    assert default_recipe("attributes", swin_b) == default_recipe("attributes", vit_b) == "solider-par"
    with pytest.raises(ConfigError, match="no single text-reid recipe for a swin"):
        default_recipe("text-reid", swin_b)

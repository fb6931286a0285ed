"""Dense maps of the hf-clip, open_clip and zoo families, from random models: shapes on the patch / stride grid and
values equal to the library's own intermediate outputs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from plipbench.errors import ConfigError
from plipbench.models import create_backbone
from plipbench.models.dense import dense_support, encode_image_dense
from tests.models.conftest import write_tiny_clip


def _open_clip_backbone(vision_cfg: dict):
    open_clip = pytest.importorskip("open_clip")
    from plipbench.models.backbone import ModuleBackbone
    from plipbench.models.metadata import BackboneMetadata, ImageTransform

    torch.manual_seed(0)
    text = {"context_length": 8, "vocab_size": 50, "width": 16, "heads": 2, "layers": 1}
    model = open_clip.CLIP(embed_dim=16, vision_cfg=vision_cfg, text_cfg=text).eval()
    size = vision_cfg["image_size"]
    meta = BackboneMetadata(name="open_clip:tiny", family="open_clip", modalities=["image"], embedding_dim=16,
                            num_parameters=0)
    transform = ImageTransform(size=(size, size), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    return ModuleBackbone(model, meta, transform, image_fn=lambda m, x: m.encode_image(x)), model


def test_hf_clip_token_grid_equals_the_vision_model_output(tmp_path: Path, tokenizer_dir) -> None:
    write_tiny_clip(tmp_path / "clip", tokenizer_dir)
    backbone = create_backbone(f"hf-clip:{tmp_path / 'clip'}")
    assert dense_support(backbone) is None
    images = torch.randn(2, 3, 32, 32)  # the native 4x4 grid of 8-pixel patches
    maps = encode_image_dense(backbone, images)
    assert maps.shape == (2, 32, 4, 4)
    with torch.inference_mode():
        tokens = backbone.module.vision_model(pixel_values=images).last_hidden_state
    assert torch.allclose(maps, tokens[:, 1:].transpose(1, 2).reshape(2, 32, 4, 4), atol=1e-6)
    first = encode_image_dense(backbone, images, layers=[0])
    with torch.inference_mode():
        hidden = backbone.module.vision_model(pixel_values=images, output_hidden_states=True).hidden_states[1]
    assert torch.allclose(first, hidden[:, 1:].transpose(1, 2).reshape(2, 32, 4, 4), atol=1e-6)
    person = encode_image_dense(backbone, torch.randn(1, 3, 64, 32))  # person-shaped: positions interpolated
    assert person.shape == (1, 32, 8, 4)


def test_open_clip_vit_grid_equals_forward_intermediates() -> None:
    backbone, model = _open_clip_backbone({"layers": 2, "width": 32, "head_width": 16, "patch_size": 8,
                                           "image_size": 32})
    images = torch.randn(2, 3, 32, 32)
    maps = encode_image_dense(backbone, images)
    assert maps.shape == (2, 32, 4, 4)
    with torch.inference_mode():
        ref = model.visual.forward_intermediates(images, intermediates_only=True)["image_intermediates"]
        tokens = model.visual.transformer(model.visual._embeds(images))  # the library's own block stack
    assert torch.allclose(maps, ref[-1], atol=1e-6)
    assert torch.allclose(maps, tokens[:, 1:].transpose(1, 2).reshape(2, 32, 4, 4), atol=1e-5)
    with pytest.raises(ConfigError, match="positional table has 16 positions"):
        encode_image_dense(backbone, torch.randn(1, 3, 64, 32))


def test_open_clip_modified_resnet_maps_before_the_attention_pool() -> None:
    backbone, model = _open_clip_backbone({"layers": [1, 1, 1, 1], "width": 8, "image_size": 64})
    images = torch.randn(2, 3, 64, 32)
    maps = encode_image_dense(backbone, images)
    assert maps.shape == (2, 8 * 32, 2, 1)  # stride 32; width * 8 * 4 (bottleneck expansion) channels
    visual = model.visual
    with torch.inference_mode():
        x = visual.layer4(visual.layer3(visual.layer2(visual.layer1(visual.stem(images)))))
    assert torch.equal(maps, x)
    assert encode_image_dense(backbone, images, layers=[2]).shape[-2:] == (4, 2)  # stride 16


def test_families_without_a_dense_path_say_why() -> None:
    from plipbench.models.backbone import ModuleBackbone
    from plipbench.models.metadata import BackboneMetadata, ImageTransform

    meta = BackboneMetadata(name="open_clip:odd", family="open_clip", modalities=["image"], embedding_dim=4,
                            num_parameters=0)
    odd = ModuleBackbone(torch.nn.Linear(3, 4), meta, ImageTransform(size=(32, 16), mean=(0.5,) * 3, std=(0.5,) * 3))
    assert "no dense path" in dense_support(odd)


def test_zoo_lup_resnet_stage_maps_equal_torchvision_layers() -> None:
    from torchvision.models.feature_extraction import create_feature_extractor

    backbone = create_backbone("lup-resnet:resnet50", pretrained=False)
    images = torch.randn(1, 3, 64, 32)
    maps = encode_image_dense(backbone, images, layers=[2, 3])
    assert maps.shape == (1, 1024 + 2048, 4, 2)  # layer3 at stride 16 and layer4 at stride 16 (last stride 1)
    with torch.inference_mode():
        ref = create_feature_extractor(backbone.module, {"layer3": "l3", "layer4": "l4"})(images)
    assert torch.equal(maps, torch.cat([ref["l3"], ref["l4"]], dim=1))


def test_zoo_solider_swin_stage_grids_equal_its_stage_outputs() -> None:
    backbone = create_backbone("solider:swin-tiny", pretrained=False, image_size=(64, 32))
    images = torch.randn(1, 3, 64, 32)
    maps = encode_image_dense(backbone, images)
    assert maps.shape == (1, 768, 2, 1)  # the last stage, stride 32
    with torch.inference_mode():
        tokens = backbone.module.stage_outputs(images)
    assert torch.equal(maps, tokens[-1].transpose(1, 2).reshape(1, 768, 2, 1))
    assert encode_image_dense(backbone, images, layers=[0]).shape == (1, 96, 16, 8)  # stride 4


def test_zoo_person_vit_patch_grid_equals_forward_features() -> None:
    backbone = create_backbone("person-vit:vit-small", pretrained=False, image_size=(64, 32))
    images = torch.randn(1, 3, 64, 32)
    maps = encode_image_dense(backbone, images)
    assert maps.shape == (1, 384, 4, 2)
    with torch.inference_mode():
        tokens = backbone.module.forward_features(images)
    prefix = backbone.module.num_prefix_tokens
    assert torch.equal(maps, tokens[:, prefix:].transpose(1, 2).reshape(1, 384, 4, 2))


def test_zoo_person_clip_grid_equals_open_clip_intermediates() -> None:
    backbone = create_backbone("person-clip:ViT-S-16", pretrained=False, image_size=(64, 32))
    images = torch.randn(1, 3, 64, 32)
    maps = encode_image_dense(backbone, images)
    assert maps.shape[-2:] == (4, 2)
    with torch.inference_mode():
        ref = backbone.module.visual.forward_intermediates(images, intermediates_only=True)["image_intermediates"]
    assert torch.equal(maps, ref[-1])

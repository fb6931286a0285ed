"""ViT position-embedding resampling (plipbench.models.resize) and drop path (plipbench.models.drop_path) on tiny
random models of every ViT family: the resampled table against timm and a hand interpolation, the model running
at 256x128 afterwards, the per-block drop-path rates against timm.create_model, and the refusals."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from plipbench.errors import ConfigError
from plipbench.models import BackboneMetadata, ImageTransform, ModuleBackbone
from plipbench.models.drop_path import set_drop_path
from plipbench.models.resize import resize_backbone_input

timm = pytest.importorskip("timm")


def _backbone(module, size, image_fn=None, dim=32):
    meta = BackboneMetadata(name="tiny-vit", family="test", embedding_dim=dim,
                            num_parameters=sum(p.numel() for p in module.parameters()))
    return ModuleBackbone(module, meta, ImageTransform(size=size, mean=(0.5,) * 3, std=(0.5,) * 3),
                          image_fn=image_fn)


def _tiny_timm_vit(img_size=(224, 224), **kwargs):
    from timm.models.vision_transformer import VisionTransformer

    torch.manual_seed(0)
    return VisionTransformer(img_size=img_size, patch_size=16, embed_dim=32, depth=3, num_heads=2, mlp_ratio=2.0,
                             num_classes=0, **kwargs)


def _hand_resize(posemb, prefix, old, new):
    """TransReID's resize_pos_embed, transcribed (model/backbones/vit_pytorch.py), for any old grid."""
    head, grid = posemb[:, :prefix], posemb[0, prefix:]
    grid = grid.reshape(1, old[0], old[1], -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=new, mode="bilinear")
    grid = grid.permute(0, 2, 3, 1).reshape(1, new[0] * new[1], -1)
    return torch.cat([head, grid], dim=1)


def test_timm_vit_resampled_like_transreid_and_runs_at_256x128():
    from timm.layers import resample_abs_pos_embed

    model = _tiny_timm_vit()
    original = model.pos_embed.detach().clone()
    backbone = _backbone(model, (224, 224))
    done = resize_backbone_input(backbone, (256, 128))
    assert done["old_grid"] == [14, 14] and done["new_grid"] == [16, 8] and done["resampled"]
    assert done["family"] == "timm VisionTransformer" and done["prefix_tokens"] == 1
    expected = resample_abs_pos_embed(original, [16, 8], num_prefix_tokens=1, interpolation="bilinear",
                                      antialias=False)
    torch.testing.assert_close(model.pos_embed.detach(), expected, rtol=0, atol=0)
    torch.testing.assert_close(model.pos_embed.detach(), _hand_resize(original, 1, (14, 14), (16, 8)))
    torch.testing.assert_close(model.pos_embed[:, :1].detach(), original[:, :1], rtol=0, atol=0)  # class token kept
    assert model.pos_embed.requires_grad and tuple(model.patch_embed.img_size) == (256, 128)
    assert backbone.image_transform.size == (256, 128)
    out = backbone.forward_image(torch.randn(2, 3, 256, 128))
    assert out.shape == (2, 32)
    out.sum().backward()
    assert model.pos_embed.grad is not None and model.pos_embed.grad.shape == (1, 1 + 128, 32)
    with pytest.raises(AssertionError):  # timm's strict size check now wants the new size
        model(torch.randn(1, 3, 224, 224))


def test_a_person_shaped_grid_and_register_tokens():
    # the zoo's person ViTs are stored at 16x8 (not square) with PASS's 3 part tokens as register tokens
    model = _tiny_timm_vit(img_size=(256, 128), reg_tokens=3)
    original = model.pos_embed.detach().clone()
    done = resize_backbone_input(_backbone(model, (256, 128)), (384, 128))
    assert done["prefix_tokens"] == 4 and done["old_grid"] == [16, 8] and done["new_grid"] == [24, 8]
    torch.testing.assert_close(model.pos_embed.detach(), _hand_resize(original, 4, (16, 8), (24, 8)))
    assert model(torch.randn(1, 3, 384, 128)).shape == (1, 32)


def test_same_size_is_a_no_op():
    model = _tiny_timm_vit(img_size=(256, 128))
    before = model.pos_embed.detach().clone()
    done = resize_backbone_input(_backbone(model, (256, 128)), (256, 128))
    assert not done["resampled"] and torch.equal(model.pos_embed.detach(), before)


def test_open_clip_vit_resampled():
    open_clip = pytest.importorskip("open_clip")
    torch.manual_seed(0)
    visual = open_clip.transformer.VisionTransformer(image_size=224, patch_size=16, width=32, layers=2, heads=2,
                                                     mlp_ratio=2.0, output_dim=16)
    original = visual.positional_embedding.detach().clone()
    backbone = _backbone(visual, (224, 224), dim=16)
    done = resize_backbone_input(backbone, (256, 128))
    assert done["family"] == "open_clip VisionTransformer" and done["new_grid"] == [16, 8]
    torch.testing.assert_close(visual.positional_embedding.detach()[None],
                               _hand_resize(original[None], 1, (14, 14), (16, 8)))
    assert visual.grid_size == (16, 8)
    assert backbone.forward_image(torch.randn(2, 3, 256, 128)).shape == (2, 16)


def test_hf_clip_vision_tower_resampled():
    transformers = pytest.importorskip("transformers")
    config = transformers.CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                           num_attention_heads=2, image_size=224, patch_size=16, projection_dim=16)
    torch.manual_seed(0)
    model = transformers.CLIPVisionModel(config).eval()
    embeddings = next(m for m in model.modules() if isinstance(m, transformers.models.clip.modeling_clip
                                                                .CLIPVisionEmbeddings))
    table = embeddings.position_embedding.weight.detach().clone()
    backbone = _backbone(model, (224, 224), image_fn=lambda m, x: m(pixel_values=x).pooler_output)
    done = resize_backbone_input(backbone, (256, 128))
    assert done["family"] == "transformers CLIPVisionEmbeddings" and done["module"].endswith("embeddings")
    resized = embeddings.position_embedding.weight.detach()
    torch.testing.assert_close(resized[None], _hand_resize(table[None], 1, (14, 14), (16, 8)))
    out = backbone.forward_image(torch.randn(2, 3, 256, 128))
    assert out.shape == (2, 32)
    # the resized tower equals the stock forward with the resampled table added by hand
    images = torch.randn(1, 3, 256, 128)
    patches = embeddings.patch_embedding(images).flatten(2).transpose(1, 2)
    by_hand = torch.cat([embeddings.class_embedding.expand(1, 1, -1), patches], dim=1) + resized[None]
    torch.testing.assert_close(embeddings(images), by_hand)
    with pytest.raises(ValueError, match="doesn't match the resized model"):
        embeddings(torch.randn(1, 3, 224, 224))


def test_refusals_are_one_line_config_errors():
    cnn = _backbone(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.AdaptiveAvgPool2d(1),
                                        torch.nn.Flatten()), (64, 32), dim=8)
    with pytest.raises(ConfigError, match="no ViT position embedding to resample"):
        resize_backbone_input(cnn, (256, 128))
    with pytest.raises(ConfigError, match="not a multiple of the patch size 16x16"):
        resize_backbone_input(_backbone(_tiny_timm_vit(), (224, 224)), (250, 128))
    with pytest.raises(ConfigError, match="bilinear or bicubic"):
        resize_backbone_input(_backbone(_tiny_timm_vit(), (224, 224)), (256, 128), interpolation="nearest")


# -- drop path ----------------------------------------------------------------------------------------------
def _rates(model):
    def rate(slot):
        return float(getattr(slot, "drop_prob", 0.0))

    return [(rate(b.drop_path1), rate(b.drop_path2)) for b in model.blocks]


def test_drop_path_rates_match_timm_create_model():
    reference = timm.create_model("vit_tiny_patch16_224", pretrained=False, drop_path_rate=0.1, depth=4)
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, depth=4)
    assert all(r == (0.0, 0.0) for r in _rates(model))
    done = set_drop_path(model, 0.1)
    assert done["applied"] and done["blocks"] == 4
    assert _rates(model) == _rates(reference)  # the same float32 linspace as timm's
    assert _rates(model)[0] == (0.0, 0.0) and _rates(model)[-1] == pytest.approx((0.1, 0.1))
    assert done["rates"] == pytest.approx([0.0, 0.1 / 3, 0.2 / 3, 0.1], abs=1e-6)  # rounded in details
    assert isinstance(model.blocks[0].drop_path1, torch.nn.Identity)


def test_drop_path_over_the_stages_of_a_timm_swin():
    kwargs = {"embed_dim": 16, "depths": (2, 2), "num_heads": (1, 2), "window_size": 4, "img_size": 64}
    reference = timm.create_model("swin_tiny_patch4_window7_224", pretrained=False, drop_path_rate=0.2, **kwargs)
    model = timm.create_model("swin_tiny_patch4_window7_224", pretrained=False, **kwargs)
    done = set_drop_path(model, 0.2)

    def rates(m):
        return [float(getattr(b.drop_path1, "drop_prob", 0.0)) for s in m.layers for b in s.blocks]

    assert done["blocks"] == 4 and rates(model) == pytest.approx(rates(reference))


def test_drop_path_on_a_model_without_blocks_is_not_applied():
    done = set_drop_path(torch.nn.Sequential(torch.nn.Linear(2, 2)), 0.1)
    assert done["applied"] is False and "no block" in done["reason"]
    with pytest.raises(ConfigError, match=r"drop_path must be in \[0, 1\)"):
        set_drop_path(torch.nn.Linear(2, 2), 1.5)

"""TransReID-SSL, PASS and HAP ViTs: the loader equals timm's VisionTransformer on the official layouts."""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch
import torch.nn.functional as F

from plipbench.errors import PlipbenchError
from plipbench.models import create_backbone
from plipbench.models.checks import check_backbone
from tests.models.zoo_fixtures import batch, dino_args, dino_head, perturb, save

ATOL = 1e-5


def _vit(img_size=(256, 128), **kw) -> torch.nn.Module:
    torch.manual_seed(0)
    return perturb(timm.create_model("vit_small_patch16_224", pretrained=False, img_size=img_size, num_classes=0,
                                     global_pool="token", **kw))  # fmt: skip


@pytest.fixture(scope="module")
def reference() -> torch.nn.Module:
    return _vit()


def _raw_dino(state: dict, width: int = 384) -> dict:
    head = dino_head(width)
    teacher = {f"backbone.{k}": v for k, v in state.items()} | head
    student = {f"module.backbone.{k}": v for k, v in state.items()} | {f"module.{k}": v for k, v in head.items()}
    return {"student": student, "teacher": teacher, "optimizer": {"state": {}, "param_groups": []}, "epoch": 100,
            "args": dino_args(), "dino_loss": {"center": torch.zeros(1, 32)}}  # fmt: skip


def test_transreid_ssl_raw_dino_snapshot(reference: torch.nn.Module, tmp_path: Path) -> None:
    path = save(_raw_dino(reference.state_dict()), tmp_path / "vit_small_cfs_lup.pth")
    backbone = create_backbone("person-vit:vit-small", weights=str(path), layout="dino")
    x = batch()
    with torch.no_grad():
        expected = reference.forward_features(x)[:, 0]
    assert (backbone.encode_image(x) - expected).abs().max().item() < ATOL
    assert backbone.dropped_keys == sorted(dino_head(384))


def test_transreid_ssl_converted_flat_file(reference: torch.nn.Module, tmp_path: Path) -> None:
    path = save(reference.state_dict(), tmp_path / "converted.pth")
    backbone = create_backbone("person-vit:vit-small", weights=str(path))
    x = batch()
    with torch.no_grad():
        assert (backbone.encode_image(x) - reference.forward_features(x)[:, 0]).abs().max().item() < ATOL


def test_384x128_resamples_the_grid_bilinear_keeping_cls(reference: torch.nn.Module, tmp_path: Path) -> None:
    path = save(reference.state_dict(), tmp_path / "converted.pth")
    backbone = create_backbone("person-vit:vit-small", weights=str(path), image_size=(384, 128))
    pos = reference.pos_embed.detach()
    grid = pos[:, 1:].reshape(1, 16, 8, 384).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=(24, 8), mode="bilinear", align_corners=False).permute(0, 2, 3, 1).reshape(1, 192, 384)
    expected_pos = torch.cat([pos[:, :1], grid], dim=1)
    assert torch.equal(backbone.module.pos_embed.detach(), expected_pos)
    assert "16x8 -> 24x8 (bilinear" in backbone.metadata.description
    assert backbone.image_transform.size == (384, 128)
    tall = _vit(img_size=(384, 128))
    tall.load_state_dict({**reference.state_dict(), "pos_embed": expected_pos})
    x = batch(384, 128)
    with torch.no_grad():
        assert (backbone.encode_image(x) - tall.forward_features(x)[:, 0]).abs().max().item() < ATOL


def test_renamed_missing_and_wrong_variant(reference: torch.nn.Module, tmp_path: Path) -> None:
    state = dict(reference.state_dict())
    state["blocks.3.attn.qkv_.weight"] = state.pop("blocks.3.attn.qkv.weight")
    del state["norm.bias"]
    path = save(state, tmp_path / "bad.pth")
    with pytest.raises(PlipbenchError) as info:
        create_backbone("person-vit:vit-small", weights=str(path))
    assert "2 missing key(s): blocks.3.attn.qkv.weight, norm.bias" in str(info.value)
    assert "1 unexpected key(s): blocks.3.attn.qkv_.weight" in str(info.value)
    good = save(reference.state_dict(), tmp_path / "vit_s.pth")
    with pytest.raises(PlipbenchError, match=r"holds vit-small/16 \(width 384, depth 12\), not vit-base/16"):
        create_backbone("person-vit:vit-base", weights=str(good))
    ics = dict(reference.state_dict()) | {"patch_embed.conv.0.weight": torch.randn(64, 3, 7, 7)}
    with pytest.raises(PlipbenchError, match="ICS-stem"):
        create_backbone("person-vit:vit-small", weights=str(save(ics, tmp_path / "ics.pth")))


def test_pass_part_tokens_follow_pass_order(tmp_path: Path) -> None:
    """Reference: a plain timm ViT run with PASS's own token assembly (cls, part1-3, patches + their positions)."""
    base = _vit()
    gen = torch.Generator().manual_seed(3)
    parts = [torch.randn(1, 1, 384, generator=gen) * 0.02 for _ in range(3)]
    prefix_pos = [torch.randn(1, 1, 384, generator=gen) * 0.02 for _ in range(4)]
    patch_pos = base.pos_embed.detach()[:, 1:].clone()
    state = {k: v for k, v in base.state_dict().items() if k != "pos_embed"}
    state |= {f"part_token{i + 1}": p for i, p in enumerate(parts)} | {"pos_embed": patch_pos}
    state |= dict(zip(["cls_pos", "part1_pos", "part2_pos", "part3_pos"], prefix_pos, strict=True))
    raw = {"teacher": {f"backbone.{k}": v for k, v in state.items()} | dino_head(384), "args": dino_args(), "epoch": 100}
    backbone = create_backbone("person-vit:vit-small", weights=str(save(raw, tmp_path / "pass_vit_small_full.pth")),
                               layout="pass")  # fmt: skip
    x = batch()
    with torch.no_grad():
        tokens = base.patch_embed(x)
        b = x.shape[0]
        tokens = torch.cat([base.cls_token.expand(b, -1, -1), *[p.expand(b, -1, -1) for p in parts], tokens], dim=1)
        tokens = tokens + torch.cat([*prefix_pos, patch_pos], dim=1)
        tokens = base.norm(base.blocks(base.norm_pre(tokens)))
        got = backbone.module.forward_features(x)
    for i in range(4):  # the global CLS and each part token
        assert (got[:, i] - tokens[:, i]).abs().max().item() < ATOL, i
    feature = torch.cat([tokens[:, 0], tokens[:, 1:4].mean(dim=1)], dim=1)
    assert backbone.embedding_dim == 768
    assert (backbone.encode_image(x) - feature).abs().max().item() < ATOL
    assert backbone.dropped_keys == sorted(dino_head(384))


def test_hap_mae_layout_drops_the_decoder_and_resamples_bicubic(reference: torch.nn.Module, tmp_path: Path) -> None:
    decoder = {"mask_token": torch.randn(1, 1, 64), "decoder_embed.weight": torch.randn(64, 384),
               "decoder_embed.bias": torch.randn(64), "decoder_pos_embed": torch.randn(1, 129, 64),
               "decoder_blocks.0.norm1.weight": torch.randn(64), "decoder_blocks.0.attn.qkv.weight": torch.randn(192, 64),
               "decoder_norm.weight": torch.randn(64), "decoder_norm.bias": torch.randn(64),
               "decoder_pred.weight": torch.randn(768, 64), "decoder_pred.bias": torch.randn(768)}  # fmt: skip
    obj = {"epoch": 399, "arch": "pose_mae_vit_base_patch16", "model": reference.state_dict() | decoder,
           "optimizer": {}, "scaler": {}}  # fmt: skip
    path = save(obj, tmp_path / "ckpt_default_pretrain_pose_mae_vit_base_patch16_LUPersonPose_399.pth")
    backbone = create_backbone("person-vit:vit-small", weights=str(path), layout="mae")
    x = batch()
    with torch.no_grad():
        assert (backbone.encode_image(x) - reference.forward_features(x)[:, 0]).abs().max().item() < ATOL
    assert backbone.dropped_keys == sorted(decoder)
    tall = create_backbone("person-vit:vit-small", weights=str(path), layout="mae", image_size=(384, 128))
    grid = reference.pos_embed.detach()[:, 1:].reshape(1, 16, 8, 384).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=(24, 8), mode="bicubic", align_corners=False)
    assert torch.equal(tall.module.pos_embed.detach()[:, 1:], grid.permute(0, 2, 3, 1).reshape(1, 192, 384))
    assert torch.equal(tall.module.pos_embed.detach()[:, :1], reference.pos_embed.detach()[:, :1])


def test_passes_models_check(reference: torch.nn.Module, tmp_path: Path) -> None:
    path = save(_raw_dino(reference.state_dict()), tmp_path / "vit_small_cfs_lup.pth")
    backbone = create_backbone("person-vit:vit-small", weights=str(path), image_size=(64, 32))
    assert "16x8 -> 4x2 (bilinear" in backbone.metadata.description
    failed = [r for r in check_backbone(backbone) if not r.passed]
    assert not failed, failed

"""TransReID-SSL's ICS-stem ViTs: the loader equals a functional statement of the IBN convolution stem (torch.nn
.functional conv / instance norm / batch norm, as backbone-zoo.md section 3 lists the layers) feeding timm's
VisionTransformer blocks, on raw DINO snapshots in the official layout (DDP-wrapped teacher, DINO head, args)."""

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
TIMM = {384: "vit_small_patch16_224", 768: "vit_base_patch16_224"}
HIDDEN = 64


def ics_stem_params(width: int, seed: int = 7) -> dict[str, torch.Tensor]:
    """Random stem tensors under their checkpoint names (after ``patch_embed.``), batch-norm statistics included."""
    g = torch.Generator().manual_seed(seed)
    rand = lambda *shape, scale=0.1: torch.randn(*shape, generator=g) * scale  # noqa: E731
    p: dict[str, torch.Tensor] = {"conv.0.weight": rand(HIDDEN, 3, 7, 7), "conv.3.weight": rand(HIDDEN, HIDDEN, 3, 3, scale=0.05),
                                  "conv.6.weight": rand(HIDDEN, HIDDEN, 3, 3, scale=0.05)}  # fmt: skip
    for i in (1, 4):
        p[f"conv.{i}.IN.weight"], p[f"conv.{i}.IN.bias"] = 1 + rand(32), rand(32)
        p[f"conv.{i}.BN.weight"], p[f"conv.{i}.BN.bias"] = 1 + rand(32), rand(32)
        p[f"conv.{i}.BN.running_mean"], p[f"conv.{i}.BN.running_var"] = (
            rand(32),
            0.5 + torch.rand(32, generator=g),
        )
        p[f"conv.{i}.BN.num_batches_tracked"] = torch.tensor(1000)
    p["conv.7.weight"], p["conv.7.bias"] = 1 + rand(HIDDEN), rand(HIDDEN)
    p["conv.7.running_mean"], p["conv.7.running_var"] = rand(HIDDEN), 0.5 + torch.rand(HIDDEN, generator=g)
    p["conv.7.num_batches_tracked"] = torch.tensor(1000)
    p["proj.weight"], p["proj.bias"] = rand(width, HIDDEN, 8, 8, scale=0.02), rand(width)
    return p


def ics_stem(x: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
    """The stem as plain functions: conv7/2, IBN, ReLU, conv3, IBN, ReLU, conv3, BN, ReLU, conv8/8 -> (B, N, D)."""

    def ibn(t: torch.Tensor, i: int) -> torch.Tensor:
        a = F.instance_norm(t[:, :32], weight=p[f"conv.{i}.IN.weight"], bias=p[f"conv.{i}.IN.bias"], eps=1e-5)
        b = F.batch_norm(t[:, 32:], p[f"conv.{i}.BN.running_mean"], p[f"conv.{i}.BN.running_var"],
                         p[f"conv.{i}.BN.weight"], p[f"conv.{i}.BN.bias"], training=False, eps=1e-5)  # fmt: skip
        return torch.cat([a, b], dim=1)

    x = F.relu(ibn(F.conv2d(x, p["conv.0.weight"], stride=2, padding=3), 1))
    x = F.relu(ibn(F.conv2d(x, p["conv.3.weight"], padding=1), 4))
    x = F.conv2d(x, p["conv.6.weight"], padding=1)
    x = F.relu(F.batch_norm(x, p["conv.7.running_mean"], p["conv.7.running_var"], p["conv.7.weight"], p["conv.7.bias"],
                            training=False, eps=1e-5))  # fmt: skip
    x = F.conv2d(x, p["proj.weight"], p["proj.bias"], stride=8)
    return x.flatten(2).transpose(1, 2)


def ics_reference(width: int = 384, img_size: tuple[int, int] = (256, 128)) -> tuple[torch.nn.Module, dict]:
    """A random timm ViT (its transformer part is the reference) and random stem tensors."""
    torch.manual_seed(0)
    vit = perturb(
        timm.create_model(
            TIMM[width], pretrained=False, img_size=img_size, num_classes=0, global_pool="token"
        )
    )
    return vit, ics_stem_params(width)


def ics_reference_cls(vit: torch.nn.Module, stem: dict, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        tokens = ics_stem(x, stem)
        tokens = torch.cat([vit.cls_token.expand(x.shape[0], -1, -1), tokens], dim=1) + vit.pos_embed
        return vit.norm(vit.blocks(vit.norm_pre(tokens)))[:, 0]


def ics_backbone_state(vit: torch.nn.Module, stem: dict) -> dict[str, torch.Tensor]:
    state = {k: v for k, v in vit.state_dict().items() if not k.startswith("patch_embed.")}
    return state | {f"patch_embed.{k}": v for k, v in stem.items()}


def ics_raw_dino(vit: torch.nn.Module, stem: dict) -> dict:
    """A raw DINO snapshot of an ICS model: the teacher is DDP-wrapped (batch norms), so every key has ``module.``."""
    width = int(stem["proj.weight"].shape[0])
    backbone = ics_backbone_state(vit, stem)
    wrapped = {f"module.backbone.{k}": v for k, v in backbone.items()} | {
        f"module.{k}": v for k, v in dino_head(width).items()
    }
    return {"student": wrapped, "teacher": dict(wrapped), "optimizer": {"state": {}, "param_groups": []}, "epoch": 100,
            "args": dino_args(), "dino_loss": {"center": torch.zeros(1, 32)}, "fp16_scaler": {"scale": 65536.0}}  # fmt: skip


@pytest.fixture(scope="module")
def small() -> tuple[torch.nn.Module, dict]:
    return ics_reference(384)


def test_vit_small_ics_raw_dino_equals_the_functional_stem(small, tmp_path: Path) -> None:
    vit, stem = small
    path = save(ics_raw_dino(vit, stem), tmp_path / "vit_small_ics_cfs_lup.pth")
    backbone = create_backbone("person-vit:vit-small-ics", weights=str(path), layout="dino")
    x = batch()
    assert (backbone.encode_image(x) - ics_reference_cls(vit, stem, x)).abs().max().item() < ATOL
    assert backbone.dropped_keys == sorted(dino_head(384))
    with torch.no_grad():
        assert tuple(backbone.module.patch_embed(x).shape) == (2, 128, 384)  # 256x128 -> the 16x8 grid
    flat = save(ics_backbone_state(vit, stem), tmp_path / "converted.pth")  # convert_model_dino.py output
    converted = create_backbone("person-vit:vit-small-ics", weights=str(flat))
    assert (converted.encode_image(x) - ics_reference_cls(vit, stem, x)).abs().max().item() < ATOL


def test_ics_at_384x128_resamples_the_grid_bilinear(small, tmp_path: Path) -> None:
    vit, stem = small
    path = save(ics_backbone_state(vit, stem), tmp_path / "converted.pth")
    backbone = create_backbone("person-vit:vit-small-ics", weights=str(path), image_size=(384, 128))
    assert "16x8 -> 24x8 (bilinear" in backbone.metadata.description
    tall, _ = ics_reference(384, (384, 128))
    grid = vit.pos_embed.detach()[:, 1:].reshape(1, 16, 8, 384).permute(0, 3, 1, 2)
    grid = (
        F.interpolate(grid, size=(24, 8), mode="bilinear", align_corners=False)
        .permute(0, 2, 3, 1)
        .reshape(1, 192, 384)
    )
    tall.load_state_dict(
        {**vit.state_dict(), "pos_embed": torch.cat([vit.pos_embed.detach()[:, :1], grid], dim=1)}
    )
    x = batch(384, 128)
    assert (backbone.encode_image(x) - ics_reference_cls(tall, stem, x)).abs().max().item() < ATOL


def test_ics_variant_missing_keys_and_layouts_refused(small, tmp_path: Path) -> None:
    vit, stem = small
    ics = save(ics_backbone_state(vit, stem), tmp_path / "ics.pth")
    plain = save(vit.state_dict(), tmp_path / "plain.pth")
    with pytest.raises(
        PlipbenchError,
        match=r"holds vit-small-ics/16 \(width 384, depth 12, TransReID-SSL ICS-stem\), not vit-base-ics/16",
    ):
        create_backbone("person-vit:vit-base-ics", weights=str(ics))
    with pytest.raises(
        PlipbenchError, match=r"holds vit-small/16 \(width 384, depth 12\), not vit-small-ics/16"
    ):
        create_backbone("person-vit:vit-small-ics", weights=str(plain))
    with pytest.raises(PlipbenchError, match=r"holds vit-small-ics/16 .*, not vit-small/16"):
        create_backbone("person-vit:vit-small", weights=str(ics))
    state = ics_backbone_state(vit, stem)
    del state["patch_embed.conv.4.IN.bias"]
    state["patch_embed.conv.1.bn.weight"] = state.pop("patch_embed.conv.1.BN.weight")
    with pytest.raises(PlipbenchError) as info:
        create_backbone("person-vit:vit-small-ics", weights=str(save(state, tmp_path / "bad.pth")))
    message = str(info.value)
    assert "2 missing key(s): patch_embed.conv.1.BN.weight, patch_embed.conv.4.IN.bias" in message
    assert "1 unexpected key(s): patch_embed.conv.1.bn.weight" in message
    with pytest.raises(PlipbenchError, match="only in the dino layout"):
        create_backbone("person-vit:vit-small-ics", weights=str(ics), layout="pass")


def test_ics_passes_models_check(small, tmp_path: Path) -> None:
    vit, stem = small
    path = save(ics_raw_dino(vit, stem), tmp_path / "vit_small_ics_cfs_lup.pth")
    backbone = create_backbone("person-vit:vit-small-ics", weights=str(path), image_size=(64, 32))
    failed = [r for r in check_backbone(backbone) if not r.passed]
    assert not failed, failed


@pytest.mark.slow
def test_vit_base_ics_baseline_equals_the_functional_stem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vit, stem = ics_reference(768)
    path = save(ics_raw_dino(vit, stem), tmp_path / "vit_base_ics_cfs_lup.pth")
    monkeypatch.setenv("PLIPBENCH_OFFLINE", "1")
    backbone = create_backbone("transreid-ssl-vit-b-ics", weights=str(path))
    x = batch(n=1)
    assert (backbone.encode_image(x) - ics_reference_cls(vit, stem, x)).abs().max().item() < ATOL
    assert backbone.metadata.num_parameters == 88385856 and backbone.embedding_dim == 768

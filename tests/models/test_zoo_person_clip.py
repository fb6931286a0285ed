"""IRRA, TBPS-CLIP and CLIP-ReID: the loader equals open_clip's CLIP on their official file layouts.

The layouts are tested on open_clip's ViT-S-16 (same code path and key names as the baselines' ViT-B-16,
a quarter of the size, to keep the suite fast); the baselines test builds ViT-B-16 itself.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from plipbench.errors import PlipbenchError
from plipbench.models import create_backbone
from plipbench.models.checks import check_backbone
from tests.models.zoo_fixtures import batch, perturb, save

open_clip = pytest.importorskip("open_clip")
ATOL = 1e-5
CAPTIONS = ["a woman in a red coat carrying a black bag", "a man with a blue shirt and grey trousers"]


def _clip(size: tuple[int, int]) -> torch.nn.Module:
    torch.manual_seed(0)
    model = open_clip.create_model("ViT-S-16", pretrained=None, force_quick_gelu=True, force_image_size=size)
    return perturb(model)


def _heads(width: int = 384) -> dict[str, torch.Tensor]:
    """The IRRA/TBPS extra modules (classifier over identities, cross-modal MLM parts), small."""
    return {"classifier.weight": torch.randn(11, width), "classifier.bias": torch.randn(11),
            "cross_attn.in_proj_weight": torch.randn(3 * width, width), "cross_attn.out_proj.weight": torch.randn(width, width),
            "cross_modal_transformer.resblocks.0.ln_1.weight": torch.randn(width), "ln_pre_t.weight": torch.randn(width),
            "ln_pre_i.weight": torch.randn(width), "ln_post.weight": torch.randn(width), "ln_post.bias": torch.randn(width),
            "mlm_head.dense.weight": torch.randn(width, width), "mlm_head.fc.weight": torch.randn(100, width)}  # fmt: skip


def _compare(backbone, reference, size) -> float:
    x = batch(*size)
    tokens = open_clip.get_tokenizer("ViT-S-16")(CAPTIONS)
    with torch.no_grad():
        image = (backbone.encode_image(x) - reference.encode_image(x)).abs().max().item()
        text = (backbone.encode_text(CAPTIONS) - reference.encode_text(tokens)).abs().max().item()
    return max(image, text)


@pytest.mark.slow
def test_irra_best_pth(tmp_path: Path) -> None:
    ref = _clip((384, 128))
    heads = _heads()
    model = {f"base_model.{k}": v for k, v in ref.state_dict().items()} | heads
    obj = {"model": model, "optimizer": {"state": {}, "param_groups": []}, "scheduler": {"last_epoch": 59},
           "epoch": 60, "iteration": 12000}  # fmt: skip
    backbone = create_backbone("person-clip:ViT-S-16", weights=str(save(obj, tmp_path / "best.pth")), layout="irra")
    assert backbone.image_transform.size == (384, 128)
    assert _compare(backbone, ref, (384, 128)) < ATOL
    assert backbone.dropped_keys == sorted(heads)
    assert backbone.metadata.modalities == ("image", "text")


@pytest.mark.slow
def test_tbps_clip_checkpoint(tmp_path: Path) -> None:
    ref = _clip((224, 224))
    text_keys = ("transformer.", "token_embedding.", "positional_embedding", "ln_final.", "text_projection")
    model = {(f"encode_text.{k}" if k.startswith(text_keys) else k): v for k, v in ref.state_dict().items()}
    heads = _heads() | {"simclr_mlp.0.weight": torch.randn(64, 384)}
    obj = {"model": model | heads, "optimizer": {"state": {}, "param_groups": []},
           "config": {"experiment": {"mlm": False}, "model": {"name": "clip_vitb"}}}  # fmt: skip
    backbone = create_backbone("person-clip:ViT-S-16", weights=str(save(obj, tmp_path / "checkpoint_best.pth")),
                               layout="tbps")  # fmt: skip
    assert _compare(backbone, ref, (224, 224)) < ATOL
    assert backbone.dropped_keys == sorted(heads)


@pytest.mark.slow
def test_clip_reid_image_feature_and_refusals(tmp_path: Path) -> None:
    ref = _clip((256, 128))
    flat = {f"image_encoder.{k[len('visual.'):]}": v for k, v in ref.state_dict().items() if k.startswith("visual.")}
    text = {f"text_encoder.{k}": v for k, v in ref.state_dict().items() if k.startswith(("transformer.", "ln_final."))}
    heads = {"prompt_learner.cls_ctx": torch.randn(11, 4, 384), "prompt_learner.token_prefix": torch.randn(11, 1, 384),
             "classifier.weight": torch.randn(11, 384), "classifier_proj.weight": torch.randn(11, 384),
             "bottleneck.weight": torch.randn(384), "bottleneck.running_mean": torch.randn(384),
             "bottleneck_proj.weight": torch.randn(384)}  # fmt: skip
    path = save(flat | text | heads, tmp_path / "ViT-B-16_60.pth")
    backbone = create_backbone("person-clip:ViT-S-16", weights=str(path), layout="clip-reid")
    x = batch()
    with torch.no_grad():
        projected = ref.encode_image(x)
        ref.visual.proj, proj = None, ref.visual.proj
        unprojected = ref.visual(x)
        ref.visual.proj = proj
    expected = torch.cat([unprojected, projected], dim=1)
    assert backbone.embedding_dim == expected.shape[1] and backbone.metadata.modalities == ("image",)
    assert (backbone.encode_image(x) - expected).abs().max().item() < ATOL
    assert backbone.dropped_keys == sorted([*text, *heads])
    sie = save(flat | {"cv_embed": torch.randn(6, 384)}, tmp_path / "sie.pth")
    with pytest.raises(PlipbenchError, match="SIE model"):
        create_backbone("person-clip:ViT-S-16", weights=str(sie), layout="clip-reid")
    with pytest.raises(PlipbenchError, match=r"holds a CLIP ViT of width 384, patch 16, 129 positions; this build is .*193 positions"):
        create_backbone("person-clip:ViT-S-16", weights=str(path), layout="clip-reid", image_size=(384, 128))


@pytest.mark.slow
def test_passes_models_check(tmp_path: Path) -> None:
    ref = _clip((64, 32))
    obj = {"model": {f"base_model.{k}": v for k, v in ref.state_dict().items()} | _heads()}
    path = save(obj, tmp_path / "best.pth")
    backbone = create_backbone("person-clip:ViT-S-16", weights=str(path), layout="irra", image_size=(64, 32))
    failed = [r for r in check_backbone(backbone) if not r.passed]
    assert not failed, failed

"""Adapters (timm, torchreid, hf-clip, open_clip, random) with models the tests build and save offline."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest
import torch
from torch import nn

from plipbench.errors import PlipbenchError
from plipbench.models import check_backbone, create_backbone


def test_timm_weights_file_heads_skipped(tmp_path: Path, cli) -> None:
    import timm
    from safetensors.torch import save_file

    torch.manual_seed(0)
    full = timm.create_model("resnet18", pretrained=False, num_classes=1000)  # with its ImageNet head
    path = tmp_path / "resnet18.safetensors"
    save_file({k: v.contiguous() for k, v in full.state_dict().items()}, str(path))
    backbone = create_backbone("timm:resnet18", weights=str(path))
    assert backbone.skipped_keys == ["fc.bias", "fc.weight"]
    assert backbone.metadata.embedding_dim == 512 and backbone.metadata.checkpoint_sha256
    assert backbone.image_transform.size == (224, 224) and backbone.image_transform.interpolation == "bicubic"
    full.reset_classifier(0)
    x = torch.randn(2, 3, 224, 224)
    assert torch.allclose(backbone.encode_image(x), full.eval()(x), atol=1e-5)
    result = cli("models", "check", "timm:resnet18", "--arg", f"weights={path}")
    assert result.exit_code == 0, result.output

    state = dict(full.state_dict())
    state["layer1.0.conv_one.weight"] = state.pop("layer1.0.conv1.weight")
    bad = tmp_path / "bad.pth"
    torch.save(state, bad)
    with pytest.raises(PlipbenchError, match=r"layer1\.0\.conv1\.weight.*layer1\.0\.conv_one\.weight"):
        create_backbone("timm:resnet18", weights=str(bad))


def test_timm_without_weights_loads_timm_pretrained_and_offline_says_how(cli, monkeypatch: pytest.MonkeyPatch,
                                                                        tmp_path: Path) -> None:  # fmt: skip
    from huggingface_hub import constants

    monkeypatch.setenv(
        "PLIPBENCH_OFFLINE", "1"
    )  # timm's own weights: from the hub cache, which is empty here
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(
        PlipbenchError, match=r"timm/resnet18\.a1_in1k.*offline \(PLIPBENCH_OFFLINE=1\).*hf download"
    ):
        create_backbone("timm:resnet18")
    assert create_backbone("timm:resnet18", pretrained=False).metadata.checkpoint_sha256 is None
    result = cli("models", "check", "timm:resnet18")
    # CliRunner calls the Typer app directly; plipbench.cli.main turns this error into exit code 2.
    assert isinstance(result.exception, PlipbenchError) and "weights=PATH" in str(result.exception)


def test_torchreid_weights_file_and_check(tmp_path: Path, cli) -> None:
    from plipbench.models.adapters.torchreid_models import build_torchreid

    torch.manual_seed(0)
    model = build_torchreid("osnet_x0_25", pretrained=False).module
    state = {f"module.{k}": v for k, v in model.state_dict().items()}
    state["module.classifier.weight"] = torch.randn(751, 512)  # trained on 751 identities
    state["module.classifier.bias"] = torch.zeros(751)
    path = tmp_path / "osnet_x0_25_market.pth"
    torch.save({"state_dict": state, "epoch": 10}, path)
    backbone = create_backbone("torchreid:osnet_x0_25", weights=str(path))
    assert backbone.skipped_keys == ["classifier.bias", "classifier.weight"]
    assert backbone.image_transform.size == (256, 128)
    x = torch.randn(2, 3, 256, 128)
    assert torch.allclose(backbone.encode_image(x), model.eval()(x), atol=1e-5)
    result = cli("models", "check", "torchreid:osnet_x0_25", "--arg", f"weights={path}")
    assert result.exit_code == 0, result.output


def test_random_family_is_seeded() -> None:
    a = create_backbone("random:timm/resnet18", seed=3)
    b = create_backbone("random:timm/resnet18", seed=3)
    assert a.fingerprint == b.fingerprint and a.metadata.family == "random"
    assert a.fingerprint != create_backbone("random:timm/resnet18", seed=4).fingerprint


@pytest.fixture(scope="module")
def tiny_clip_dir(tmp_path_factory: pytest.TempPathFactory, tokenizer_dir: Path) -> Path:
    from tests.models.conftest import write_tiny_clip

    directory = tmp_path_factory.mktemp("clip") / "tiny-clip"
    write_tiny_clip(directory, tokenizer_dir)
    return directory


def test_hf_clip_local_directory(tiny_clip_dir: Path, cli) -> None:
    backbone = create_backbone(f"hf-clip:{tiny_clip_dir}", max_length=32)
    meta = backbone.metadata
    assert meta.embedding_dim == 24 and backbone.has_text and meta.checkpoint_sha256
    assert backbone.image_transform.size == (32, 32) and backbone.image_transform.resize == "crop"
    assert backbone.image_transform.mean == pytest.approx((0.48145466, 0.4578275, 0.40821073))
    assert backbone.encode_text(["a man in red", "a woman"]).shape == (2, 24)
    assert all(r.passed for r in check_backbone(backbone)), check_backbone(backbone)
    result = cli("models", "check", f"hf-clip:{tiny_clip_dir}", "--arg", "max_length=32")
    assert result.exit_code == 0, result.output


def test_hf_clip_missing_model_says_where_it_looked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(
        PlipbenchError, match=r"hub model openai/clip-vit-base-patch16 not found in the cache .*offline"
    ):
        create_backbone("hf-clip:openai/clip-vit-base-patch16")


def test_open_clip_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "open_clip", None)  # import open_clip -> ImportError
    with pytest.raises(PlipbenchError, match=r"pip install plipbench\[open_clip\]"):
        create_backbone("open_clip:ViT-B-16", weights="x.pt")


def test_open_clip_adapter_with_a_fake_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class FakeClip(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.visual = nn.Conv2d(3, 16, 4, stride=4)
            self.visual.image_size = 32
            self.text = nn.Embedding(100, 16)

        def encode_image(self, x: torch.Tensor) -> torch.Tensor:
            return self.visual(x).mean(dim=(2, 3))

        def encode_text(self, ids: torch.Tensor) -> torch.Tensor:
            return self.text(ids).mean(dim=1)

    calls = {}

    def create_model_and_transforms(name, pretrained=None):
        calls["args"] = (name, pretrained)
        return FakeClip(), None, None

    fake = types.ModuleType("open_clip")
    fake.create_model_and_transforms = create_model_and_transforms
    fake.get_tokenizer = lambda name: lambda texts: torch.tensor([[len(t) % 100, 1, 2] for t in texts])
    monkeypatch.setitem(sys.modules, "open_clip", fake)
    weights = tmp_path / "RN50.pt"
    weights.write_bytes(b"fake weights")
    backbone = create_backbone("open_clip:RN50", weights=str(weights))
    assert calls["args"] == ("RN50", str(weights))
    assert backbone.metadata.embedding_dim == 16 and backbone.image_transform.size == (32, 32)
    assert all(r.passed for r in check_backbone(backbone)), check_backbone(backbone)
    with pytest.raises(PlipbenchError, match="not found"):
        create_backbone("open_clip:RN50", weights=str(tmp_path / "absent.pt"))

"""The Backbone contract: metadata, preprocessing, wrapping plain modules, text errors, fingerprints."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from pydantic import ValidationError
from torch import nn

from plipbench.errors import ConfigError, PlipbenchError
from plipbench.models import (
    BackboneMetadata,
    ImageTransform,
    ModuleBackbone,
    as_backbone,
    build_torchvision_transform,
    check_backbone,
    preprocess_image,
)

TRANSFORM = ImageTransform(
    size=(32, 16), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), interpolation="bilinear"
)


class TinyNet(nn.Module):
    def __init__(self, dim: int = 8) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, dim, 3, padding=1)
        self.bn = nn.BatchNorm2d(dim)
        self.drop = nn.Dropout(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.bn(self.conv(x)).relu().mean(dim=(2, 3)))


def meta(**kw) -> BackboneMetadata:
    base = dict(name="tiny", family="test", embedding_dim=8, num_parameters=0)
    return BackboneMetadata(**{**base, **kw})


def test_metadata_rejects_unknown_keys_and_zero_shot() -> None:
    with pytest.raises(ValidationError, match="extra"):
        BackboneMetadata(name="x", family="f", embedding_dim=4, num_parameters=1, colour="red")
    m = meta(training_data=("SYNTH-PEDES", "ImageNet-1k"))
    assert not m.is_zero_shot_on(["synth-pedes"])
    assert m.is_zero_shot_on(["CUHK-PEDES"])


def test_preprocess_stretch_and_normalise() -> None:
    white = Image.new("RGB", (50, 120), (255, 255, 255))
    out = preprocess_image(white, TRANSFORM)
    assert out.shape == (3, 32, 16)
    assert torch.allclose(out, torch.full_like(out, (1.0 - 0.5) / 0.25))
    gray = np.zeros((40, 20), dtype=np.uint8)
    assert torch.allclose(preprocess_image(gray, TRANSFORM), torch.full((3, 32, 16), -2.0))
    with pytest.raises(ConfigError, match="uint8"):
        preprocess_image(np.zeros((4, 4, 3), dtype=np.float32), TRANSFORM)


def test_crop_transform_centre_crops() -> None:
    spec = ImageTransform(size=(8, 8), mean=(0, 0, 0), std=(1, 1, 1), resize="crop", crop_pct=1.0)
    img = np.zeros((8, 24, 3), dtype=np.uint8)
    img[:, 8:16] = 255  # the centre third is white
    out = build_torchvision_transform(spec)(Image.fromarray(img))
    assert out.shape == (3, 8, 8) and float(out.min()) > 0.99


def test_module_backbone_contract_and_no_text() -> None:
    torch.manual_seed(0)
    backbone = as_backbone((TinyNet(), meta(), TRANSFORM), source="test")
    assert not backbone.has_text
    images = torch.randn(4, 3, 32, 16)
    out = backbone.encode_image(images)
    assert out.shape == (4, 8) and out.dtype == torch.float32
    assert torch.equal(out, backbone.encode_image(images))  # dropout is off: eval mode
    with pytest.raises(PlipbenchError, match="backbone tiny has no text encoder; task t2i needs one"):
        backbone.encode_text(["a man"], task="t2i")
    raw = [np.full((20 + i, 10, 3), 10 * i, dtype=np.uint8) for i in range(5)]
    assert torch.allclose(
        backbone.encode_images(raw, batch_size=2), backbone.encode_images(raw, batch_size=5)
    )
    assert all(r.passed for r in check_backbone(backbone)), check_backbone(backbone)


def test_bf16_autocast_outputs_float32() -> None:
    backbone = ModuleBackbone(TinyNet(), meta(), TRANSFORM, precision="bf16")
    out = backbone.encode_image(torch.randn(2, 3, 32, 16))
    assert out.dtype == torch.float32
    with pytest.raises(ConfigError):
        backbone.set_precision("fp8")


def test_fingerprint_depends_on_weights_and_metadata() -> None:
    torch.manual_seed(0)
    net = TinyNet()
    a = ModuleBackbone(net, meta(), TRANSFORM)
    b = ModuleBackbone(TinyNet(), meta(), TRANSFORM)
    clone = ModuleBackbone(net, meta(), TRANSFORM)
    assert a.fingerprint == clone.fingerprint and len(a.fingerprint) == 64
    assert a.fingerprint != b.fingerprint
    assert a.fingerprint != ModuleBackbone(net, meta(name="other"), TRANSFORM).fingerprint
    with_sha = ModuleBackbone(TinyNet(), meta(checkpoint_sha256="ab" * 32), TRANSFORM)
    assert (
        with_sha.fingerprint == ModuleBackbone(net, meta(checkpoint_sha256="ab" * 32), TRANSFORM).fingerprint
    )


def test_check_detects_a_broken_backbone() -> None:
    class Noisy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(3, 8)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.train()  # leaves training mode on: must be reported
            out = self.lin(x.mean(dim=(2, 3))) + torch.rand(x.shape[0], 8)
            return out / (out.sum() - out.sum())  # non-finite

    results = {r.name: r for r in check_backbone(ModuleBackbone(Noisy(), meta(), TRANSFORM))}
    assert not results["image: finite"].passed
    assert not results["image: deterministic"].passed
    assert not results["eval mode"].passed


def test_as_backbone_rejects_bad_returns() -> None:
    with pytest.raises(ConfigError, match="expected a Backbone"):
        as_backbone(42, source="x")
    with pytest.raises(ConfigError, match="image transform"):
        as_backbone((TinyNet(), meta()), source="x")
    with pytest.raises(ConfigError, match="invalid metadata"):
        as_backbone((TinyNet(), {"name": "x"}, TRANSFORM), source="x")
    with pytest.raises(ConfigError, match="encode_text"):
        as_backbone((TinyNet(), meta(modalities=("image", "text")), TRANSFORM), source="x")

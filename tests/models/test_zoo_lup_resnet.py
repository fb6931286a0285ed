"""LUPerson ResNet-50 (MoCo v2): the loader equals timm's resnet50 with last stride 1, flat and raw MoCo files."""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch

from plipbench.errors import PlipbenchError
from plipbench.models import create_backbone
from plipbench.models.checks import check_backbone
from tests.models.zoo_fixtures import batch, perturb, save


@pytest.fixture(scope="module")
def reference() -> torch.nn.Module:
    torch.manual_seed(0)
    model = timm.create_model("resnet50", pretrained=False, num_classes=0)
    model.layer4[0].conv2.stride = (1, 1)
    model.layer4[0].downsample[0].stride = (1, 1)
    return perturb(model)


@pytest.fixture(scope="module")
def moco_file(reference: torch.nn.Module, tmp_path_factory: pytest.TempPathFactory) -> Path:
    state = reference.state_dict()
    raw = {f"module.encoder_q.{k}": v for k, v in state.items()}
    raw |= {f"module.encoder_k.{k}": v for k, v in state.items()}
    for enc in ("encoder_q", "encoder_k"):  # MoCo v2's MLP head replaces fc
        raw |= {f"module.{enc}.fc.0.weight": torch.randn(2048, 2048), f"module.{enc}.fc.0.bias": torch.randn(2048),
                f"module.{enc}.fc.2.weight": torch.randn(128, 2048), f"module.{enc}.fc.2.bias": torch.randn(128)}  # fmt: skip
    raw |= {"module.queue": torch.randn(128, 16), "module.queue_ptr": torch.zeros(1, dtype=torch.long)}
    obj = {"epoch": 200, "arch": "resnet50", "state_dict": raw, "optimizer": {"state": {}, "param_groups": []}}
    return save(obj, tmp_path_factory.mktemp("lup") / "checkpoint_0199.pth.tar")


def test_flat_release_equals_the_reference(reference: torch.nn.Module, tmp_path: Path) -> None:
    path = save(reference.state_dict(), tmp_path / "lup_moco_r50.pth")
    backbone = create_backbone("lup-resnet:resnet50", weights=str(path))
    x = batch()
    with torch.no_grad():
        expected = reference(x)
    diff = (backbone.encode_image(x) - expected).abs().max().item()
    assert diff < 1e-5, diff
    assert backbone.dropped_keys == []
    maps = backbone.module.layer4(backbone.module.layer3(backbone.module.layer2(backbone.module.layer1(
        backbone.module.maxpool(backbone.module.relu(backbone.module.bn1(backbone.module.conv1(x))))))))  # fmt: skip
    assert tuple(maps.shape) == (2, 2048, 16, 8)  # last stride 1


def test_raw_moco_snapshot_keeps_the_query_encoder(reference: torch.nn.Module, moco_file: Path) -> None:
    backbone = create_backbone("lup-resnet:resnet50", weights=str(moco_file))
    x = batch()
    with torch.no_grad():
        assert (backbone.encode_image(x) - reference(x)).abs().max().item() < 1e-5
    expected_drops = {f"encoder_k.{k}" for k in reference.state_dict()}
    expected_drops |= {f"{e}.fc.{i}.{p}" for e in ("encoder_k",) for i in (0, 2) for p in ("weight", "bias")}
    expected_drops |= {f"fc.{i}.{p}" for i in (0, 2) for p in ("weight", "bias")} | {"queue", "queue_ptr"}
    assert set(backbone.dropped_keys) == expected_drops


def test_renamed_and_missing_keys_fail_listing_every_key(reference: torch.nn.Module, tmp_path: Path) -> None:
    state = dict(reference.state_dict())
    state["layer1.0.conv_1.weight"] = state.pop("layer1.0.conv1.weight")
    del state["bn1.bias"]
    path = save(state, tmp_path / "bad.pth")
    with pytest.raises(PlipbenchError) as info:
        create_backbone("lup-resnet:resnet50", weights=str(path))
    message = str(info.value)
    assert "2 missing key(s): bn1.bias, layer1.0.conv1.weight" in message
    assert "1 unexpected key(s): layer1.0.conv_1.weight" in message


def test_wrong_depth_is_refused_by_shape(reference: torch.nn.Module, tmp_path: Path) -> None:
    path = save(reference.state_dict(), tmp_path / "r50.pth")
    with pytest.raises(PlipbenchError, match="holds resnet50, not resnet101"):
        create_backbone("lup-resnet:resnet101", weights=str(path))


def test_passes_models_check(reference: torch.nn.Module, moco_file: Path) -> None:
    backbone = create_backbone("lup-resnet:resnet50", weights=str(moco_file), image_size=(64, 32))
    failed = [r for r in check_backbone(backbone) if not r.passed]
    assert not failed, failed

"""Weights files that cannot be read: one DataError naming the file, never a safetensors traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from plipbench.errors import DataError
from plipbench.models import create_backbone
from plipbench.models.weights import load_weights_file

PLIPBENCH = Path(sys.executable).parent / "plipbench"


def _truncated_safetensors(path: Path, state: dict[str, torch.Tensor], keep: int = 100) -> Path:
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    path.write_bytes(path.read_bytes()[:keep])
    return path


@pytest.mark.parametrize("keep", [0, 5, 100])
def test_truncated_safetensors_is_a_data_error_naming_the_file(tmp_path: Path, keep: int) -> None:
    path = _truncated_safetensors(tmp_path / "w.safetensors", {"a": torch.zeros(64, 64)}, keep)
    with pytest.raises(DataError, match="not a readable safetensors file") as err:
        load_weights_file(path)
    assert err.value.path == path


def test_truncated_timm_weights_are_a_data_error(tmp_path: Path) -> None:
    import timm

    model = timm.create_model("resnet18", pretrained=False, num_classes=0)
    path = _truncated_safetensors(tmp_path / "resnet18.safetensors", model.state_dict(), keep=4000)
    with pytest.raises(DataError, match="resnet18.safetensors: not a readable safetensors file"):
        create_backbone("timm:resnet18", weights=str(path))


def test_truncated_plip_checkpoint_is_a_data_error(tmp_path: Path) -> None:
    from plipbench.models.plip.checkpoint import save_plip_checkpoint
    from plipbench.models.plip.model import PlipModel, named_config

    directory = save_plip_checkpoint(PlipModel(named_config("plip-mini"), vocab_size=64), tmp_path / "ckpt")
    weights = directory / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(DataError, match="model.safetensors: not a readable safetensors file"):
        create_backbone(f"plip:{directory}")


def test_cli_truncated_weights_one_line_exit_2(tmp_path: Path) -> None:
    path = _truncated_safetensors(tmp_path / "w.safetensors", {"a": torch.zeros(8)}, keep=20)
    proc = subprocess.run([str(PLIPBENCH), "models", "check", "timm:resnet18", "--arg", f"weights={path}"],
                          capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert str(path) in proc.stderr

"""Official checkpoints: allow-listed data objects load, code-running pickles and truncated files are refused."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest
import torch

from plipbench.errors import PlipbenchError
from plipbench.models.zoo.checkpoint import Conversion, load_official_checkpoint


class RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_namespace_is_rebuilt_from_the_allow_list(tmp_path: Path) -> None:
    path = tmp_path / "raw.pth"
    torch.save({"teacher": {"backbone.w": torch.ones(2)}, "args": argparse.Namespace(arch="vit_small", lr=0.1)}, path)
    obj = load_official_checkpoint(path)
    assert isinstance(obj["args"], argparse.Namespace) and obj["args"].arch == "vit_small"
    with pytest.raises(Exception, match="Weights only load failed|Unsupported global"):  # plain weights_only refuses
        torch.load(path, weights_only=True)


def test_code_running_pickle_is_refused_before_anything_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"w": torch.ones(1)}, "args": RunsCode(marker)}, path)
    with pytest.raises(PlipbenchError, match=r"refused to load: the file needs posix\.system"):
        load_official_checkpoint(path)
    assert not marker.exists()


def test_legacy_format_pickle_with_code_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "legacy.pth"
    torch.save({"args": RunsCode(marker)}, path, _use_new_zipfile_serialization=False)
    with pytest.raises(PlipbenchError, match="refused to load"):
        load_official_checkpoint(path)
    assert not marker.exists()


def test_truncated_file_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "cut.pth"
    torch.save({"w": torch.randn(1000)}, path)
    path.write_bytes(path.read_bytes()[:1500])
    with pytest.raises(PlipbenchError, match=r"cut\.pth: cannot read as a torch checkpoint"):
        load_official_checkpoint(path)


def test_conversion_renames_and_reports_drops_exactly() -> None:
    conv = Conversion("x", renames=[(r"backbone\.(.*)", r"\1")], drops=[r"head\..*"])
    state = {"backbone.a": torch.ones(1), "head.b": torch.ones(1), "c": torch.ones(1)}
    out, dropped = conv.apply(state)
    assert sorted(out) == ["a", "c"] and dropped == ["head.b"]

"""A rerun whose results are all valid does not build the backbone; anything the identity depends on rebuilds it."""

from __future__ import annotations

import json
import os

import pytest
import test_runner
import torch

from plipbench.errors import PlipbenchError
from plipbench.evaluation.runner import BackboneHandle, evaluate
from plipbench.models import identity as memo
from plipbench.models.backbone import code_fingerprint_of
from plipbench.models.plip.checkpoint import save_plip_checkpoint
from plipbench.models.plip.model import PlipModel, named_config

tiny = test_runner.tiny  # the runner tests' tiny tasks, protocols replaced by their stub


@pytest.fixture
def checkpoint(tmp_path):
    torch.manual_seed(0)
    return save_plip_checkpoint(PlipModel(named_config("plip-mini"), vocab_size=64).eval(), tmp_path / "ckpt")


@pytest.fixture
def builds(monkeypatch):
    """Counts the backbones that evaluate() builds."""
    import plipbench.models as models

    count = []
    real = models.create_backbone

    def counting(spec, **kwargs):
        count.append(spec)
        return real(spec, **kwargs)

    monkeypatch.setattr(models, "create_backbone", counting)
    return count


def test_rerun_with_valid_results_does_not_build_the_backbone(tiny, tmp_path, checkpoint, builds) -> None:
    spec, out = f"plip:{checkpoint}", tmp_path / "results"
    first = evaluate(spec, tasks="tiny-image", out=out, registry=tiny, progress=False)
    assert list(first.status) == ["done"] and len(builds) == 1
    again = evaluate(spec, tasks="tiny-image", out=out, registry=tiny, progress=False)
    assert list(again.status) == ["cached"] and len(builds) == 1  # the remembered identity decided
    assert again.attrs["feature_cache"]["misses"] == 0
    # a result to compute builds it (and the remembered identity agrees with the real one)
    forced = evaluate(spec, tasks="tiny-image", out=out, registry=tiny, overwrite=True, progress=False)
    assert list(forced.status) == ["done"] and len(builds) == 2 and forced.attrs["feature_cache"]["hits"] == 1


def test_a_changed_checkpoint_is_rebuilt_and_its_stale_results_recomputed(tiny, tmp_path, checkpoint, builds) -> None:
    spec, out = f"plip:{checkpoint}", tmp_path / "results"
    evaluate(spec, tasks="tiny-image", out=out, registry=tiny, progress=False)
    torch.manual_seed(1)  # other weights, same path
    save_plip_checkpoint(PlipModel(named_config("plip-mini"), vocab_size=64).eval(), checkpoint, overwrite=True)
    again = evaluate(spec, tasks="tiny-image", out=out, registry=tiny, progress=False)
    assert list(again.status) == ["done"] and len(builds) == 2
    # touching a file (same bytes, new mtime) also forgets the identity: rebuilt, then the result is reused
    weights = checkpoint / "model.safetensors"
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))
    assert memo.recall(spec, "cpu") is None
    assert list(evaluate(spec, tasks="tiny-image", out=out, registry=tiny, progress=False).status) == ["cached"]
    assert len(builds) == 3


def test_changed_encoder_code_forgets_the_identity(tiny, tmp_path, checkpoint, monkeypatch) -> None:
    spec = f"plip:{checkpoint}"
    evaluate(spec, tasks="tiny-image", out=tmp_path / "results", registry=tiny, progress=False)
    remembered = memo.recall(spec, "cpu")
    assert remembered is not None
    (path,) = (tmp_path / "cache" / "backbones").glob("*.json")
    stored = json.loads(path.read_text())
    assert any(f.endswith(os.path.join("plip", "model.py")) for f in stored["source_files"])
    assert any("transformers" in f for f in stored["source_files"])  # the library's encoder classes count
    # a source file that changes: stand in a copy of one of them and edit it
    copy = tmp_path / "encoder.py"
    copy.write_text("x = 1\n")
    stored["source_files"] = [*stored["source_files"], str(copy)]
    stored["identity"]["code_fingerprint"] = code_fingerprint_of(stored["source_files"])
    path.write_text(json.dumps(stored))
    assert memo.recall(spec, "cpu") == remembered.__class__(**stored["identity"])
    copy.write_text("x = 2\n")
    assert memo.recall(spec, "cpu") is None
    # another torch or plipbench version changes the recomputed fingerprint the same way
    copy.write_text("x = 1\n")
    monkeypatch.setattr(torch, "__version__", "0.0-other")
    assert memo.recall(spec, "cpu") is None


def test_a_remembered_identity_that_disagrees_with_the_built_backbone_is_an_error(tmp_path, checkpoint,
                                                                                    monkeypatch) -> None:
    monkeypatch.setenv("PLIPBENCH_CACHE", str(tmp_path / "cache"))
    spec = f"plip:{checkpoint}"
    handle = BackboneHandle(spec, device="cpu", store=lambda b: None)
    assert handle.built
    (path,) = (tmp_path / "cache" / "backbones").glob("*.json")
    stored = json.loads(path.read_text())
    stored["identity"]["fingerprint"] = "0" * 64  # a memo that lies (it cannot, short of tampering)
    path.write_text(json.dumps(stored))
    lying = BackboneHandle(spec, device="cpu", store=lambda b: None)
    assert not lying.built and lying.identity.fingerprint == "0" * 64
    with pytest.raises(PlipbenchError, match="identity changed"):
        lying.get()


def test_only_specs_read_from_local_files_are_remembered(tmp_path, monkeypatch, checkpoint) -> None:
    monkeypatch.setenv("PLIPBENCH_CACHE", str(tmp_path / "cache"))
    assert memo.spec_inputs("random:plip-mini") is None and memo.spec_inputs("hf-clip:openai/clip") is None
    assert memo.spec_inputs(f"plip:{tmp_path / 'absent'}") is None
    assert memo.spec_inputs(f"plip:{checkpoint}") == sorted(p.resolve() for p in checkpoint.rglob("*") if p.is_file())
    handle = BackboneHandle("random:plip-mini", device="cpu", store=lambda b: None)
    assert handle.built and not (tmp_path / "cache" / "backbones").exists()
    # an unreadable memo is a miss, not an error
    BackboneHandle(f"plip:{checkpoint}", device="cpu", store=lambda b: None)
    (path,) = (tmp_path / "cache" / "backbones").glob("*.json")
    path.write_text("{not json")
    assert memo.recall(f"plip:{checkpoint}", "cpu") is None

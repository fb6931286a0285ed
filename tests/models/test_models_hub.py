"""``timm:``, ``hf-clip:`` and ``open_clip:`` take hub ids and pretrained tags as their libraries do: downloaded
into the Hugging Face hub cache (from a 127.0.0.1 stand-in hub), read from it offline without a request,
equal to the library's own load of the same files, and one line when something is missing offline."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from plipbench.errors import PlipbenchError
from plipbench.models import create_backbone
from tests.models.hub_fixtures import COMMIT, directory_files, put_in_hub_cache

ATOL = 1e-5
TIMM_NAME = (
    "test_resnet.r160_in1k"  # timm's own tiny test model; its weights live at timm/test_resnet.r160_in1k
)


def _safetensors_bytes(state: dict[str, torch.Tensor]) -> bytes:
    from safetensors.torch import save

    return save({k: v.contiguous() for k, v in state.items()})


@pytest.fixture(scope="module")
def timm_reference() -> tuple[torch.nn.Module, bytes]:
    """A random test_resnet with its 1000-class head (as the hub file has it), and its safetensors bytes."""
    import timm

    from tests.models.zoo_fixtures import perturb

    torch.manual_seed(0)
    full = perturb(timm.create_model("test_resnet", pretrained=False))
    data = _safetensors_bytes(full.state_dict())
    full.reset_classifier(0)
    return full.eval(), data


def _pixels(size: int = 64, seed: int = 1) -> torch.Tensor:
    return torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(seed))


def test_timm_tag_downloads_into_the_hub_cache_then_loads_offline(hub_env, timm_reference) -> None:
    import timm

    reference, data = timm_reference
    hub_env.hub.repos["timm/test_resnet.r160_in1k"] = {"model.safetensors": data}
    backbone = create_backbone(f"timm:{TIMM_NAME}")
    cached = (
        hub_env.cache / "models--timm--test_resnet.r160_in1k" / "snapshots" / COMMIT / "model.safetensors"
    )
    assert cached.is_file() and cached.read_bytes() == data
    assert backbone.metadata.revision == COMMIT
    assert backbone.metadata.checkpoint_sha256 == hashlib.sha256(data).hexdigest()
    x = _pixels()
    assert (backbone.encode_image(x) - reference(x)).abs().max().item() < ATOL
    assert backbone.image_transform.size == (160, 160) and backbone.image_transform.mean == (0.5, 0.5, 0.5)

    seen = len(hub_env.hub.requests)
    hub_env.offline()
    again = create_backbone(f"timm:{TIMM_NAME}")
    assert len(hub_env.hub.requests) == seen  # offline: the cache only, no request
    library = timm.create_model(
        TIMM_NAME, pretrained=True, num_classes=0
    ).eval()  # timm's own load, same cache
    with torch.no_grad():
        assert (again.encode_image(x) - library(x)).abs().max().item() < ATOL
        assert (again.encode_image(x) - reference(x)).abs().max().item() < ATOL


@pytest.mark.parametrize("variable", ["PLIPBENCH_OFFLINE", "HF_HUB_OFFLINE"])
def test_timm_missing_offline_is_one_line_and_touches_no_network(
    hub_env, timm_reference, variable: str
) -> None:
    hub_env.hub.repos["timm/test_resnet.r160_in1k"] = {"model.safetensors": timm_reference[1]}
    hub_env.offline(variable)
    with pytest.raises(PlipbenchError) as info:
        create_backbone(f"timm:{TIMM_NAME}")
    message = str(info.value)
    assert "\n" not in message and hub_env.hub.requests == []
    assert (
        f"hub repository timm/test_resnet.r160_in1k (model.safetensors) not found in the cache {hub_env.cache}"
        in message
    )
    assert f"offline ({variable}=1)" in message and "hf download timm/test_resnet.r160_in1k" in message


def test_timm_unknown_name_and_tag(hub_env) -> None:
    with pytest.raises(PlipbenchError, match="unknown timm model; did you mean: resnet50"):
        create_backbone("timm:resnet5O")
    with pytest.raises(PlipbenchError, match=r"Invalid pretrained tag \(nope\) for resnet50"):
        create_backbone("timm:resnet50.nope")
    assert hub_env.hub.requests == []


def test_cli_missing_model_offline_exits_2_with_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "PLIPBENCH_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "OMP_NUM_THREADS": "1"}
    env.pop("HF_HUB_CACHE", None)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    done = subprocess.run([sys.executable, "-m", "plipbench.cli", "models", "check", f"timm:{TIMM_NAME}"],
                          env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: timm:test_resnet.r160_in1k: hub repository"), (
        done.stderr
    )
    assert "Traceback" not in done.stderr and "hf download timm/test_resnet.r160_in1k" in lines[0]


# --- hf-clip: a transformers CLIPModel by hub id --------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory, tokenizer_dir: Path) -> Path:
    """A random CLIPModel, tokenizer and image processor as ``save_pretrained`` writes them (the hub format)."""
    from tests.models.conftest import write_tiny_clip

    directory = tmp_path_factory.mktemp("hub-clip") / "tiny-clip"
    write_tiny_clip(directory, tokenizer_dir)
    return directory


def _clip_reference(directory: Path, texts: list[str], x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    from transformers import AutoTokenizer, CLIPModel

    model = CLIPModel.from_pretrained(str(directory)).eval()
    tok = AutoTokenizer.from_pretrained(str(directory))
    enc = tok(texts, padding="max_length", truncation=True, max_length=32, return_tensors="pt")
    with torch.no_grad():
        image = model.get_image_features(pixel_values=x)
        text = model.get_text_features(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
    pooled = lambda out: out if isinstance(out, torch.Tensor) else out.pooler_output  # noqa: E731
    return pooled(image), pooled(text)


def test_hf_clip_hub_id_from_the_cache_offline(hub_env, tiny_clip: Path) -> None:
    put_in_hub_cache(hub_env.cache, "plipbench-test/tiny-clip", directory_files(tiny_clip))
    hub_env.offline("HF_HUB_OFFLINE")
    backbone = create_backbone("hf-clip:plipbench-test/tiny-clip", max_length=32)
    assert hub_env.hub.requests == []
    texts, x = ["a man in a red coat", "a woman with a bag"], _pixels(32)
    image, text = _clip_reference(tiny_clip, texts, x)
    assert (backbone.encode_image(x) - image).abs().max().item() < ATOL
    assert (backbone.encode_text(texts) - text).abs().max().item() < ATOL
    assert backbone.metadata.revision == COMMIT and backbone.metadata.checkpoint_sha256
    assert str(hub_env.cache) in backbone.metadata.source


def test_hf_clip_hub_id_downloads_into_the_cache(hub_env, tiny_clip: Path) -> None:
    hub_env.hub.repos["plipbench-test/tiny-clip"] = directory_files(tiny_clip)
    backbone = create_backbone("hf-clip:plipbench-test/tiny-clip", max_length=32)
    snapshot = hub_env.cache / "models--plipbench-test--tiny-clip" / "snapshots" / COMMIT
    assert (snapshot / "model.safetensors").read_bytes() == (tiny_clip / "model.safetensors").read_bytes()
    x = _pixels(32)
    image, _ = _clip_reference(tiny_clip, ["a"], x)
    assert (backbone.encode_image(x) - image).abs().max().item() < ATOL


def test_hf_clip_missing_offline_is_one_line(hub_env) -> None:
    hub_env.offline()
    with pytest.raises(PlipbenchError) as info:
        create_backbone("hf-clip:openai/clip-vit-base-patch16")
    message = str(info.value)
    assert "\n" not in message and hub_env.hub.requests == []
    assert f"hub model openai/clip-vit-base-patch16 not found in the cache {hub_env.cache}" in message
    assert (
        "offline (PLIPBENCH_OFFLINE=1)" in message and "hf download openai/clip-vit-base-patch16" in message
    )


# --- open_clip: MODEL:TAG and hf-hub:ORG/REPO ----------------------------------------------------------

TINY_OPEN_CLIP = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}
TAG_MEAN, TAG_STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)


@pytest.fixture()
def open_clip_tiny(monkeypatch: pytest.MonkeyPatch) -> tuple[torch.nn.Module, bytes]:
    """A tiny architecture ``plipbench-tiny`` with a pretrained tag ``test`` on the hub, registered as
    open_clip registers its own (model config + pretrained table); returns the random model and its file."""
    open_clip = pytest.importorskip("open_clip")
    from open_clip import factory, pretrained

    monkeypatch.setitem(factory._MODEL_CONFIGS, "plipbench-tiny", json.loads(json.dumps(TINY_OPEN_CLIP)))
    tag = {"hf_hub": "plipbench-test/tiny-open-clip/", "mean": TAG_MEAN, "std": TAG_STD, "interpolation": "bicubic",
           "resize_mode": "shortest", "quick_gelu": False}  # fmt: skip
    monkeypatch.setitem(pretrained._PRETRAINED, "plipbench-tiny", {"test": tag})
    torch.manual_seed(0)
    model = open_clip.create_model("plipbench-tiny", pretrained=None).eval()
    from tests.models.zoo_fixtures import perturb

    perturb(model)
    return model, _safetensors_bytes(model.state_dict())


def _open_clip_outputs(
    model: torch.nn.Module, x: torch.Tensor, texts: list[str]
) -> tuple[torch.Tensor, torch.Tensor]:
    import open_clip

    with torch.no_grad():
        return model.encode_image(x), model.encode_text(open_clip.get_tokenizer("plipbench-tiny")(texts))


def test_open_clip_tag_from_the_hub_cache_offline(hub_env, open_clip_tiny) -> None:
    import open_clip
    from huggingface_hub import constants

    source, data = open_clip_tiny
    put_in_hub_cache(hub_env.cache, "plipbench-test/tiny-open-clip", {"open_clip_model.safetensors": data})
    hub_env.offline()
    backbone = create_backbone("open_clip:plipbench-tiny:test")
    assert hub_env.hub.requests == []
    assert backbone.metadata.checkpoint_sha256 == hashlib.sha256(data).hexdigest()
    assert backbone.image_transform.mean == TAG_MEAN and backbone.image_transform.std == TAG_STD
    assert backbone.image_transform.size == (32, 32) and backbone.image_transform.resize == "crop"
    hub_env.monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # open_clip's own load, same cache
    library, _, _ = open_clip.create_model_and_transforms("plipbench-tiny", pretrained="test")
    texts, x = ["a man in a red coat", "a child"], _pixels(32)
    for reference in (source, library.eval()):
        image, text = _open_clip_outputs(reference, x, texts)
        assert (backbone.encode_image(x) - image).abs().max().item() < ATOL
        assert (backbone.encode_text(texts) - text).abs().max().item() < ATOL
    same = create_backbone("open_clip:plipbench-tiny", pretrained="test")
    assert same.metadata.checkpoint_sha256 == backbone.metadata.checkpoint_sha256


def test_open_clip_hf_hub_repository_downloads(hub_env, open_clip_tiny) -> None:
    source, data = open_clip_tiny
    config = {"model_cfg": TINY_OPEN_CLIP, "preprocess_cfg": {"mean": list(TAG_MEAN), "std": list(TAG_STD)}}
    hub_env.hub.repos["plipbench-test/tiny-open-clip-hub"] = {
        "open_clip_config.json": json.dumps(config).encode(), "open_clip_model.safetensors": data}  # fmt: skip
    backbone = create_backbone("open_clip:hf-hub:plipbench-test/tiny-open-clip-hub")
    snapshot = hub_env.cache / "models--plipbench-test--tiny-open-clip-hub" / "snapshots" / COMMIT
    assert (snapshot / "open_clip_model.safetensors").is_file() and backbone.metadata.revision == COMMIT
    x = _pixels(32)
    image, _ = _open_clip_outputs(source, x, ["a"])
    assert (backbone.encode_image(x) - image).abs().max().item() < ATOL
    assert backbone.image_transform.mean == TAG_MEAN
    seen = len(hub_env.hub.requests)
    hub_env.offline()  # the model, its config and its tokenizer now come from the cache, with no request
    again = create_backbone("open_clip:hf-hub:plipbench-test/tiny-open-clip-hub")
    assert len(hub_env.hub.requests) == seen
    assert (again.encode_text(["a man"]) - backbone.encode_text(["a man"])).abs().max().item() == 0


def test_open_clip_hub_repository_without_weights_is_refused(hub_env, open_clip_tiny) -> None:
    config = {"model_cfg": TINY_OPEN_CLIP, "preprocess_cfg": {}}
    hub_env.hub.repos["plipbench-test/config-only"] = {"open_clip_config.json": json.dumps(config).encode()}
    with pytest.raises(
        PlipbenchError, match=r"hub repository plipbench-test/config-only .* not found in the cache"
    ):
        create_backbone("open_clip:hf-hub:plipbench-test/config-only")  # open_clip alone would go on, random


def test_open_clip_missing_tag_offline_and_unknown_tag(hub_env, open_clip_tiny) -> None:
    hub_env.offline()
    with pytest.raises(PlipbenchError) as info:
        create_backbone("open_clip:plipbench-tiny:test")
    message = str(info.value)
    assert "\n" not in message and hub_env.hub.requests == []
    assert "hub repository plipbench-test/tiny-open-clip (open_clip_model.safetensors) not found" in message
    with pytest.raises(PlipbenchError, match=r"no pretrained tag 'nope' for plipbench-tiny \(tags: test\)"):
        create_backbone("open_clip:plipbench-tiny:nope")
    with pytest.raises(PlipbenchError, match=r"open_clip:plipbench-tiny:TAG \(tags: test\)"):
        create_backbone("open_clip:plipbench-tiny")

"""``open_clip:MODEL[:TAG]``: an ``open_clip`` model (optional extra ``plipbench[open_clip]``).

Named as open_clip names its weights (``open_clip.list_pretrained(as_str=True)``):

- ``open_clip:ViT-B-16:openai`` (model and pretrained tag; ``pretrained=TAG`` also works);
- ``open_clip:hf-hub:ORG/REPO`` (a hub repository with ``open_clip_config.json``);
- ``open_clip:ViT-B-16`` with ``weights=PATH`` (a local checkpoint) or ``pretrained=false`` (random).

Tags and hub repositories are loaded by ``open_clip.create_model_and_transforms`` itself, so the
files come from and go to open_clip's caches (the Hugging Face hub cache; ``~/.cache/clip`` for the
few URL-only tags). Offline (``PLIPBENCH_OFFLINE=1`` / ``HF_HUB_OFFLINE=1``) only the caches are read;
a missing file is one line naming it and how to fetch it. open_clip itself continues with random
weights when a hub repository's weights cannot be downloaded; plipbench refuses instead.

The tokenizer is ``open_clip.get_tokenizer(MODEL)``. The image transform is the model's
``visual.preprocess_cfg`` (size, mean/std, interpolation, resize mode), falling back to
``visual.image_size`` / ``image_mean`` / ``image_std`` and the CLIP defaults: bicubic, shorter side
resized and centre-cropped.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

from plipbench.errors import ConfigError, PlipbenchError

HUB_WEIGHTS = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")


def _import_open_clip() -> Any:
    try:
        return importlib.import_module("open_clip")
    except ImportError:
        raise PlipbenchError(
            "the open_clip family needs the optional package open_clip_torch: pip install plipbench[open_clip]"
        ) from None


def parse_open_clip_spec(target: str, pretrained: bool | str | None) -> tuple[str, str | None]:
    """``(model name, pretrained tag or None)`` from ``MODEL:TAG``, ``hf-hub:ORG/REPO`` or ``MODEL`` + ``pretrained``."""
    if target.startswith(("hf-hub:", "local-dir:")):
        return target, None
    model, _, tag = target.partition(":")
    if isinstance(pretrained, str) and pretrained:
        if tag and tag != pretrained:
            raise ConfigError(f"open_clip:{target}: the spec names tag {tag!r} and pretrained={pretrained!r}")
        tag = pretrained
    return model, tag or None


def _tag_weights(
    open_clip: Any, spec: str, model: str, tag: str
) -> tuple[str | None, str | None, tuple[str, ...]]:
    """(hub repo, URL, candidate file names) of a pretrained tag, as open_clip's ``download_pretrained`` picks."""
    cfg = open_clip.pretrained.get_pretrained_cfg(model.replace("/", "-"), tag)
    if not cfg:
        tags = open_clip.pretrained.list_pretrained_tags_by_model(model.replace("/", "-"))
        raise ConfigError(f"{spec}: open_clip has no pretrained tag {tag!r} for {model} "
                          f"(tags: {', '.join(tags) or 'none'})")  # fmt: skip
    hub = cfg.get("hf_hub", "")
    if hub:
        repo, filename = os.path.split(hub)
        files = (filename,) if filename else HUB_WEIGHTS
        if filename.endswith((".bin", ".pth")):
            files = (filename[:-4] + ".safetensors", filename)
        return repo, None, files
    return None, cfg.get("url") or None, ()


def _clip_url_cache(url: str) -> Path:
    return Path(os.path.expanduser("~/.cache/clip")) / os.path.basename(url)


def _create_pretrained(open_clip: Any, spec: str, name: str, tag: str | None) -> tuple[Any, Path | None]:
    """open_clip's own factory for a tag or a hub repository, under plipbench's offline rule."""
    from plipbench.models.fetch import is_offline
    from plipbench.models.hub import cached_hub_file, first_line, hub_offline, is_hub_error, missing_error

    if name.startswith("hf-hub:"):
        repo, url, files = name[len("hf-hub:") :], None, HUB_WEIGHTS
    else:
        assert tag is not None
        repo, url, files = _tag_weights(open_clip, spec, name, tag)
    hint = (
        f"run `hf download {repo}` once with network"
        if repo
        else f"download {url} to {_clip_url_cache(url or '')}"
    )
    hint += " (or pass weights=PATH)"
    what = f"hub repository {repo} ({files[0]})" if repo else f"the weights file {url}"
    if repo is None and is_offline() and not _clip_url_cache(url or "").is_file():
        raise missing_error(spec, what, hint, cache=_clip_url_cache(url or "").parent)
    try:
        with hub_offline():
            if repo is not None and name.startswith("hf-hub:"):
                # open_clip would go on with random weights if these were missing: fetch them first
                open_clip.pretrained.download_pretrained_from_hf(repo)
            model, _, _ = open_clip.create_model_and_transforms(name, pretrained=tag)
    except Exception as err:
        if (
            is_hub_error(err)
            or isinstance(err, (OSError, FileNotFoundError))
            or "Failed to download" in str(err)
        ):
            raise missing_error(spec, what, hint, err) from None
        if isinstance(err, RuntimeError):
            raise PlipbenchError(f"{spec}: {first_line(err)}") from None
        raise
    cached = cached_hub_file(repo, files) if repo else _clip_url_cache(url or "")
    return model, cached if cached is not None and cached.is_file() else None


def _transform(model: Any) -> Any:
    from plipbench.models.metadata import CLIP_MEAN, CLIP_STD, ImageTransform

    visual = model.visual
    cfg = dict(getattr(visual, "preprocess_cfg", None) or {})
    size = cfg.get("size") or getattr(visual, "image_size", 224)
    size = (size, size) if isinstance(size, int) else tuple(size)
    interpolation = cfg.get("interpolation") or "bicubic"
    return ImageTransform(
        size=size, mean=tuple(cfg.get("mean") or getattr(visual, "image_mean", None) or CLIP_MEAN),
        std=tuple(cfg.get("std") or getattr(visual, "image_std", None) or CLIP_STD),
        interpolation=interpolation if interpolation in ("bilinear", "bicubic", "nearest") else "bicubic",
        resize="stretch" if cfg.get("resize_mode") == "squash" else "crop",
    )  # fmt: skip


def build_open_clip(
    target: str | None,
    *,
    device: str = "cpu",
    weights: str | None = None,
    pretrained: bool | str | None = None,
) -> Any:
    import torch

    from plipbench.models.backbone import ModuleBackbone, count_parameters
    from plipbench.models.hub import snapshot_revision
    from plipbench.models.metadata import BackboneMetadata
    from plipbench.models.weights import file_sha256

    if not target:
        raise ConfigError("open_clip: name a model, e.g. open_clip:ViT-B-16:openai")
    spec = f"open_clip:{target}"
    open_clip = _import_open_clip()
    name, tag = parse_open_clip_spec(target, pretrained)
    path: Path | None = None
    if weights:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise PlipbenchError(f"{spec}: weights file not found: {path}")
        source = str(path)
    elif pretrained is False:
        source = "random init"
    elif tag is None and not name.startswith(("hf-hub:", "local-dir:")):
        tags = (
            open_clip.pretrained.list_pretrained_tags_by_model(name)
            if hasattr(open_clip, "pretrained")
            else []
        )
        raise PlipbenchError(
            f"{spec}: no weights named; give a pretrained tag as open_clip does, open_clip:{name}:TAG "
            f"(tags: {', '.join(tags) or 'none'}), or weights=PATH (a local checkpoint), or pretrained=false"
        )
    if weights or pretrained is False or name.startswith("local-dir:"):
        try:
            model, _, _ = open_clip.create_model_and_transforms(name, pretrained=str(path) if path else None)
        except RuntimeError as err:
            raise PlipbenchError(f"{spec}: {err}") from None
    else:
        model, path = _create_pretrained(open_clip, spec, name, tag)
        source = f"open_clip {name}" + (f" pretrained={tag}" if tag else "") + (f" ({path})" if path else "")
    from plipbench.models.hub import hub_offline

    with hub_offline():  # hf-hub: names and HF tokenizers read the hub too
        tokenizer = open_clip.get_tokenizer(name)
    model.eval()
    transform = _transform(model)

    def encode_text(m: Any, texts: list[str]) -> Any:
        return m.encode_text(tokenizer(texts).to(next(m.parameters()).device))

    with torch.inference_mode():
        dim = int(model.encode_image(torch.zeros(1, 3, *transform.size)).shape[-1])
    meta = BackboneMetadata(
        name=f"open_clip:{target}", family="open_clip", modalities=("image", "text"), embedding_dim=dim,
        num_parameters=count_parameters(model), source=source, revision=snapshot_revision(path),
        checkpoint_sha256=file_sha256(path) if path else None, description=f"open_clip {target}",
    )  # fmt: skip
    return ModuleBackbone(
        model, meta, transform, image_fn=lambda m, x: m.encode_image(x), text_fn=encode_text, device=device
    )

"""``timm:NAME``: any timm image model as a global-feature backbone (``num_classes=0``: pooled features).

Weights, in this order:

- ``weights=PATH``: a local file (safetensors or a plain torch state dict); the classifier head's keys
  are reported and skipped, every other key must match;
- ``pretrained=false``: a random initialisation;
- otherwise timm's own pretrained weights, named as timm names them: ``timm:resnet50.a1_in1k`` (model
  and tag), ``timm:resnet50`` (timm's default tag) or ``timm:hf-hub:timm/resnet50.a1_in1k``. They are
  loaded by ``timm.create_model(NAME, pretrained=True)`` itself, so they come from (and go to) timm's
  caches: the Hugging Face hub cache, or torch hub's ``checkpoints/`` for the few URL-only weights.
  Offline (``PLIPBENCH_OFFLINE=1`` / ``HF_HUB_OFFLINE=1``) nothing touches the network and a missing
  file is one line naming the hub repository and the command that fetches it.

The image transform is timm's eval data config (input size, interpolation, mean/std, crop_pct,
centre crop) of the pretrained tag.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from plipbench.errors import ConfigError, PlipbenchError
from plipbench.models.adapters._common import load_checked


def _hub_source(name: str) -> tuple[str | None, str | None, tuple[str, ...]]:
    """(hub repo, URL, weight file names timm tries) of a timm model name, from its pretrained config."""
    from timm.models import get_pretrained_cfg

    if name.startswith("hf-hub:"):
        return name[len("hf-hub:") :].split("@")[0], None, ("model.safetensors", "pytorch_model.bin")
    try:
        cfg = get_pretrained_cfg(name)
    except RuntimeError as err:  # an architecture with pretrained configs, but not this tag
        raise ConfigError(f"timm:{name}: {err}") from None
    if cfg is None:
        return None, None, ()
    files = (cfg.hf_hub_filename,) if cfg.hf_hub_filename else ("model.safetensors", "pytorch_model.bin")
    return cfg.hf_hub_id, cfg.url or None, files


def _url_cache_file(url: str) -> Path:
    import os

    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url.split("?")[0])


def _create_pretrained(name: str, model_kwargs: dict[str, Any]) -> tuple[Any, Path | None, str | None]:
    """``timm.create_model(name, pretrained=True)`` under plipbench's offline rule; (model, file, commit)."""
    import timm

    from plipbench.models.fetch import is_offline
    from plipbench.models.hub import (
        cached_hub_file,
        first_line,
        hub_offline,
        is_hub_error,
        missing_error,
        snapshot_revision,
    )

    if not name.startswith("hf-hub:") and not timm.is_model(name):
        import difflib

        close = difflib.get_close_matches(name, timm.list_models(), n=5, cutoff=0.6)
        raise ConfigError(
            f"timm:{name}: unknown timm model" + (f"; did you mean: {', '.join(close)}" if close else "")
        )
    repo, url, files = _hub_source(name)
    if repo is None and url is None and not name.startswith("hf-hub:"):
        raise PlipbenchError(
            f"timm:{name}: timm has no pretrained weights for this name; pass weights=PATH or pretrained=false"
        )
    hint = (
        f"run `hf download {repo}` once with network"
        if repo
        else f"download {url} to {_url_cache_file(url or '')}"
    )
    if repo is None and url and is_offline() and not _url_cache_file(url).is_file():
        raise missing_error(
            f"timm:{name}",
            f"the weights file {url}",
            hint + " (or pass weights=PATH)",
            cache=_url_cache_file(url).parent,
        )
    try:
        with hub_offline():
            model = timm.create_model(name, pretrained=True, num_classes=0, **model_kwargs)
    except Exception as err:
        if is_hub_error(err) or isinstance(err, OSError):
            what = f"hub repository {repo} ({files[0]})" if repo else f"the weights file {url}"
            cache = None if repo else _url_cache_file(url or "").parent
            raise missing_error(
                f"timm:{name}", what, hint + " (or pass weights=PATH)", err, cache=cache
            ) from None
        if isinstance(err, RuntimeError):
            raise ConfigError(f"timm:{name}: {first_line(err)}") from None
        raise
    cached = cached_hub_file(repo, files) if repo else (_url_cache_file(url) if url else None)
    if cached is not None and not cached.is_file():
        cached = None
    return model, cached, snapshot_revision(cached) if repo else None


def build_timm(
    target: str | None,
    *,
    device: str = "cpu",
    weights: str | None = None,
    pretrained: bool | None = None,
    **model_kwargs: Any,
) -> Any:
    import timm
    import torch

    from plipbench.models.backbone import ModuleBackbone, count_parameters
    from plipbench.models.metadata import BackboneMetadata, ImageTransform
    from plipbench.models.weights import file_sha256

    if not target:
        raise ConfigError("timm: name a model, e.g. timm:resnet50.a1_in1k")
    skipped: list[str] = []
    revision = None
    if weights:
        path: Path | None = Path(weights).expanduser()
        if not path.is_file():
            raise PlipbenchError(f"timm:{target}: weights file not found: {path}")
        source = str(path)
    elif pretrained is False:
        path, source = None, "random init"
    else:
        model, path, revision = _create_pretrained(target, model_kwargs)
        source = f"timm pretrained {target}" + (f" ({path})" if path else "")
    if weights or pretrained is False:
        try:
            model = timm.create_model(target, pretrained=False, num_classes=0, **model_kwargs)
        except RuntimeError as err:
            raise ConfigError(f"timm:{target}: {err}") from None
        if path is not None:
            head = model.pretrained_cfg.get("classifier") or "fc"
            heads = tuple(head) if isinstance(head, (list, tuple)) else (head,)
            skipped = load_checked(model, path, source=f"timm:{target} {path}", skippable=heads)
    model.eval()
    cfg = timm.data.resolve_data_config({}, model=model)
    _, height, width = cfg["input_size"]
    transform = ImageTransform(
        size=(height, width), mean=tuple(cfg["mean"]), std=tuple(cfg["std"]),
        interpolation=cfg.get("interpolation", "bilinear"), resize="crop", crop_pct=float(cfg.get("crop_pct", 1.0)),
    )  # fmt: skip
    with torch.inference_mode():
        dim = int(model.num_features)
    meta = BackboneMetadata(
        name=f"timm:{target}", family="timm", modalities=("image",), embedding_dim=dim,
        num_parameters=count_parameters(model), source=source, revision=revision,
        checkpoint_sha256=file_sha256(path) if path else None,
        description=f"timm {target}, pooled features" + (f"; skipped head keys: {', '.join(skipped)}" if skipped else ""),
    )  # fmt: skip
    backbone = ModuleBackbone(model, meta, transform, device=device)
    backbone.skipped_keys = skipped
    return backbone

"""``hf-clip:ID_OR_DIR``: a ``transformers`` ``CLIPModel`` with its tokenizer and image processor.

``ID_OR_DIR`` is a local directory (``save_pretrained`` output) or a hub id
(``hf-clip:openai/clip-vit-base-patch16``, ``revision=`` pins a commit), loaded by
``from_pretrained`` itself, so the files come from and go to the Hugging Face hub cache
(``$HF_HUB_CACHE``, ``$HF_HOME/hub``). Offline (``PLIPBENCH_OFFLINE=1`` / ``HF_HUB_OFFLINE=1``) only
the cache is read, and a model that is not there is one line naming it and how to fetch it. The image transform is
read from the image processor config: ``crop_size`` (else ``size``), ``image_mean``/``image_std``
and ``resample``; CLIP resizes the shorter side and centre-crops. Embeddings are the projected
``get_image_features`` / ``get_text_features`` outputs (not normalised).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from plipbench.errors import ConfigError, PlipbenchError

_RESAMPLE = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic", 4: "box", 5: "hamming"}


def _features(out: Any) -> Any:
    """transformers 5 returns a model output with ``pooler_output`` (projected); 4.x returned a tensor."""
    return out if hasattr(out, "ndim") else out.pooler_output


def _size(value: Any, fallback: int) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    if isinstance(value, dict):
        if "height" in value and "width" in value:
            return int(value["height"]), int(value["width"])
        if "shortest_edge" in value:
            return int(value["shortest_edge"]), int(value["shortest_edge"])
    return fallback, fallback


def image_transform_from_processor(processor: Any, image_size: int) -> Any:
    from plipbench.models.metadata import CLIP_MEAN, CLIP_STD, ImageTransform

    size = _size(getattr(processor, "crop_size", None) or getattr(processor, "size", None), image_size)
    resample = getattr(processor, "resample", 3)
    resample = int(getattr(resample, "value", resample)) if resample is not None else 3
    return ImageTransform(
        size=size,
        mean=tuple(getattr(processor, "image_mean", None) or CLIP_MEAN),
        std=tuple(getattr(processor, "image_std", None) or CLIP_STD),
        interpolation=_RESAMPLE.get(resample, "bicubic"),
        resize="crop" if getattr(processor, "do_center_crop", True) else "stretch",
    )


def build_hf_clip(
    target: str | None,
    *,
    device: str = "cpu",
    weights: str | None = None,
    max_length: int = 77,
    revision: str | None = None,
) -> Any:
    from transformers import AutoImageProcessor, AutoTokenizer, CLIPModel

    from plipbench.models.backbone import ModuleBackbone, count_parameters
    from plipbench.models.hub import cached_hub_file, hub_offline, missing_error, snapshot_revision
    from plipbench.models.metadata import BackboneMetadata
    from plipbench.models.weights import weights_sha256

    location = weights or target
    if not location:
        raise ConfigError(
            "hf-clip: name a model, e.g. hf-clip:openai/clip-vit-base-patch16 or hf-clip:/path/to/dir"
        )
    local = Path(location).expanduser()
    if weights and not local.is_dir():
        raise PlipbenchError(f"hf-clip:{target}: weights directory not found: {local}")
    source = str(local) if local.is_dir() else location
    options: dict[str, Any] = {"revision": revision} if revision and not local.is_dir() else {}
    try:
        with hub_offline():
            model = CLIPModel.from_pretrained(source, **options)
            tokenizer = AutoTokenizer.from_pretrained(source, **options)
            processor = AutoImageProcessor.from_pretrained(source, **options)
    except (OSError, ValueError) as err:
        if local.is_dir():
            raise PlipbenchError(f"hf-clip:{location}: cannot load the directory {source}: "
                                 f"{str(err).splitlines()[0]}") from None  # fmt: skip
        raise missing_error(
            f"hf-clip:{location}", f"hub model {location}" + (f"@{revision}" if revision else ""),
            f"run `hf download {location}` once with network, or save it with CLIPModel/CLIPProcessor"
            f".save_pretrained(DIR) and use hf-clip:DIR", err,
        ) from None  # fmt: skip
    model.eval()
    limit = min(max_length, int(model.config.text_config.max_position_embeddings))

    def encode_image(m: Any, x: Any) -> Any:
        return _features(m.get_image_features(pixel_values=x))

    def encode_text(m: Any, texts: list[str]) -> Any:
        enc = tokenizer(texts, padding="max_length", truncation=True, max_length=limit, return_tensors="pt")
        enc = {
            k: v.to(next(m.parameters()).device)
            for k, v in enc.items()
            if k in ("input_ids", "attention_mask")
        }
        return _features(m.get_text_features(**enc))

    config_file = None if local.is_dir() else cached_hub_file(location, ("config.json",), revision)
    snapshot = local if local.is_dir() else (config_file.parent if config_file is not None else None)
    sha = weights_sha256(snapshot) if snapshot is not None and snapshot.is_dir() else None
    meta = BackboneMetadata(
        name=f"hf-clip:{location}", family="hf-clip", modalities=("image", "text"),
        embedding_dim=int(model.config.projection_dim), num_parameters=count_parameters(model),
        source=source if local.is_dir() else f"{source} ({snapshot})", revision=snapshot_revision(config_file) or getattr(model.config, "_commit_hash", None), checkpoint_sha256=sha,
        description="transformers CLIPModel, projected features",
    )  # fmt: skip
    transform = image_transform_from_processor(processor, int(model.config.vision_config.image_size))
    return ModuleBackbone(model, meta, transform, image_fn=encode_image, text_fn=encode_text, device=device)

"""``person-clip:ViT-B-16``: CLIP models fine-tuned for person retrieval, on open_clip (``plipbench[open_clip]``).

One family, one ``layout`` per release; the model is open_clip's CLIP (QuickGELU, like OpenAI's) built at
the release's input size (``force_image_size``), so the stored position table fits as it is:

- ``irra`` (IRRA, ``best.pth``): ``{'model': {'base_model.*', classifier, cross_attn, cross_modal_transformer,
  ln_pre_t, ln_pre_i, ln_post, mlm_head}, 'optimizer', 'scheduler', ...}`` at 384x128 (193 positions).
  ``base_model.`` is stripped, the IRRA heads are dropped. Image and text features: CLIP's projected
  CLS / EOT embeddings (512-d), cosine similarity.
- ``tbps`` (TBPS-CLIP, ``checkpoint_best.pth``): ``{'model': {'visual.*', 'encode_text.*', simclr_mlp,
  classifier, cross_*, ln_pre_*, ln_post, mlm_head}, 'optimizer', 'config'}`` at 224x224; ``encode_text.``
  becomes the text tower's top level, the heads are dropped.
- ``clip-reid`` (CLIP-ReID ViT, image ReID): a flat ``model.state_dict()`` with ``image_encoder.*``,
  ``text_encoder.*``, ``prompt_learner.*``, ``classifier*``, ``bottleneck*``. Only the image tower is kept
  (the saved text encoder has no token embedding); feature ``cat(ln_post(CLS), ln_post(CLS) @ proj)``
  (1280-d), CLIP-ReID's test feature with ``NECK_FEAT: before``. SIE checkpoints (``cv_embed``) need
  camera ids and are refused.
"""

from __future__ import annotations

from typing import Any, Literal

from plipbench.errors import ConfigError, PlipbenchError
from plipbench.models.zoo.checkpoint import (
    Conversion,
    load_converted,
    load_official_checkpoint,
    strip_prefix,
    unwrap,
)

Layout = Literal["irra", "tbps", "clip-reid"]
HEADS = ["classifier", "cross_attn", "cross_modal_transformer", "ln_pre_t", "ln_pre_i", "ln_post", "mlm_head"]
CONVERSIONS = {
    "irra": Conversion("IRRA", renames=[(r"base_model\.(.*)", r"\1")], drops=[rf"{h}\..*" for h in HEADS]),
    "tbps": Conversion(
        "TBPS-CLIP", renames=[(r"encode_text\.(.*)", r"\1")], drops=[rf"{h}\..*" for h in [*HEADS, "simclr_mlp"]]
    ),
    "clip-reid": Conversion(
        "CLIP-ReID",
        renames=[(r"image_encoder\.proj", "proj"), (r"image_encoder\.(.*)", r"visual.\1")],
        drops=[r"text_encoder\..*", r"prompt_learner\..*", r"classifier(_proj)?\..*", r"bottleneck(_proj)?\..*"],
    ),
}
DEFAULT_SIZE = {"irra": (384, 128), "tbps": (224, 224), "clip-reid": (256, 128)}


def _import_open_clip() -> Any:
    from plipbench.models.adapters.open_clip_models import _import_open_clip as load

    return load()


def _visual_with_separate_proj() -> Any:
    from torch import nn

    class ClipReidVisual(nn.Module):
        """open_clip's visual tower with ``proj`` held outside it, so both the 768-d and 512-d CLS are at hand."""

        def __init__(self, visual: nn.Module) -> None:
            super().__init__()
            self.proj = visual.proj
            visual.proj = None
            self.visual = visual

        def forward(self, images: Any) -> Any:
            import torch

            cls = self.visual(images)
            return torch.cat([cls, cls @ self.proj], dim=1)

    return ClipReidVisual


def describe_clip(state: dict[str, Any]) -> str:
    """Width and position count of a CLIP vision tower (positions say the input size and stride)."""
    conv = state.get("visual.conv1.weight")
    pos = state.get("visual.positional_embedding")
    if conv is None or pos is None:
        return "not a CLIP ViT (no visual.conv1.weight / visual.positional_embedding)"
    return f"a CLIP ViT of width {int(conv.shape[0])}, patch {int(conv.shape[-1])}, {int(pos.shape[0])} positions"


def build_person_clip(
    target: str | None,
    *,
    device: str = "cpu",
    weights: str | None = None,
    pretrained: bool | None = None,
    layout: Layout = "irra",
    image_size: tuple[int, int] | None = None,
    mean: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073),
    std: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711),
    interpolation: str = "bicubic",
) -> Any:
    import torch

    from plipbench.models.adapters._common import resolve_weights
    from plipbench.models.backbone import ModuleBackbone, count_parameters
    from plipbench.models.metadata import BackboneMetadata, ImageTransform
    from plipbench.models.weights import file_sha256

    if layout not in CONVERSIONS:
        raise ConfigError(f"person-clip: unknown layout {layout!r}; known: {', '.join(CONVERSIONS)}")
    name = target or "ViT-B-16"
    open_clip = _import_open_clip()
    if name not in open_clip.list_models():
        raise ConfigError(f"person-clip: unknown open_clip model {name!r}")
    height, width = (int(v) for v in (image_size or DEFAULT_SIZE[layout]))
    path = resolve_weights("person-clip", name, weights, pretrained)
    clip = open_clip.create_model(name, pretrained=None, force_quick_gelu=True, force_image_size=(height, width))
    image_only = layout == "clip-reid"
    model = _visual_with_separate_proj()(clip.visual) if image_only else clip
    dropped: list[str] = []
    if path is not None:
        state, _ = unwrap(load_official_checkpoint(path), path, keys=("model", "state_dict"))
        state = strip_prefix(state, "module.")
        if any(k.startswith("cv_embed") for k in state):
            raise PlipbenchError(f"person-clip: {path} is a CLIP-ReID SIE model (cv_embed): it needs camera ids")
        state, dropped = CONVERSIONS[layout].apply(state)
        found = describe_clip(state)
        built = describe_clip({k: v for k, v in clip.state_dict().items()} if not image_only else
                              {"visual." + k: v for k, v in model.visual.state_dict().items()})  # fmt: skip
        if found != built:
            raise PlipbenchError(f"person-clip:{name} ({layout}, {height}x{width}): {path} holds {found}; "
                                 f"this build is {built}")  # fmt: skip
        load_converted(model, state, source=f"person-clip:{name} {path}")
    model.eval()
    if image_only:
        dim = int(model.proj.shape[0] + model.proj.shape[1])
        modalities: tuple[str, ...] = ("image",)
        text_fn = None
    else:
        dim = int(clip.text_projection.shape[1])
        modalities = ("image", "text")
        tokenizer = open_clip.get_tokenizer(name)

        def text_fn(m: Any, texts: list[str]) -> torch.Tensor:
            return m.encode_text(tokenizer(texts).to(next(m.parameters()).device))

    meta = BackboneMetadata(
        name=f"person-clip:{name}", family="person-clip", modalities=modalities, embedding_dim=dim,
        num_parameters=count_parameters(model), source=str(path) if path else "random init",
        checkpoint_sha256=file_sha256(path) if path else None,
        description=f"{CONVERSIONS[layout].name} layout, open_clip {name} (QuickGELU) at {height}x{width}"
        + (f"; dropped {len(dropped)} checkpoint keys" if dropped else ""),
    )  # fmt: skip
    transform = ImageTransform(size=(height, width), mean=tuple(mean), std=tuple(std), interpolation=interpolation)
    image_fn = (lambda m, x: m(x)) if image_only else (lambda m, x: m.encode_image(x))
    backbone = ModuleBackbone(model, meta, transform, image_fn=image_fn, text_fn=text_fn, device=device)
    backbone.dropped_keys = dropped
    return backbone

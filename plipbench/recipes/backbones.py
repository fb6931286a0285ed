"""What a recipe needs to know about a backbone: its kind (CNN, ViT, Swin), modalities, size, training
data and normalisation, as a :class:`BackboneProfile`.

The kind is read from the module's parameters, not from a name: a class token (``cls_token``, CLIP's
``class_embedding``) means a ViT, a relative-position bias table without one means a Swin, and
convolutions without either mean a CNN (CLIP's and PLIP's ModifiedResNet included; its attention
pool is noted, since BoT uses the global average pool instead, downstream-recipes §9.2). A spec is built
with ``pretrained=False``: profiling never needs the weights.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from plipbench.errors import ConfigError
from plipbench.models.metadata import Modality
from plipbench.recipes.schema import Architecture

if TYPE_CHECKING:
    from torch import nn


class BackboneProfile(BaseModel):
    """The backbone facts a recipe is resolved against."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    spec: str = Field(description="what the backbone was created from")
    name: str
    architecture: Architecture
    modalities: tuple[Modality, ...]
    parameters: int = Field(ge=0)
    training_data: tuple[str, ...] = ()
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    input_size: tuple[int, int] = Field(description="the backbone's native (height, width)")
    patch_size: int | None = Field(None, description="ViT patch stride")
    attention_pool: bool = Field(False, description="a CLIP/PLIP ModifiedResNet attention pool")


def infer_architecture(module: nn.Module) -> tuple[Architecture, int | None, bool]:
    """``(architecture, patch_size, attention_pool)`` of ``module``; ConfigError when it is none of the three."""
    from torch import nn

    names = [name for name, _ in module.named_parameters()] + [name for name, _ in module.named_buffers()]
    convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
    if any(n.rsplit(".", 1)[-1] in ("cls_token", "class_embedding") for n in names):
        # the patch embedding: the first convolution whose stride equals its kernel
        patch = next((c.stride[0] for c in convs if c.kernel_size == c.stride and c.stride[0] > 1), None)
        return "vit", patch, False
    if any("relative_position_bias_table" in n for n in names):
        return "swin", None, False
    if any(c.kernel_size[0] > 1 for c in convs):
        return "cnn", None, any("attnpool" in n for n in names)
    raise ConfigError(
        f"cannot tell whether {type(module).__name__} is a CNN, a ViT or a Swin; pass architecture= explicitly"
    )


def build_without_weights(spec: str) -> Any:
    """``create_backbone(spec)`` with ``pretrained=False`` where its family takes it (timm, torchreid, open_clip,
    the zoo), as it is for ``random:``; a family that cannot be built without weights (plip, hf-clip) is
    built only when its weights are already here: profiling never downloads anything."""
    import inspect

    from plipbench.models import baselines
    from plipbench.models.registry import FAMILIES, create_backbone

    baseline = None
    if baselines.looks_like_baseline_file(spec) or baselines.find_baseline(spec) is not None:
        baseline = baselines.load_baseline(spec)
        family = baseline.family
    else:
        family = spec.partition(":")[0]
    if family == "random":
        return create_backbone(spec)
    if family in FAMILIES and "pretrained" in inspect.signature(FAMILIES.get(family)).parameters:
        return create_backbone(spec, pretrained=False)
    if baseline is not None and baseline.weights is not None and not baseline.weights_present():
        raise ConfigError(
            f"{spec}: a {family} backbone cannot be built without its weights, which are not here; "
            f"{baselines.weights_hint(baseline)}; or resolve for a spec of the same architecture"
            + (" (random:plip-rn50 for the PLIP RN50 release)" if family == "plip" else "")
        )
    return create_backbone(spec)


def profile_backbone(backbone: Any, *, architecture: Architecture | None = None) -> BackboneProfile:
    """The profile of ``backbone``: a :class:`BackboneProfile` (returned as is), a built
    :class:`~plipbench.models.backbone.Backbone`, or a spec string (built with ``pretrained=False``)."""
    if isinstance(backbone, BackboneProfile):
        return (
            backbone if architecture is None else backbone.model_copy(update={"architecture": architecture})
        )
    spec = (
        backbone
        if isinstance(backbone, str)
        else getattr(backbone, "metadata", None) and backbone.metadata.name
    )
    if isinstance(backbone, str):
        backbone = build_without_weights(backbone)
    meta, transform = backbone.metadata, backbone.image_transform
    found, patch, attention_pool = infer_architecture(backbone.module)
    return BackboneProfile(
        spec=str(spec), name=meta.name, architecture=architecture or found, modalities=meta.modalities,
        parameters=meta.num_parameters, training_data=meta.training_data, mean=transform.mean, std=transform.std,
        input_size=transform.size, patch_size=patch, attention_pool=attention_pool,
    )  # fmt: skip

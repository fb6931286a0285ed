"""``torchreid:NAME``: a torchreid (deep-person-reid) model; in eval mode it returns the ReID feature.

Built with ``torchreid.models.build_model(name, num_classes=1, pretrained=False)`` (never
downloads); weights from a local file (``weights=PATH``: a torchreid checkpoint dict with
``state_dict`` or a plain state dict, ``module.`` prefixes stripped). The ``classifier`` keys
(the training identities) are reported and skipped, every other key must match. Input is
256x128, ImageNet mean/std, bilinear, stretched (torchreid's test transform).
"""

from __future__ import annotations

from typing import Any

from plipbench.errors import ConfigError
from plipbench.models.adapters._common import load_checked, resolve_weights


def build_torchreid(
    target: str | None,
    *,
    device: str = "cpu",
    weights: str | None = None,
    pretrained: bool | None = None,
    height: int = 256,
    width: int = 128,
) -> Any:
    import warnings

    import torch

    from plipbench.models.backbone import ModuleBackbone, count_parameters
    from plipbench.models.metadata import IMAGENET_MEAN, IMAGENET_STD, BackboneMetadata, ImageTransform
    from plipbench.models.weights import file_sha256

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchreid warns about its optional Cython evaluation on import
        from torchreid import models as reid_models

    if not target:
        raise ConfigError("torchreid: name a model, e.g. torchreid:osnet_x1_0")
    names = reid_models.__model_factory
    if target not in names:
        raise ConfigError(f"torchreid: unknown model {target!r}; known: {', '.join(sorted(names))}")
    path = resolve_weights("torchreid", target, weights, pretrained)
    model = reid_models.build_model(target, num_classes=1, loss="softmax", pretrained=False)
    skipped: list[str] = []
    if path is not None:
        skipped = load_checked(model, path, source=f"torchreid:{target} {path}", skippable=("classifier",))
    model.eval()
    with torch.inference_mode():
        dim = int(model(torch.zeros(1, 3, height, width)).shape[1])
    meta = BackboneMetadata(
        name=f"torchreid:{target}", family="torchreid", modalities=("image",), embedding_dim=dim,
        num_parameters=count_parameters(model), source=str(path) if path else "random init",
        checkpoint_sha256=file_sha256(path) if path else None,
        description=f"torchreid {target}, eval-mode feature"
        + (f"; skipped head keys: {', '.join(skipped)}" if skipped else ""),
    )  # fmt: skip
    transform = ImageTransform(
        size=(height, width), mean=IMAGENET_MEAN, std=IMAGENET_STD, interpolation="bilinear"
    )
    backbone = ModuleBackbone(model, meta, transform, device=device)
    backbone.skipped_keys = skipped
    return backbone

"""``random:ARCH``: any architecture with seeded random weights, the floor of every leaderboard.

``random:plip-mini`` / ``random:plip-rn50`` (PLIP named configs; the tokenizer is a WordPiece
trained on the built-in pedestrian sentences), ``random:timm/resnet18``,
``random:torchreid/osnet_x0_25``. The same ``seed`` gives the same weights.
"""

from __future__ import annotations

import tempfile
from typing import Any

from plipbench.errors import ConfigError


def build_random(target: str | None, *, device: str = "cpu", seed: int = 0, **kwargs: Any) -> Any:
    import torch

    if not target:
        raise ConfigError("random: name an architecture, e.g. random:plip-mini or random:timm/resnet18")
    family, sep, arch = target.partition("/")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if not sep:
            backbone = _random_plip(target, device=device, **kwargs)
        elif family == "timm":
            from plipbench.models.adapters.timm_models import build_timm

            backbone = build_timm(arch, device=device, pretrained=False, **kwargs)
        elif family == "torchreid":
            from plipbench.models.adapters.torchreid_models import build_torchreid

            backbone = build_torchreid(arch, device=device, pretrained=False, **kwargs)
        else:
            raise ConfigError(
                f"random: unknown architecture {target!r} (use plip-mini, plip-rn50, timm/NAME, torchreid/NAME)"
            )
    backbone.metadata = backbone.metadata.model_copy(
        update={"name": f"random:{target}", "family": "random", "source": f"random init, seed {seed}",
                "checkpoint_sha256": None, "training_data": ()}
    )  # fmt: skip
    backbone._fingerprint = None
    return backbone


def _random_plip(config_name: str, *, device: str, tokenizer: str | None = None) -> Any:
    from plipbench.models.plip.backbone import PlipBackbone
    from plipbench.models.plip.model import PlipModel, named_config
    from plipbench.models.plip.tokenizer import PEDESTRIAN_SENTENCES, load_tokenizer, train_tokenizer_dir

    config = named_config(config_name)
    if tokenizer is None:
        with tempfile.TemporaryDirectory() as tmp:
            tok = load_tokenizer(train_tokenizer_dir(PEDESTRIAN_SENTENCES, f"{tmp}/tokenizer"))
    else:
        tok = load_tokenizer(tokenizer)
    model = PlipModel(config, vocab_size=len(tok))
    return PlipBackbone(model, tok, name=f"random:{config_name}", source="random init", device=device)

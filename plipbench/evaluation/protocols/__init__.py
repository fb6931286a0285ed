"""Evaluation protocols: one function per (task kind, base protocol), looked up lazily.

Every protocol takes a :class:`~plipbench.evaluation.protocols.base.ProtocolContext` and returns a
:class:`~plipbench.evaluation.protocols.base.ProtocolOutput`. Model selection never uses a test
split; the split used is returned in ``selection_split``.
"""

from __future__ import annotations

import importlib
from typing import Any

PROTOCOLS: dict[tuple[str, str], str] = {
    ("text-reid", "zero-shot"): "plipbench.evaluation.protocols.text_reid:zero_shot",
    ("text-reid", "linear-probe"): "plipbench.evaluation.protocols.text_reid:linear_probe",
    ("text-reid", "fine-tune"): "plipbench.evaluation.protocols.text_reid:fine_tune",
    ("image-reid", "zero-shot"): "plipbench.evaluation.protocols.image_reid:zero_shot",
    ("image-reid", "fine-tune"): "plipbench.evaluation.protocols.image_reid:fine_tune",
    ("attributes", "linear-probe"): "plipbench.evaluation.protocols.attributes:linear_probe",
    ("attributes", "zero-shot"): "plipbench.evaluation.protocols.attributes:zero_shot",
    ("attributes", "fine-tune"): "plipbench.evaluation.protocols.attributes:fine_tune",
    ("parsing", "linear-probe"): "plipbench.evaluation.protocols.parsing:linear_probe",
    ("parsing", "fine-tune"): "plipbench.evaluation.protocols.parsing_fine_tune:fine_tune",
    ("person-search", "gt-boxes"): "plipbench.evaluation.protocols.person_search:gt_boxes",
}


def get_protocol(kind: str, base: str) -> Any:
    target = PROTOCOLS.get((kind, base))
    if target is None:
        from plipbench.errors import ConfigError

        raise ConfigError(f"no protocol {base!r} for task kind {kind!r}; known: {sorted(PROTOCOLS)}")
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)

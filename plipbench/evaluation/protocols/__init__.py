"""Evaluation protocols: one function per (task kind, base protocol), looked up lazily.

Every protocol takes a :class:`~plipbench.evaluation.protocols.base.ProtocolContext` and returns a
:class:`~plipbench.evaluation.protocols.base.ProtocolOutput`. Model selection never uses a test
split; the split used is returned in ``selection_split``. Which protocols exist, their options and
defaults: :mod:`plipbench.evaluation.protocols.registry` and :mod:`~plipbench.evaluation.protocols.options`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PROTOCOLS", "ProtocolEntry", "get_protocol", "protocol_entry"]


def __getattr__(name: str) -> Any:
    # lazy, so that ``python -m plipbench.evaluation.protocols.options`` runs its module once
    if name in __all__:
        from plipbench.evaluation.protocols import registry

        return getattr(registry, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Stochastic depth (drop path) on a built backbone, as ``timm.create_model(..., drop_path_rate=r)`` sets it.

timm gives block ``i`` of ``n`` (counted over every stage, for a Swin) the rate ``linspace(0, r, n)[i]``
(``timm.layers.calculate_drop_path_rates``), a ``DropPath`` on both residual branches (``drop_path1`` after
attention, ``drop_path2`` after the MLP; ``drop_path`` in older blocks), ``Identity`` at rate 0. This does the
same after the model is built, so that a recipe's ``drop_path`` (TransReID 0.1) applies to a backbone created
without it: every module with those attributes is a block, in module order. A backbone whose blocks have no
drop-path slot (a CNN, open_clip's and transformers' CLIP blocks, the zoo's SOLIDER Swin) is left as it is and
the reason is returned. The module is edited in place: apply it to a training copy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from plipbench.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

SLOTS = (("drop_path1", "drop_path2"), ("drop_path",))


def _slots(module: nn.Module) -> tuple[str, ...] | None:
    import torch
    from timm.layers import DropPath

    for names in SLOTS:
        if all(isinstance(getattr(module, n, None), (DropPath, torch.nn.Identity)) for n in names):
            return names
    return None


def set_drop_path(module: nn.Module, rate: float) -> dict[str, Any]:
    """Set timm's linearly increasing drop-path rates (0 at the first block, ``rate`` at the last) on the blocks
    of ``module``. Returns ``{"rate", "applied", "blocks", "rates"}`` (the per-block rates), or ``applied:
    false`` with the ``reason`` when ``module`` has no block with a drop-path slot."""
    import torch
    from timm.layers import DropPath, calculate_drop_path_rates

    if not 0.0 <= float(rate) < 1.0:
        raise ConfigError(f"drop_path must be in [0, 1), got {rate!r}")
    blocks = [(name, sub, slots) for name, sub in module.named_modules() if (slots := _slots(sub)) is not None]
    if not blocks:
        return {"rate": float(rate), "applied": False,
                "reason": f"{type(module).__name__} has no block with a timm drop-path slot "
                          "(drop_path1/drop_path2 or drop_path)"}
    rates = calculate_drop_path_rates(float(rate), len(blocks))
    for (_, block, slots), block_rate in zip(blocks, rates, strict=True):
        for slot in slots:
            setattr(block, slot, DropPath(block_rate) if block_rate > 0.0 else torch.nn.Identity())
    return {"rate": float(rate), "applied": True, "blocks": len(blocks),
            "rates": [round(float(r), 6) for r in rates]}

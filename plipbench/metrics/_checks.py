"""Input validation shared by the metric functions.

Every problem with user input raises :class:`MetricInputError`, which is both a ``ValueError`` (what
the metric API promises) and a :class:`plipbench.errors.ConfigError` (so the CLI prints it as one line).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from plipbench.errors import ConfigError


class MetricInputError(ConfigError, ValueError):
    """A metric argument has the wrong shape, type, value range or option value."""


def check_option(name: str, value: Any, allowed: Iterable[Any]) -> None:
    allowed = tuple(allowed)
    if value not in allowed:
        raise MetricInputError(f"{name}: unknown value {value!r}; expected one of {', '.join(map(repr, allowed))}")


def as_label_vector(name: str, values: Any) -> np.ndarray:
    """Return a 1-D int64 array of identity / camera labels, or raise naming ``name``."""
    if values is None:
        raise MetricInputError(f"{name}: required, got None")
    if hasattr(values, "detach"):  # torch tensor
        values = values.detach().cpu().numpy()
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise MetricInputError(f"{name}: expected a 1-D array of integer labels, got shape {arr.shape}")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise MetricInputError(f"{name}: expected integer labels, got non-integer or non-finite floats")
    elif arr.dtype.kind not in "iub":
        raise MetricInputError(f"{name}: expected integer labels, got dtype {arr.dtype}")
    return arr.astype(np.int64)


def check_length(name: str, arr: np.ndarray, expected: int, what: str) -> None:
    if len(arr) != expected:
        raise MetricInputError(f"{name}: length {len(arr)} does not match {what} ({expected})")


def as_float_matrix(name: str, values: Any):
    """Return a 2-D floating torch tensor (float32/float64 kept, other types promoted to float32).

    Shares memory with a NumPy input where possible; callers must not modify it in place.
    """
    import torch

    if values is None:
        raise MetricInputError(f"{name}: required, got None")
    t = values.detach().cpu() if isinstance(values, torch.Tensor) else torch.as_tensor(np.asarray(values))
    if t.ndim != 2:
        raise MetricInputError(f"{name}: expected a 2-D array, got shape {tuple(t.shape)}")
    if t.dtype not in (torch.float32, torch.float64):
        if t.dtype == torch.bool or t.is_complex():
            raise MetricInputError(f"{name}: expected real numbers, got dtype {t.dtype}")
        t = t.to(torch.float32)
    if t.shape[0] == 0 or t.shape[1] == 0:
        raise MetricInputError(f"{name}: empty array of shape {tuple(t.shape)}")
    return t


def check_finite(name: str, t) -> None:
    import torch

    if not bool(torch.isfinite(t).all()):
        raise MetricInputError(f"{name}: contains NaN or infinite values")


def check_positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise MetricInputError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return int(value)

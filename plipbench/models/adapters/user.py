"""A user's own factory: ``python:package.module:function`` or ``path/to/file.py:function``.

The function is called as ``function(device=..., **overrides)`` (keywords it does not accept
are an error) and returns what :func:`plipbench.models.registry.as_backbone` accepts: a
``Backbone``, or ``(nn.Module, metadata[, image_transform])``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any

from plipbench.errors import ConfigError, PlipbenchError
from plipbench.models.registry import import_object


def _call(factory: Any, spec: str, device: str, overrides: dict[str, Any]) -> Any:
    if not callable(factory):
        raise ConfigError(f"{spec}: {factory!r} is not callable")
    params = inspect.signature(factory).parameters
    takes_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kwargs = dict(overrides)
    if "device" in params or takes_kwargs:
        kwargs["device"] = device
    unknown = [k for k in kwargs if k not in params and not takes_kwargs]
    if unknown:
        raise ConfigError(f"{spec}: the factory does not accept the argument(s) {', '.join(unknown)}")
    return factory(**kwargs)


def build_from_module(target: str | None, *, device: str = "cpu", **overrides: Any) -> Any:
    if not target or ":" not in target:
        raise ConfigError(f"python: expected python:package.module:function, got python:{target}")
    return _call(import_object(target), f"python:{target}", device, overrides)


def build_from_file(spec: str, *, device: str = "cpu", **overrides: Any) -> Any:
    file_part, _, func = spec.rpartition(":")
    path = Path(file_part).expanduser().resolve()
    if not path.is_file():
        raise ConfigError(f"{spec}: file {path} not found")
    module_name = f"plipbench_user_{hashlib.sha256(str(path).encode()).hexdigest()[:12]}"
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    if module_spec is None or module_spec.loader is None:  # pragma: no cover
        raise ConfigError(f"{spec}: cannot import {path}")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module
    try:
        module_spec.loader.exec_module(module)
    except Exception as err:
        sys.modules.pop(module_name, None)
        raise PlipbenchError(f"{spec}: importing {path} failed: {type(err).__name__}: {err}") from err
    if not hasattr(module, func):
        raise ConfigError(f"{spec}: {path} defines no function {func!r}")
    return _call(getattr(module, func), spec, device, overrides)

"""Errors that the CLI turns into one line and exit code 2 (no traceback).

Raise these for bad *input* (a missing file, a malformed annotation, a wrong argument): the
message must name the file or argument and say what was expected. Programming errors stay
ordinary exceptions so that they keep their traceback.
"""

from __future__ import annotations

from pathlib import Path


class PlipbenchError(Exception):
    """Base class for user-facing errors (bad input, missing data, invalid configuration)."""


class DataError(PlipbenchError):
    """A dataset file is missing, unreadable or not in the expected format."""

    def __init__(self, path: str | Path | None, problem: str) -> None:
        self.path = Path(path) if path is not None else None
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path is not None else problem)


class ConfigError(PlipbenchError):
    """A configuration, spec or command-line value is invalid."""


def validate_model(model: type, tree: object, source: str) -> object:
    """``model.model_validate(tree)`` (pydantic), turning validation errors into one ConfigError
    that names ``source`` and every offending key: ``unknown key 'a.b'`` or ``a.b: <problem> (got X)``."""
    from pydantic import ValidationError

    try:
        return model.model_validate(tree)  # type: ignore[attr-defined]
    except ValidationError as err:
        problems = []
        for e in err.errors():
            where = ".".join(str(p) for p in e["loc"]) or "(top level)"
            if e["type"] == "extra_forbidden":
                problems.append(f"unknown key {where!r}")
            else:
                problems.append(f"{where}: {e['msg']} (got {e.get('input')!r})")
        raise ConfigError(f"{source}: " + "; ".join(problems)) from None

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

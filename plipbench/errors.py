"""Errors that the CLI turns into one line and exit code 2 (no traceback).

Raise these for bad *input* (a missing file, a malformed annotation, a wrong argument): the
message must name the file or argument and say what was expected. Programming errors stay
ordinary exceptions so that they keep their traceback.
"""

from __future__ import annotations

import errno as _errno
from pathlib import Path


class PlipbenchError(Exception):
    """Base class for user-facing errors (bad input, missing data, invalid configuration)."""


class DataError(PlipbenchError):
    """A dataset file is missing, unreadable or not in the expected format."""

    def __init__(self, path: str | Path | None, problem: str) -> None:
        self.path = Path(path) if path is not None else None
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path is not None else problem)

    def __reduce__(self) -> tuple:
        # picklable with both arguments, so an error raised in a DataLoader worker reaches the parent as itself
        return type(self), (self.path, self.problem)


class ConfigError(PlipbenchError):
    """A configuration, spec or command-line value is invalid."""


def validate_model(model: type, tree: object, source: str) -> object:
    """``model.model_validate(tree)`` (pydantic), turning validation errors into one ConfigError
    that names ``source`` and every offending key: ``unknown key 'a.b'`` or ``a.b: <problem> (got X)``."""
    from pydantic import ValidationError

    try:
        return model.model_validate(tree)  # type: ignore[attr-defined]
    except ValidationError as err:
        raise ConfigError(f"{source}: {validation_summary(err)}") from None


def validation_summary(err: object) -> str:
    """A pydantic ``ValidationError`` as one line: each field error ``a.b: <problem> (got X)`` (or
    ``unknown key 'a.b'``), separated by ``'; '``; long inputs are shortened, newlines collapsed."""
    problems = []
    for e in err.errors():  # type: ignore[attr-defined]
        where = ".".join(str(p) for p in e["loc"]) or "(top level)"
        if e["type"] == "extra_forbidden":
            problems.append(f"unknown key {where!r}")
        else:
            msg = one_line(e["msg"]).removeprefix("Value error, ")
            # a whole-file check (model validator) has the whole file as input: no point repeating it
            got = f" (got {one_line(repr(e.get('input')), 80)})" if e["loc"] else ""
            problems.append(f"{where}: {msg}{got}")
    return "; ".join(problems)


def yaml_error_line(err: Exception) -> str:
    """A PyYAML error as one line: ``line L, column C: <problem> (<context> at line L', column C')``."""
    problem = getattr(err, "problem", None)
    mark = getattr(err, "problem_mark", None)
    if problem is None:
        return one_line(str(err))
    text = f"line {mark.line + 1}, column {mark.column + 1}: {problem}" if mark is not None else str(problem)
    context, context_mark = getattr(err, "context", None), getattr(err, "context_mark", None)
    if context:
        at = f" at line {context_mark.line + 1}, column {context_mark.column + 1}" if context_mark is not None else ""
        text += f" ({context}{at})"
    return one_line(text)


class OutputError(PlipbenchError):
    """An output (results folder, cache, checkpoint, ``--out`` file) cannot be written: read-only, not a
    folder, no permission, disk full. ``errno`` is the underlying OSError's, when there is one."""

    def __init__(self, message: str, errno: int | None = None) -> None:
        self.errno = errno
        super().__init__(message)


_WRITE_PROBLEMS = {
    _errno.ENOSPC: "no space left on device (disk full)",
    _errno.EDQUOT: "disk quota exceeded",
    _errno.EROFS: "read-only file system",
    _errno.EACCES: "permission denied",
    _errno.EPERM: "operation not permitted",
    _errno.ENOTDIR: "a path component is a file, not a folder",
    _errno.EISDIR: "is a folder, not a file",
}
#: OSErrors the CLI reports as one line (exit 2) wherever they come from: they are about the machine, not a bug
ONE_LINE_ERRNOS = frozenset({_errno.ENOSPC, _errno.EDQUOT, _errno.EROFS, _errno.EACCES, _errno.EPERM})


def describe_os_error(err: OSError) -> str:
    """A short reason for an OSError: ``no space left on device (disk full)`` rather than ``[Errno 28] ...``."""
    reason = _WRITE_PROBLEMS.get(err.errno) if err.errno is not None else None
    return reason or one_line(err.strerror or str(err) or type(err).__name__)


def output_error(err: OSError, path: str | Path, action: str = "cannot write") -> OutputError:
    """An :class:`OutputError` ``"<action> <path>: <reason>"`` for an OSError raised while writing ``path``."""
    return OutputError(f"{action} {path}: {describe_os_error(err)}", errno=err.errno)


def os_error_line(err: OSError) -> str:
    """One line for an OSError that reached the CLI entry point (names the file when the error does)."""
    where = err.filename if err.filename is not None else None
    return f"{where}: {describe_os_error(err)}" if where is not None else describe_os_error(err)


def one_line(text: str, limit: int = 500) -> str:
    """``text`` with every run of whitespace (newlines included) collapsed to one space, at most ``limit`` chars."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"

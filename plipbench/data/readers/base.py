"""Shared pieces of the dataset readers: typed reader metadata, root lookup, safe paths, JSON and .mat loading.

Every reader follows the same rules:

* the dataset root is looked up the way torchreid *and* fast-reid expect it (the folder itself, or the
  dataset folder under a base data directory, e.g. ``<base>/market1501/Market-1501-v15.09.15`` (torchreid)
  or ``<base>/Market-1501-v15.09.15`` (fast-reid)); see :func:`locate_root`;
* a path read from an annotation file must stay inside the folder it is relative to, after resolving
  ``..`` and symbolic links (:class:`SafeJoiner`); an annotation cannot make a reader point at
  ``/etc/passwd``. A folder that is itself a symbolic link (``imgs -> /mnt/big/imgs``) is fine: paths are
  checked against the *resolved* folder they are relative to;
* file and folder names, list files and annotation strings must be UTF-8: an undecodable list file is
  refused naming the file and line (:func:`text_lines`), an image name that is not UTF-8 (bytes a file
  system allows but no result file, cache key or terminal can carry) is refused at read time naming its
  folder, with the name's bytes escaped (:func:`require_utf8`);
* identities must fit a signed 64-bit integer (the dtype every consumer stores them in), and be
  non-negative where the layout says so (:func:`as_pid`);
* bad input raises :class:`plipbench.errors.DataError` naming the file and what was expected.

scipy is imported only inside :func:`load_mat`, so importing the readers stays light.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plipbench.data.records import PersonDataset
from plipbench.errors import DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
INT64_MAX = 2**63 - 1

SplitSizes = dict[str, dict[str, int]]


@dataclass(frozen=True)
class ReaderInfo:
    """Typed metadata of one dataset layout; the registry in :mod:`plipbench.data.readers` is built from it.

    ``split_sizes`` are the official sizes (reference brief) for the default options, as
    ``{split: {"images": n, "identities": n, "captions": n}}`` with only the known keys; ``sizes_for``
    gives them for other option values (e.g. MSMT17 with ``list_val`` in train). ``options`` maps every
    accepted reader option to its default. ``marker`` says whether a folder holds this layout (used to
    find the root). ``required_splits`` are the splits any copy (real or synthetic) must have.
    """

    name: str
    description: str
    reader: Callable[..., PersonDataset]
    tree: str
    split_sizes: SplitSizes
    folder_names: tuple[str, ...]
    marker: Callable[[Path], bool]
    kind: str  # "reid", "text", "attributes", "parsing" or "person-search"
    required_splits: tuple[str, ...]
    options: Mapping[str, Any] = field(default_factory=dict)
    sizes_for: Callable[[Mapping[str, Any]], SplitSizes] | None = None
    attribute_count: int | None = None  # official number of evaluated attributes, when data check compares it

    def expected_sizes(self, options: Mapping[str, Any] | None = None) -> SplitSizes:
        """Official split sizes for the given (effective) reader options."""
        if self.sizes_for is not None:
            return self.sizes_for(dict(options or {}))
        return self.split_sizes


def locate_root(
    layout: str, root: str | Path, candidates: Sequence[str], marker: Callable[[Path], bool], expected: str
) -> Path:
    """The dataset folder for ``root``: ``root`` itself or ``root/<candidate>`` (first match wins).

    Raises :class:`DataError` when ``root`` does not exist or holds no ``layout`` dataset; the message
    says what was looked for (``expected``) and where.
    """
    base = Path(root).expanduser()
    require_utf8(None, str(base), "dataset folder")
    if not base.exists():
        raise DataError(base, f"{layout} dataset root does not exist")
    if not base.is_dir():
        raise DataError(base, f"{layout} dataset root is not a directory")
    found = search_root(base, candidates, marker)
    if found is None:
        where = ", ".join(candidates)
        raise DataError(base, f"no {layout} dataset found: expected {expected} in this folder or under one of: {where}")
    return found


def search_root(base: Path, candidates: Sequence[str], marker: Callable[[Path], bool]) -> Path | None:
    """``base`` or the first ``base/<candidate>`` for which ``marker`` holds, else ``None``."""
    for rel in ("", *candidates):
        path = base / rel if rel else base
        try:
            if path.is_dir() and marker(path):
                return path
        except OSError:
            continue
    return None


class SafeJoiner:
    """Join annotation paths onto a base folder, refusing any path that leaves it.

    ``join(rel)`` returns ``base / rel`` (lexically normalised, not resolved, so the user's paths are
    kept) after checking that ``rel`` is relative, has no ``..`` that climbs out, and that the resolved
    file (following symbolic links) lies under the resolved base folder. Parent folders are resolved
    once and cached, so the check costs about one ``lstat`` per file.
    """

    def __init__(self, base: Path, annotation: Path) -> None:
        self.base = base
        self.annotation = annotation
        self._base_str = os.fspath(base)
        self._real_base = os.path.realpath(base)
        self._dir_ok: dict[str, bool] = {}

    def _inside(self, real: str) -> bool:
        return real == self._real_base or real.startswith(self._real_base.rstrip(os.sep) + os.sep)

    def join(self, rel: str, where: str) -> Path:
        """``base / rel``; ``where`` (e.g. ``"record 12"``) names the entry in the error message."""
        if not isinstance(rel, str) or not rel:
            raise DataError(self.annotation, f"{where}: image path must be a non-empty string, got {rel!r}")
        require_utf8(self.annotation, rel, f"{where}: image path")
        text = rel.replace("\\", "/")
        if text.startswith("/") or os.path.isabs(text) or (len(text) > 1 and text[1] == ":"):
            raise DataError(self.annotation, f"{where}: image path {rel!r} is absolute; expected a path "
                                             f"relative to {self.base}")
        norm = os.path.normpath(text)
        if norm == ".." or norm.startswith("../") or norm.startswith(".." + os.sep):
            raise DataError(self.annotation, f"{where}: image path {rel!r} escapes the dataset folder {self.base}")
        full = os.path.join(self._base_str, norm)
        parent = os.path.dirname(norm)
        ok = self._dir_ok.get(parent)
        if ok is None:
            ok = self._inside(os.path.realpath(os.path.join(self._base_str, parent))) if parent else True
            self._dir_ok[parent] = ok
        if not ok or (os.path.islink(full) and not self._inside(os.path.realpath(full))):
            raise DataError(self.annotation, f"{where}: image path {rel!r} resolves (through a symbolic link) "
                                             f"outside the dataset folder {self.base}")
        return Path(full)


def escaped(text: str) -> str:
    """``text`` with undecodable bytes (surrogate escapes from the file system) and lone surrogates
    shown as ``\\xff`` / ``\\udcff``, so that it can be printed and written anywhere."""
    if not _bad_utf8(text):
        return text
    try:  # bytes the file system gave back as surrogate escapes: show the bytes
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # other lone surrogates (e.g. "\\ud800" in a JSON string)
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _bad_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def require_utf8(path: Path | None, text: str, what: str) -> str:
    """``text`` if it is valid UTF-8, else a :class:`DataError` at ``path`` showing it escaped.

    A file name with bytes that are not UTF-8 comes back from ``os.listdir`` with surrogate escapes; it
    cannot be encoded into a result file, a cache key or a terminal, so it is refused here, at read time.
    """
    if _bad_utf8(text):
        raise DataError(path, f"{what} '{escaped(text)}' is not valid UTF-8; rename it (plipbench needs UTF-8 "
                              f"file names and annotations)")
    return text


def text_lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` of a UTF-8 text file; undecodable bytes are a :class:`DataError` naming the line."""
    try:
        with open(path, "rb") as fh:
            for lineno, raw in enumerate(fh, 1):
                try:
                    yield lineno, raw.decode("utf-8")
                except UnicodeDecodeError as err:
                    raise DataError(path, f"line {lineno}: not UTF-8 text (byte {err.start + 1} of the line, "
                                          f"{raw[err.start:err.start + 1]!r}); expected a UTF-8 text file") from None
    except FileNotFoundError:
        raise DataError(path, "file not found") from None


def require_file(path: Path, what: str) -> Path:
    """``path`` if it is a file, else :class:`DataError` saying which file was expected."""
    if not path.is_file():
        raise DataError(path, f"{what} not found")
    return path


def require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise DataError(path, f"{what} folder not found")
    return path


def first_existing(paths: Sequence[Path]) -> Path | None:
    for p in paths:
        if p.is_file():
            return p
    return None


def load_json(path: Path) -> Any:
    """Parse a JSON annotation file; a syntax error names the line, column and character offset."""
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise DataError(path, "annotation file not found") from None
    except json.JSONDecodeError as err:
        raise DataError(path, f"malformed JSON at line {err.lineno} column {err.colno} (char {err.pos}): "
                              f"{err.msg}") from None
    except UnicodeDecodeError as err:
        raise DataError(path, f"not UTF-8 text (byte {err.start}): {err.reason}") from None


def json_records(path: Path, data: Any) -> list[dict]:
    """Check that a loaded annotation is a list of JSON objects."""
    if not isinstance(data, list):
        raise DataError(path, f"expected a JSON list of records, got {type(data).__name__}")
    for i, rec in enumerate(data):
        if not isinstance(rec, dict):
            raise DataError(path, f"record {i}: expected a JSON object, got {type(rec).__name__}")
    return data


def require_keys(path: Path, index: int, record: Mapping[str, Any], keys: Sequence[str]) -> None:
    missing = [k for k in keys if k not in record]
    if missing:
        raise DataError(path, f"record {index}: missing key(s) {', '.join(repr(k) for k in missing)} "
                              f"(expected keys: {', '.join(keys)})")


def as_int(path: Path, where: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise DataError(path, f"{where}: expected an integer, got {value!r}")
    try:
        return int(value)
    except ValueError:
        raise DataError(path, f"{where}: expected an integer, got {value!r}") from None


def as_pid(path: Path, where: str, value: Any, minimum: int = 0) -> int:
    """An identity label: an integer in ``minimum .. 2**63 - 1`` (it must fit the int64 tensors it ends in)."""
    pid = as_int(path, where, value)
    check_pid(path, where, pid, minimum)
    return pid


def check_pid(path: Path, where: str, pid: int, minimum: int = 0) -> None:
    if not minimum <= pid <= INT64_MAX:
        raise DataError(path, f"{where}: identity {pid} is out of range; expected an integer in "
                              f"{minimum}..{INT64_MAX} (it must fit a signed 64-bit integer)")


def as_strings(path: Path, where: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise DataError(path, f"{where}: expected a list of strings, got {type(value).__name__}")
    for s in value:
        require_utf8(path, s, f"{where}: string")
    return tuple(value)


# --------------------------------------------------------------------------------------------------
# MATLAB files (scipy is imported lazily)


def load_mat(path: Path) -> dict[str, Any]:
    """``scipy.io.loadmat(path)``; v7.3 (HDF5) and corrupt files become :class:`DataError`."""
    if not path.is_file():
        raise DataError(path, "annotation .mat file not found")
    import scipy.io

    try:
        return scipy.io.loadmat(str(path))
    except NotImplementedError:
        raise DataError(path, "MATLAB v7.3 (HDF5) file; expected a v5 .mat readable by scipy.io.loadmat") from None
    except (ValueError, TypeError, OSError) as err:
        raise DataError(path, f"not a readable MATLAB .mat file ({err})") from None


def mat_require(path: Path, mat: Mapping[str, Any], keys: Sequence[str]) -> None:
    missing = [k for k in keys if k not in mat]
    if missing:
        found = sorted(k for k in mat if not k.startswith("__"))
        raise DataError(path, f"missing field(s) {', '.join(missing)}; found {', '.join(found) or 'none'}")


def unwrap(x: Any) -> Any:
    """Strip the 1x1 object / struct wrappers scipy puts around MATLAB cells and structs."""
    import numpy as np

    while isinstance(x, np.ndarray) and x.size == 1 and (x.dtype == object or x.dtype.names):
        x = x.reshape(-1)[0]
    return x


def mat_string(x: Any) -> str:
    """One MATLAB string (a char array possibly wrapped in cells) as ``str``."""
    import numpy as np

    x = unwrap(x)
    if isinstance(x, np.ndarray):
        if x.size == 0:
            return ""
        if x.dtype.kind == "U":
            return "".join(str(s) for s in x.reshape(-1))
        if x.dtype == object and x.size == 1:
            return mat_string(x.reshape(-1)[0])
        raise ValueError(f"not a string: array of shape {x.shape} and dtype {x.dtype}")
    return str(x)


def mat_strings(path: Path, name: str, x: Any) -> list[str]:
    """A MATLAB cell array (or char matrix) of strings as a list of ``str``."""
    import numpy as np

    x = np.asarray(x)
    try:
        if x.dtype.kind == "U":
            return [str(s).rstrip() for s in x.reshape(-1)]
        return [mat_string(e) for e in x.reshape(-1)]
    except ValueError as err:
        raise DataError(path, f"field {name}: expected a cell array of strings ({err})") from None


def mat_indices(path: Path, name: str, x: Any, n: int) -> Any:
    """1-based MATLAB indices -> 0-based int64 vector, checked to lie in ``[0, n)``."""
    import numpy as np

    try:
        idx = np.asarray(unwrap(x), dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise DataError(path, f"field {name}: expected a numeric index vector") from None
    if idx.size and (np.any(idx != np.round(idx)) or idx.min() < 1 or idx.max() > n):
        raise DataError(path, f"field {name}: 1-based indices must be integers in 1..{n}, "
                              f"got range {idx.min():g}..{idx.max():g}")
    return idx.astype(np.int64) - 1


def mat_labels(path: Path, name: str, x: Any, rows: int | None, cols: int) -> Any:
    """A 2-D label matrix with ``cols`` columns (and ``rows`` rows when given) as int64."""
    import numpy as np

    arr = np.asarray(unwrap(x))
    if arr.ndim != 2 or arr.shape[1] != cols or (rows is not None and arr.shape[0] != rows):
        want = f"({rows if rows is not None else 'N'}, {cols})"
        raise DataError(path, f"field {name}: label matrix has shape {arr.shape}, expected {want} "
                              f"to match the attribute list / image list")
    try:
        return arr.astype(np.int64)
    except (TypeError, ValueError):
        raise DataError(path, f"field {name}: labels are not numeric") from None


def struct_fields(path: Path, name: str, x: Any, at_least: int, meaning: str) -> Any:
    """The record of a 1x1 MATLAB struct, checked to have at least ``at_least`` positional fields."""
    rec = unwrap(x)
    n = len(rec) if hasattr(rec, "dtype") and rec.dtype.names else 0
    if n < at_least:
        raise DataError(path, f"struct {name}: expected at least {at_least} fields ({meaning}), found {n}")
    return rec

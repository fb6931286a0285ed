"""Read the PETA_ZS / RAP_ZS ``dataset_zs_*.pkl`` files without running code from them.

``pickle.load`` calls whatever a file names, so a downloaded pickle can run anything. These files hold only
an ``EasyDict`` of strings, lists, integer ranges and numeric numpy arrays, so they are read by
:class:`RestrictedUnpickler`, whose ``find_class`` resolves exactly these globals (reference brief
``more-tasks.md`` §4.3) and refuses every other one with :class:`~plipbench.errors.DataError`:

* ``easydict.EasyDict`` -> :class:`AttrDict`, a local ``dict`` subclass with a ``__dict__`` (``BUILD`` puts
  EasyDict's attribute mirror there); easydict itself is never imported;
* ``numpy.core.multiarray._reconstruct`` / ``numpy._core.multiarray._reconstruct`` (numpy 1.x / 2.x files),
  accepting only ``(numpy.ndarray, (0,), b'b')``: the empty array ``ndarray.__setstate__`` then fills from the
  file's bytes, so memory is bounded by the file size;
* ``numpy.ndarray``, usable only as that argument (it resolves to a token that cannot be called);
* ``numpy.dtype`` and ``numpy.core.multiarray.scalar`` / ``numpy._core.multiarray.scalar``, refusing object
  dtypes (an object array would carry arbitrary pickled objects);
* ``builtins.range`` (``__builtin__.xrange`` maps to it) and ``_codecs.encode`` with ``latin1`` only
  (protocol-2 files write bytes that way).

``persistent_load`` is not defined, so a persistent id is refused too. Before anything is loaded, the
globals are listed statically with :func:`pickle_globals` (``pickletools.genops``, nothing executed), so a
refusal names every offending global at once. After loading, any array that still holds objects is refused.
"""

from __future__ import annotations

import codecs
import io
import pickle
import pickletools
from pathlib import Path
from typing import Any

from plipbench.errors import DataError

ALLOWED_GLOBALS = frozenset({
    "easydict.EasyDict",
    "numpy.ndarray",
    "numpy.dtype",
    "numpy.core.multiarray._reconstruct",
    "numpy._core.multiarray._reconstruct",
    "numpy.core.multiarray.scalar",
    "numpy._core.multiarray.scalar",
    "builtins.range",
    "__builtin__.xrange",
    "_codecs.encode",
})  # fmt: skip


class AttrDict(dict):
    """The stand-in for ``easydict.EasyDict``: a dict whose keys also read as attributes."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class _NdarrayToken:
    """What ``numpy.ndarray`` resolves to: accepted by the ``_reconstruct`` wrapper, callable by nothing else."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "numpy.ndarray"


_NDARRAY = _NdarrayToken()


def _refuse_object(dtype: Any, path: Path) -> Any:
    if dtype.hasobject:
        raise DataError(path, f"pickle holds an array of object dtype ({dtype}); refused (only numeric and string "
                              f"arrays are read)")
    return dtype


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose ``find_class`` resolves only :data:`ALLOWED_GLOBALS` (see the module docstring)."""

    def __init__(self, file: Any, path: Path) -> None:
        super().__init__(file)
        self.path = path

    def find_class(self, module: str, name: str) -> Any:
        import numpy as np

        full = f"{module}.{name}"
        path = self.path
        if full == "easydict.EasyDict":
            return AttrDict
        if full == "numpy.ndarray":
            return _NDARRAY
        if full in ("numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct"):
            def reconstruct(cls: Any, shape: Any, dtype: Any) -> Any:
                if cls is not _NDARRAY or shape != (0,) or dtype != b"b":
                    raise DataError(path, f"pickle calls {full} with unexpected arguments; refused")
                return np.ndarray.__new__(np.ndarray, (0,), np.dtype("b"))
            return reconstruct
        if full == "numpy.dtype":
            def dtype(spec: Any, align: Any = False, copy: Any = False) -> Any:
                if not isinstance(spec, str) or spec.startswith(("O", "|O")):
                    raise DataError(path, f"pickle holds an array of object dtype ({spec!r}); refused (only numeric "
                                          f"and string arrays are read)")
                return _refuse_object(np.dtype(spec, bool(align), bool(copy)), path)
            return dtype
        if full in ("numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar"):
            def scalar(dtype: Any, data: Any = None) -> Any:
                if not isinstance(dtype, np.dtype) or not isinstance(data, bytes):
                    raise DataError(path, f"pickle calls {full} with unexpected arguments; refused")
                _refuse_object(dtype, path)
                return _numpy_scalar()(dtype, data)
            return scalar
        if full in ("builtins.range", "__builtin__.xrange"):
            return range
        if full == "_codecs.encode":
            def encode(text: Any, encoding: Any = "utf-8") -> bytes:
                if not isinstance(text, str) or str(encoding).lower().replace("-", "") != "latin1":
                    raise DataError(path, f"pickle calls _codecs.encode with encoding {encoding!r}; only latin1 "
                                          f"is allowed")
                return codecs.encode(text, "latin1")
            return encode
        raise DataError(path, f"pickle refers to the global {full}, which is not allowed (allowed: "
                              f"{', '.join(sorted(ALLOWED_GLOBALS))}); refused without running it")


def _numpy_scalar() -> Any:
    try:
        from numpy._core.multiarray import scalar
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import scalar  # type: ignore[no-redef]
    return scalar


_STRING_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "STRING", "BINSTRING", "SHORT_BINSTRING"}


def pickle_globals(data: bytes, path: Path) -> list[str]:
    """Every global (``module.name``) the pickle ``data`` refers to, found without executing anything.

    ``GLOBAL`` carries its name; for ``STACK_GLOBAL`` (protocol 4) the two strings pushed before it are
    followed through the memo. A ``STACK_GLOBAL`` whose operands are not plain strings is listed as
    ``<computed>`` (and so refused). A file that is not a well-formed pickle is a :class:`DataError`.
    """
    found: list[str] = []
    recent: list[Any] = []  # the last values pushed (strings, or None for anything else)
    memo: dict[int, Any] = {}
    try:
        for op, arg, _pos in pickletools.genops(io.BytesIO(data)):
            name = op.name
            if name == "GLOBAL":
                module, _, attr = str(arg).partition(" ")
                found.append(f"{module}.{attr}")
                recent.append(None)
            elif name == "STACK_GLOBAL":
                module, attr = (recent[-2], recent[-1]) if len(recent) >= 2 else (None, None)
                ok = isinstance(module, str) and isinstance(attr, str)
                found.append(f"{module}.{attr}" if ok else "<computed>")
                recent.append(None)
            elif name in _STRING_OPS:
                recent.append(arg if isinstance(arg, str) else None)
            elif name == "MEMOIZE":
                memo[len(memo)] = recent[-1] if recent else None
            elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
                memo[int(arg)] = recent[-1] if recent else None
            elif name in ("GET", "BINGET", "LONG_BINGET"):
                recent.append(memo.get(int(arg)))
            elif name not in ("FRAME", "PROTO", "STOP"):
                recent.append(None)
            del recent[:-2]
    except Exception as err:  # pickletools raises ValueError and others on malformed input
        raise DataError(path, f"not a well-formed pickle ({type(err).__name__}: {err})") from None
    return list(dict.fromkeys(found))


def _has_object_array(obj: Any, depth: int = 0) -> bool:
    import numpy as np

    if depth > 50:
        return True
    if isinstance(obj, np.ndarray):
        return obj.dtype.hasobject
    if isinstance(obj, dict):
        return any(_has_object_array(v, depth + 1) for v in obj.values()) or any(
            _has_object_array(v, depth + 1) for v in getattr(obj, "__dict__", {}).values())
    if isinstance(obj, (list, tuple)):
        return any(_has_object_array(v, depth + 1) for v in obj)
    return False


def load_restricted(path: Path) -> Any:
    """The object pickled in ``path``, read by :class:`RestrictedUnpickler` after a static check of its
    globals; any refusal or malformed content is a one-line :class:`DataError` naming ``path``."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(path, "pickle file not found") from None
    except OSError as err:
        raise DataError(path, f"cannot read the pickle ({err.strerror or err})") from None
    bad = [g for g in pickle_globals(data, path) if g not in ALLOWED_GLOBALS]
    if bad:
        raise DataError(path, f"pickle refers to global(s) {', '.join(bad)}, which are not allowed (allowed: "
                              f"{', '.join(sorted(ALLOWED_GLOBALS))}); refused without running anything")
    try:
        obj = RestrictedUnpickler(io.BytesIO(data), path).load()
    except DataError:
        raise
    except Exception as err:  # UnpicklingError, a persistent id, a malformed array state, ...
        raise DataError(path, f"cannot unpickle ({type(err).__name__}: {err})") from None
    if _has_object_array(obj):
        raise DataError(path, "pickle holds an array of object dtype; refused (only numeric and string arrays "
                              "are read)")
    return obj

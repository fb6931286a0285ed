"""Readers for every supported dataset layout, and the registry that names them.

Each reader turns one on-disk layout into a :class:`~plipbench.data.records.PersonDataset` (the person-search
layouts ``cuhk-sysu`` and ``prw``: a :class:`~plipbench.data.readers.person_search.PersonSearchDataset`); the registry
:data:`READERS` maps the layout name (the ``--layout`` value) to its :class:`ReaderInfo` (description,
reader, expected directory tree, official split sizes, folder names to look for, accepted options).

>>> from plipbench.data.readers import read_dataset
>>> ds = read_dataset("market1501", "~/datasets")            # doctest: +SKIP
>>> ds.summary()["query"]                                     # doctest: +SKIP
{'images': 3368, 'identities': 750, 'captions': 0, 'cameras': 6}

Importing this package imports neither torch nor scipy (the .mat readers import scipy when called).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from plipbench.data.readers import (
    attributes,
    attributes_zs,
    cuhk03,
    cuhk_sysu,
    msmt17,
    occluded,
    parsing,
    prw,
    reid_market,
    text,
)
from plipbench.data.readers.base import ReaderInfo, search_root
from plipbench.data.readers.person_search import PersonSearchDataset
from plipbench.data.records import PersonDataset
from plipbench.errors import ConfigError

READERS: dict[str, ReaderInfo] = {
    info.name: info
    for module in (reid_market, msmt17, cuhk03, text, attributes, parsing, cuhk_sysu, prw, occluded, attributes_zs)
    for info in module.INFOS
}
LAYOUT_NAMES: tuple[str, ...] = (
    "market1501", "dukemtmc", "msmt17", "cuhk03-np", "cuhk-pedes", "icfg-pedes", "rstpreid", "synth-pedes",
    "pa100k", "peta", "rapv1", "rapv2", "lip", "pascal-person-part", "cihp", "cuhk-sysu", "prw",
    "occluded-duke", "occluded-reid", "partial-reid", "partial-ilids", "peta-zs", "rap-zs",
)
assert set(LAYOUT_NAMES) == set(READERS), "every layout needs a reader"

__all__ = ["LAYOUT_NAMES", "READERS", "ReaderInfo", "find_root", "get_reader", "parse_options", "read_dataset"]


def get_reader(layout: str) -> ReaderInfo:
    """The :class:`ReaderInfo` of ``layout``; :class:`ConfigError` listing the known layouts otherwise."""
    try:
        return READERS[layout]
    except KeyError:
        raise ConfigError(f"unknown dataset layout {layout!r}; known layouts: {', '.join(LAYOUT_NAMES)}") from None


def _check_options(info: ReaderInfo, options: dict[str, Any]) -> None:
    unknown = sorted(set(options) - set(info.options))
    if unknown:
        accepted = ", ".join(f"{k} (default {v!r})" for k, v in info.options.items()) or "none"
        raise ConfigError(f"layout {info.name} does not accept option(s) {', '.join(unknown)}; accepted: {accepted}")


def read_dataset(layout: str, root: str | Path, **options: Any) -> PersonDataset | PersonSearchDataset:
    """Read the ``layout`` dataset found at ``root`` (the dataset folder or a data folder holding it).

    ``options`` are the layout's reader options (``READERS[layout].options`` lists them with their
    defaults); the effective values are recorded in :attr:`PersonDataset.options`.
    """
    info = get_reader(layout)
    _check_options(info, options)
    dataset = info.reader(root, **options)
    dataset.options = {**info.options, **dataset.options}
    return dataset


def find_root(layout: str, base: str | Path) -> Path | None:
    """The ``layout`` dataset folder under the data folder ``base`` (or ``base`` itself), else ``None``.

    Looks in the folder names torchreid and fast-reid use (``READERS[layout].folder_names``).
    """
    info = get_reader(layout)
    base = Path(base).expanduser()
    if not base.is_dir():
        return None
    return search_root(base, info.folder_names, info.marker)


def _convert(layout: str, key: str, value: str, default: Any) -> Any:
    if isinstance(default, bool):
        low = value.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"option {key} of layout {layout} expects true/false, got {value!r}")
    if isinstance(default, int):
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"option {key} of layout {layout} expects an integer, got {value!r}") from None
    return value


def parse_options(layout: str, pairs: Iterable[str]) -> dict[str, Any]:
    """Turn command-line ``key=value`` strings into typed reader options (typed like their defaults)."""
    info = get_reader(layout)
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise ConfigError(f"--option expects key=value, got {pair!r}")
        if key not in info.options:
            _check_options(info, {key: value})
        out[key] = _convert(layout, key, value, info.options[key])
    return out

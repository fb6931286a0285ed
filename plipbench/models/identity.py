"""What a built backbone is, remembered between runs, so that a rerun whose results are all still valid need not
build it (nor import the libraries it needs: transformers alone takes seconds).

A result is reused when the backbone's weights fingerprint and code fingerprint equal the stored ones
(``plipbench.evaluation.runner``). Both are known only once the backbone is built. For a ``plip:PATH`` spec
everything that goes into them is on disk: the checkpoint files under ``PATH`` (the weights fingerprint hashes the
metadata and the checkpoint's sha256, both read from there by the family adapter) and the source files of the
encoder classes and the adapter (the code fingerprint). So after each build the identity is written to
``<cache>/backbones/<key>.json`` with

- the spec's input files, each with its size and mtime (the rule the feature cache uses for images);
- the source files behind the code fingerprint.

It is recalled only when every input file is unchanged and the code fingerprint recomputed from the source
files' current content (and the current plipbench and torch versions) equals the stored one: a changed
checkpoint, a fixed encoder, an upgraded library or an edited adapter all rebuild the backbone. When the
backbone is built anyway (a result has to be computed), its real identity is compared with the recalled one and a
disagreement is an error, never a silent reuse.

Other specs (hub ids, user factories, which may read anything) are not remembered: they are always built.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from plipbench.models.backbone import Backbone

MEMO_VERSION = 1


@dataclass(frozen=True)
class BackboneIdentity:
    """The parts of a backbone that decide whether a stored result is still valid."""

    name: str
    has_text: bool
    fingerprint: str
    code_fingerprint: str

    @classmethod
    def of(cls, backbone: Backbone) -> BackboneIdentity:
        return cls(name=backbone.name, has_text=bool(backbone.has_text), fingerprint=backbone.fingerprint,
                   code_fingerprint=backbone.code_fingerprint)


def spec_inputs(spec: str) -> list[Path] | None:
    """The files a spec's backbone is built from, or None when they cannot be told (then it is not remembered).

    Only ``plip:PATH`` (a plipbench checkpoint directory or an official release file) qualifies.
    """
    family, sep, target = spec.partition(":")
    if family != "plip" or not sep or not target:
        return None
    path = Path(target).expanduser()
    if path.is_file():
        return [path.resolve()]
    if path.is_dir():
        return sorted(p.resolve() for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
    return None


def _stat_signature(files: list[Path]) -> list[list[Any]]:
    out = []
    for f in files:
        st = os.stat(f)
        out.append([str(f), st.st_size, st.st_mtime_ns])
    return out


def _memo_path(spec: str, device: str) -> Path:
    from plipbench import __version__
    from plipbench.environment import cache_root

    key = hashlib.sha256(f"{MEMO_VERSION}|{__version__}|{spec}|{device}".encode()).hexdigest()[:24]
    return cache_root() / "backbones" / f"{key}.json"


def recall(spec: str, device: str) -> BackboneIdentity | None:
    """The remembered identity of ``spec``'s backbone if nothing it depends on has changed, else None."""
    from plipbench.models.backbone import code_fingerprint_of

    files = spec_inputs(spec)
    if files is None:
        return None
    path = _memo_path(spec, device)
    try:
        memo = json.loads(path.read_text(encoding="utf-8"))
        if memo.get("version") != MEMO_VERSION or memo.get("spec") != spec or memo.get("device") != device:
            return None
        if memo["inputs"] != _stat_signature(files):
            return None
        identity = BackboneIdentity(**memo["identity"])
        if code_fingerprint_of(memo["source_files"]) != identity.code_fingerprint:
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None  # no memo, or one that is unreadable or from another version: build
    return identity


def remember(spec: str, device: str, backbone: Backbone) -> BackboneIdentity:
    """Store the identity of a freshly built backbone (best effort: an unwritable cache only costs a rebuild)."""
    from plipbench.io import atomic_write_json

    identity = BackboneIdentity.of(backbone)
    files = spec_inputs(spec)
    if files is not None:
        memo = {"version": MEMO_VERSION, "spec": spec, "device": device, "inputs": _stat_signature(files),
                "source_files": backbone.source_files(), "identity": asdict(identity)}
        with contextlib.suppress(OSError):
            atomic_write_json(_memo_path(spec, device), memo)
    return identity

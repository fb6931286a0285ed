"""Pretrained weights the way timm, open_clip and transformers fetch them, with plipbench's offline rule.

``timm:resnet50.a1_in1k``, ``open_clip:ViT-B-16:openai`` and ``hf-clip:openai/clip-vit-base-patch16``
are loaded by those libraries' own factories, so the weights land in their standard caches (the
Hugging Face hub cache, ``$HF_HUB_CACHE`` / ``$HF_HOME/hub``, for nearly everything; torch hub's
``checkpoints/`` for old timm URL weights; ``~/.cache/clip`` for open_clip URL weights).

Offline mode (``PLIPBENCH_OFFLINE=1`` or ``HF_HUB_OFFLINE=1``): :func:`hub_offline` switches
``huggingface_hub`` to offline for the duration of the load (its HTTP hook then refuses every
request, so nothing touches the network), and the adapters check non-hub URL weights in their cache
before calling the library. What is missing is one :class:`~plipbench.errors.PlipbenchError` line
naming the repository (or URL), the cache and the command that fetches it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from plipbench.errors import PlipbenchError
from plipbench.models.fetch import OFFLINE_ENV, is_offline


def offline_reason() -> str | None:
    """``'PLIPBENCH_OFFLINE=1'`` (the first offline variable that is set), or None when online."""
    for name in OFFLINE_ENV:
        if os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on"):
            return f"{name}=1"
    return None


@contextlib.contextmanager
def hub_offline() -> Iterator[bool]:
    """Make ``huggingface_hub`` (and through it timm, open_clip, transformers) offline while plipbench is.

    ``huggingface_hub`` reads ``HF_HUB_OFFLINE`` once, at import; ``PLIPBENCH_OFFLINE`` or a variable
    set later must still take effect, so the module flag its request hook checks is set here.
    """
    if not is_offline():
        yield False
        return
    from huggingface_hub import constants

    before = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield True
    finally:
        constants.HF_HUB_OFFLINE = before


def hub_cache() -> Path:
    """The Hugging Face hub cache that ``hf_hub_download`` uses now."""
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def cached_hub_file(repo_id: str, filenames: tuple[str, ...], revision: str | None = None) -> Path | None:
    """The first of ``filenames`` of ``repo_id`` already in the hub cache (no network), or None."""
    from huggingface_hub import try_to_load_from_cache

    for filename in filenames:
        found = try_to_load_from_cache(repo_id, filename, revision=revision)
        if isinstance(found, str):
            return Path(found)
    return None


def snapshot_revision(path: Path | None) -> str | None:
    """The commit of a file in the hub cache (``.../snapshots/<commit>/<file>``)."""
    if path is None:
        return None
    parts = path.parts
    return parts[parts.index("snapshots") + 1] if "snapshots" in parts[:-1] else None


def is_hub_error(err: BaseException) -> bool:
    """True for the errors a hub download raises when a file is absent, offline or unreachable."""
    from huggingface_hub import errors

    kinds = (errors.LocalEntryNotFoundError, errors.OfflineModeIsEnabled, errors.EntryNotFoundError,
             errors.RepositoryNotFoundError, errors.RevisionNotFoundError, errors.HfHubHTTPError)  # fmt: skip
    seen: BaseException | None = err
    while seen is not None:  # timm and open_clip wrap the hub's error in their own RuntimeError
        if isinstance(seen, kinds):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:300] if text else type(err).__name__


def missing_error(
    spec: str, what: str, fetch_hint: str, err: BaseException | None = None, cache: Path | None = None
) -> PlipbenchError:
    """One line: what is missing, where plipbench looked, and how to get it."""
    reason = offline_reason()
    state = f"is offline ({reason})" if reason else "could not download it"
    detail = f" ({first_line(err)})" if err is not None and not (reason and is_hub_error(err)) else ""
    return PlipbenchError(f"{spec}: {what} not found in the cache {cache or hub_cache()} and plipbench {state}: "
                          f"{fetch_hint}{detail}")  # fmt: skip

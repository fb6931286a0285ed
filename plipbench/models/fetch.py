"""Weights on demand: download a baseline's weights file from the source its YAML names, verified.

Sources (``weights.fetch.kind`` in a baseline YAML):

- ``hf``: a file of a Hugging Face hub repository at a pinned ``revision`` (the URL is built by
  ``huggingface_hub.hf_hub_url``, so ``HF_ENDPOINT`` and ``HF_TOKEN`` apply);
- ``gdrive``: a Google Drive file id, through ``gdown`` (which handles Drive's confirmation pages);
- ``url``: a direct HTTP(S) URL;
- ``gated``: weights behind an agreement; never fetched, the reason is shown;
- ``unsupported``: a model listed for completeness that plipbench has no loader for (its checkpoint
  layout could not be confirmed, or it needs a family plipbench does not have); the reason is shown.

What every fetch does:

- downloads into a temporary sibling ``<path>.part`` and resumes it with an HTTP ``Range`` request
  when an earlier transfer was interrupted;
- shows a rich progress bar;
- checks the sha256 against ``weights.sha256``. With none pinned, the hash is recorded next to the
  file (``<path>.sha256``), later loads check against it, and the message says which line to pin;
- on a mismatch removes the bad file and raises, naming the expected and the actual hash;
- moves the verified file to its final path with ``os.replace`` (never a partial file there).

Offline (``PLIPBENCH_OFFLINE=1``, ``HF_HUB_OFFLINE=1``, or no network) nothing touches the network:
the error is one line naming the URL and the path where the file can be put by hand.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from plipbench.errors import PlipbenchError
from plipbench.models.weights import file_sha256 as file_sha256_of

if TYPE_CHECKING:  # pragma: no cover
    from plipbench.models.baselines import BaselineSpec

CHUNK = 1 << 16
OFFLINE_ENV = ("PLIPBENCH_OFFLINE", "HF_HUB_OFFLINE")


class FetchSource(BaseModel):
    """Where a baseline's weights file is published (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["hf", "gdrive", "url", "gated", "unsupported"]
    repo: str | None = Field(None, description="hf: the hub repository id, e.g. timm/resnet50.a1_in1k")
    filename: str | None = Field(None, description="hf: the file inside the repository")
    revision: str | None = Field(None, description="hf: the pinned commit (or tag) of the repository")
    id: str | None = Field(None, description="gdrive: the file id of drive.google.com/file/d/<id>")
    url: str | None = Field(None, description="url: the direct download URL")
    reason: str | None = Field(
        None, description="gated / unsupported: why the weights cannot be fetched or loaded"
    )

    @model_validator(mode="after")
    def _fields_for_kind(self) -> FetchSource:
        needed = {"hf": ("repo", "filename", "revision"), "gdrive": ("id",), "url": ("url",), "gated": ("reason",),
                  "unsupported": ("reason",)}  # fmt: skip
        absent = [name for name in needed[self.kind] if not getattr(self, name)]
        if absent:
            raise ValueError(f"fetch kind {self.kind!r} needs {', '.join(absent)}")
        return self

    def download_url(self) -> str:
        """The URL the bytes come from (for gated weights: the page that explains the agreement)."""
        if self.kind == "hf":
            from huggingface_hub import hf_hub_url

            assert self.repo and self.filename
            return hf_hub_url(self.repo, self.filename, revision=self.revision)
        if self.kind == "gdrive":
            return f"https://drive.google.com/uc?id={self.id}"
        return self.url or ""


def is_offline() -> bool:
    """True when ``PLIPBENCH_OFFLINE`` or ``HF_HUB_OFFLINE`` is set to a true value."""
    return any(os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on") for name in OFFLINE_ENV)


def recorded_sha256_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def expected_sha256(pinned: str | None, path: Path) -> str | None:
    """The pinned hash, else the one recorded on first fetch (``<path>.sha256``), else None."""
    if pinned:
        return pinned.lower()
    record = recorded_sha256_path(path)
    if record.is_file():
        text = record.read_text(encoding="utf-8").split()
        return text[0].lower() if text else None
    return None


def _offline_message(name: str, url: str, path: Path, why: str) -> str:
    return f"{name}: {why}: download {url} and put it at {path}"


def _progress(description: str, quiet: bool) -> tuple[Callable[[int, int | None], None], Callable[[], None]]:
    """A rich progress bar driven by ``update(done_bytes, total_bytes)``; returns (update, close)."""
    if quiet:
        return (lambda done, total: None), (lambda: None)
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    bar = Progress(
        TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
        TimeRemainingColumn(), transient=False,
    )  # fmt: skip
    task = bar.add_task(description, total=None)
    bar.start()

    def update(done: int, total: int | None) -> None:
        bar.update(task, completed=done, total=total)

    return update, bar.stop


def _http_download(url: str, part: Path, *, headers: dict[str, str], update: Callable[[int, int | None], None],
                   timeout: float) -> None:  # fmt: skip
    """Download ``url`` into ``part``, resuming from its current size with a Range request."""
    import requests

    done = part.stat().st_size if part.exists() else 0
    request_headers = dict(headers)
    if done:
        request_headers["Range"] = f"bytes={done}-"
    with requests.get(url, headers=request_headers, stream=True, timeout=timeout) as response:
        if response.status_code == 416 and done:  # the partial file is complete or larger than the file
            part.unlink()
            return _http_download(url, part, headers=headers, update=update, timeout=timeout)
        if response.status_code >= 400:
            raise PlipbenchError(f"HTTP {response.status_code} {response.reason} for {url}")
        resumed = response.status_code == 206 and done > 0
        if not resumed:
            done = 0
        length = response.headers.get("Content-Length")
        total = done + int(length) if length is not None and length.isdigit() else None
        update(done, total)
        with open(part, "ab" if resumed else "wb") as fh:
            for block in response.iter_content(CHUNK):
                fh.write(block)
                done += len(block)
                update(done, total)
        if total is not None and done != total:
            raise PlipbenchError(
                f"transfer of {url} ended after {done} of {total} bytes; run again to resume"
            )
    return None


def _gdrive_download(file_id: str, part: Path, *, update: Callable[[int, int | None], None]) -> None:
    import gdown

    try:  # gdown keeps its own resumable ``<part>XXXXXXXX.part`` beside ours and renames it to ``part``
        result = gdown.download(id=file_id, output=str(part), quiet=True, resume=True, progress=update)
    except OSError:
        raise
    except Exception as err:
        # gdown's FileURLRetrievalError / DownloadError: quota, permissions, removed file
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise PlipbenchError(f"Google Drive refused the download of file id {file_id}: {first}") from None
    if result is None or not part.is_file():
        raise PlipbenchError(f"Google Drive refused the download of file id {file_id} (quota or permissions)")


def fetch_file(
    name: str,
    source: FetchSource,
    path: str | Path,
    *,
    sha256: str | None = None,
    quiet: bool = False,
    timeout: float = 30.0,
    log: Callable[[str], None] | None = None,
) -> Path:
    """Fetch ``source`` to ``path`` (verified, atomically placed) and return ``path``.

    ``name`` labels messages and the progress bar. A file already at ``path`` is checked against
    the expected hash and kept. ``log`` receives the one-line notes (recorded hash); default stderr.
    """
    import sys

    path = Path(path)
    say = log or (lambda text: print(text, file=sys.stderr))
    url = source.download_url()
    if source.kind == "gated":
        raise PlipbenchError(f"{name}: weights are not fetchable: {source.reason}; put the file at {path}")
    if source.kind == "unsupported":
        raise PlipbenchError(f"{name}: plipbench has no loader for this model: {source.reason}")
    expected = expected_sha256(sha256, path)
    if path.is_file():
        if expected and file_sha256_of(path) != expected:
            actual = file_sha256_of(path)
            raise PlipbenchError(
                f"{name}: {path} has sha256 {actual}, expected {expected}; delete it and fetch again"
            )
        return path
    if is_offline():
        which = next(
            n for n in OFFLINE_ENV if os.environ.get(n, "").strip().lower() in ("1", "true", "yes", "on")
        )
        raise PlipbenchError(_offline_message(name, url, path, f"offline ({which}=1)"))
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    update, close = _progress(f"{name}", quiet)
    try:
        if source.kind == "gdrive":
            assert source.id
            _gdrive_download(source.id, part, update=update)
        else:
            headers: dict[str, str] = {}
            if source.kind == "hf":
                from huggingface_hub.utils import build_hf_headers

                headers = build_hf_headers()
            _http_download(url, part, headers=headers, update=update, timeout=timeout)
    except PlipbenchError:
        raise
    except OSError as err:  # requests' ConnectionError and Timeout are OSErrors
        raise PlipbenchError(
            _offline_message(name, url, path, f"no network ({type(err).__name__})")
        ) from None
    finally:
        close()
    actual = file_sha256_of(part)
    if expected and actual != expected:
        part.unlink()
        raise PlipbenchError(
            f"{name}: checksum mismatch for {url}: expected sha256 {expected}, got {actual}; the file was removed"
        )
    os.replace(part, path)
    if not expected:
        recorded_sha256_path(path).write_text(actual + "\n", encoding="utf-8")
        say(f"{name}: no sha256 pinned; recorded {actual} in {recorded_sha256_path(path)} "
            f"(pin it with `sha256: {actual}` under weights: in the baseline YAML)")  # fmt: skip
    return path


def fetch_baseline(
    spec: BaselineSpec, *, quiet: bool = False, log: Callable[[str], None] | None = None
) -> Path:
    """Fetch the weights a baseline YAML names to its ``weights.path``; returns that path."""
    if spec.weights is None:
        raise PlipbenchError(f"baseline {spec.name} needs no weights (random initialisation)")
    path = spec.weights.resolved()
    if spec.weights.fetch is None:
        if path.is_file():
            return path
        if not spec.weights.required:
            raise PlipbenchError(
                f"baseline {spec.name}: the {spec.family} library downloads its weights into its own cache on first "
                f"use: run `plipbench models check {spec.name}` to fetch them now"
            )
        raise PlipbenchError(
            f"baseline {spec.name}: no fetch source in its YAML; download {spec.weights.url} and put it at {path}"
        )
    return fetch_file(spec.name, spec.weights.fetch, path, sha256=spec.weights.sha256, quiet=quiet, log=log)


def fetch_status(spec: BaselineSpec) -> str:
    """``present``, ``fetchable``, ``library`` (the family's library downloads into its own cache on first use),
    ``gated``, ``unsupported`` (no loader), ``manual`` (no source to fetch from) or ``none`` (random init)."""
    if spec.weights is None:
        return "none"
    if spec.weights.fetch is not None and spec.weights.fetch.kind == "unsupported":
        return "unsupported"
    if spec.weights_present():
        return "present"
    if spec.weights.fetch is None:
        return "manual" if spec.weights.required else "library"
    return "gated" if spec.weights.fetch.kind == "gated" else "fetchable"

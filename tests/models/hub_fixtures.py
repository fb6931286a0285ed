"""A stand-in Hugging Face hub for the tests: a 127.0.0.1 server speaking the hub's ``resolve`` protocol,
the hub cache layout written directly, and a fixture that points ``huggingface_hub`` at both.

``huggingface_hub`` reads ``HF_ENDPOINT``, ``HF_HOME`` and ``HF_HUB_OFFLINE`` once, at import, so the
fixture also sets the module constants its functions read at call time.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def put_in_hub_cache(cache: Path, repo_id: str, files: dict[str, bytes], commit: str = COMMIT) -> Path:
    """Write ``files`` as ``hf_hub_download`` leaves them: ``models--ORG--NAME/{blobs,snapshots/<commit>,refs/main}``.

    Blobs are named by their sha256 and the snapshot entries are relative symlinks to them; returns the
    snapshot folder.
    """
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    for name, data in files.items():
        digest = hashlib.sha256(data).hexdigest()
        blob = repo / "blobs" / digest
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    return snapshot


def directory_files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


@dataclass
class FakeHub:
    """``HEAD``/``GET /{repo}/resolve/{revision}/{file}`` with the headers ``hf_hub_download`` needs."""

    repos: dict[str, dict[str, bytes]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path)
    commit: str = COMMIT

    def __post_init__(self) -> None:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _answer(self, with_body: bool) -> None:
                hub.requests.append((self.command, self.path))
                parts = self.path.split("?")[0].strip("/").split("/")
                if len(parts) >= 5 and parts[:2] == ["api", "models"] and parts[4] == "tree":
                    # the repository tree API (transformers lists additional_chat_templates/): no folders here
                    known = "/".join(parts[2:4]) in hub.repos
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound" if known else "RepoNotFound")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if len(parts) < 5 or parts[2] != "resolve":
                    self.send_response(404)
                    self.send_header("X-Error-Code", "RepoNotFound")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                repo_id, filename = "/".join(parts[:2]), "/".join(parts[4:])
                files = hub.repos.get(repo_id)
                body = None if files is None else files.get(filename)
                if body is None:
                    self.send_response(404)
                    self.send_header("X-Error-Code", "RepoNotFound" if files is None else "EntryNotFound")
                    self.send_header("X-Repo-Commit", hub.commit)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("X-Repo-Commit", hub.commit)
                self.send_header("ETag", f'"{hashlib.sha256(body).hexdigest()}"')
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if with_body:
                    self.wfile.write(body)

            def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
                self._answer(with_body=False)

            def do_GET(self) -> None:  # noqa: N802
                self._answer(with_body=True)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeHub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@dataclass
class HubEnv:
    cache: Path
    hub: FakeHub
    monkeypatch: pytest.MonkeyPatch

    def offline(self, variable: str = "PLIPBENCH_OFFLINE") -> None:
        """Offline as a user sets it: the environment variable only (plipbench must apply it to the hub)."""
        self.monkeypatch.setenv(variable, "1")

    def online(self) -> None:
        for name in ("PLIPBENCH_OFFLINE", "HF_HUB_OFFLINE"):
            self.monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def fake_hub_server():
    """One server for the session: ``huggingface_hub`` keeps an ``HfApi`` whose endpoint is fixed when first made."""
    with FakeHub() as hub:
        yield hub


@pytest.fixture()
def hub_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_hub_server: FakeHub):
    """An empty hub cache under ``tmp_path`` and the (emptied) :class:`FakeHub` as ``HF_ENDPOINT``, online."""
    from huggingface_hub import constants

    cache = tmp_path / "hf" / "hub"
    cache.mkdir(parents=True)
    hub = fake_hub_server
    hub.repos.clear()
    hub.requests.clear()
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    monkeypatch.setattr(constants, "HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "ENDPOINT", hub.endpoint)
    monkeypatch.setattr(
        constants, "HUGGINGFACE_CO_URL_TEMPLATE", hub.endpoint + "/{repo_id}/resolve/{revision}/{filename}"
    )
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True, raising=False)
    env = HubEnv(cache, hub, monkeypatch)
    env.online()
    yield env

"""Weights on demand: fetch through a local HTTP server (success, mismatch, interrupted, 404, offline)."""

from __future__ import annotations

import hashlib
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from plipbench.errors import PlipbenchError
from plipbench.models.baselines import load_baseline
from plipbench.models.fetch import FetchSource, fetch_baseline, fetch_status
from tests.models.http_fixtures import FileServer

REPO = Path(__file__).resolve().parents[2]


def _weights_bytes() -> bytes:
    import timm
    import torch

    torch.manual_seed(0)
    model = timm.create_model("test_resnet", num_classes=0)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getvalue()


def _baseline(tmp_path: Path, url: str, sha256: str | None, name: str = "tiny-fetch") -> Path:
    sha = f'"{sha256}"' if sha256 else "null"
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        f"name: {name}\nfamily: timm\nmodel: test_resnet\nmodalities: [image]\nembedding_dim: 96\n"
        f"license: Apache-2.0\ntraining_data: [nothing]\n"
        f"weights:\n  path: {tmp_path}/weights/{name}.pth\n  url: {url}\n  sha256: {sha}\n"
        f"  fetch:\n    kind: url\n    url: {url}\n"
    )
    return path


@pytest.fixture()
def server():
    with FileServer() as srv:
        yield srv


@pytest.fixture()
def online(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PLIPBENCH_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)


def test_fetch_success_then_first_use_builds_the_baseline(tmp_path: Path, server: FileServer, online) -> None:
    from plipbench.models import create_backbone

    body = _weights_bytes()
    server.files["/w.pth"] = body
    yaml_path = _baseline(tmp_path, server.base_url + "/w.pth", hashlib.sha256(body).hexdigest())
    spec = load_baseline(str(yaml_path))
    assert fetch_status(spec) == "fetchable"
    backbone = create_backbone(str(yaml_path))  # missing weights: fetched on first use
    target = tmp_path / "weights" / "tiny-fetch.pth"
    assert target.read_bytes() == body and not target.with_name("tiny-fetch.pth.part").exists()
    assert backbone.metadata.checkpoint_sha256 == hashlib.sha256(body).hexdigest()
    assert fetch_status(spec) == "present"
    count = len(server.requests)
    assert fetch_baseline(spec, quiet=True) == target and len(server.requests) == count  # no second download


def test_unpinned_hash_is_recorded_and_said(tmp_path: Path, server: FileServer, online) -> None:
    server.files["/w.bin"] = b"x" * 1000
    notes: list[str] = []
    spec = load_baseline(str(_baseline(tmp_path, server.base_url + "/w.bin", None)))
    path = fetch_baseline(spec, quiet=True, log=notes.append)
    digest = hashlib.sha256(b"x" * 1000).hexdigest()
    assert path.with_name(path.name + ".sha256").read_text().strip() == digest
    assert len(notes) == 1 and "no sha256 pinned" in notes[0] and digest in notes[0]
    path.write_bytes(b"y" * 1000)  # later tampering is caught against the recorded hash
    with pytest.raises(PlipbenchError, match=f"expected {digest}"):
        fetch_baseline(spec, quiet=True)


def test_checksum_mismatch_is_refused_and_the_file_removed(tmp_path: Path, server: FileServer, online) -> None:
    server.files["/w.bin"] = b"corrupted" * 100
    wrong = hashlib.sha256(b"the real file").hexdigest()
    actual = hashlib.sha256(b"corrupted" * 100).hexdigest()
    spec = load_baseline(str(_baseline(tmp_path, server.base_url + "/w.bin", wrong)))
    with pytest.raises(PlipbenchError, match=f"expected sha256 {wrong}, got {actual}"):
        fetch_baseline(spec, quiet=True)
    assert not list((tmp_path / "weights").iterdir())  # neither the final file nor the partial one


def test_http_404_is_one_line_naming_the_url(tmp_path: Path, server: FileServer, online) -> None:
    spec = load_baseline(str(_baseline(tmp_path, server.base_url + "/missing.pth", None)))
    with pytest.raises(PlipbenchError, match=r"HTTP 404 .*missing\.pth") as info:
        fetch_baseline(spec, quiet=True)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "weights" / "tiny-fetch.pth").exists()


@pytest.mark.parametrize("variable", ["PLIPBENCH_OFFLINE", "HF_HUB_OFFLINE"])
def test_offline_never_touches_the_network(
    tmp_path: Path, server: FileServer, monkeypatch: pytest.MonkeyPatch, variable: str, online
) -> None:
    from plipbench.models import create_backbone

    server.files["/w.pth"] = b"abc"
    monkeypatch.setenv(variable, "1")
    yaml_path = _baseline(tmp_path, server.base_url + "/w.pth", None)
    with pytest.raises(PlipbenchError) as info:
        create_backbone(str(yaml_path))
    message = str(info.value)
    assert "\n" not in message and variable in message
    assert server.base_url + "/w.pth" in message and str(tmp_path / "weights" / "tiny-fetch.pth") in message
    assert server.requests == []


def test_no_network_gives_the_same_one_line(tmp_path: Path, online) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/w.pth"
    spec = load_baseline(str(_baseline(tmp_path, url, None)))
    with pytest.raises(PlipbenchError, match=r"no network .*download http://127\.0\.0\.1:\d+/w\.pth and put it at"):
        fetch_baseline(spec, quiet=True)


def test_interrupted_transfer_resumes(tmp_path: Path, server: FileServer, online) -> None:
    body = os.urandom(3 << 20)
    server.files["/big.bin"] = body
    server.throttle = 0.1  # about 5 s for the whole file: the child is killed well before the end
    yaml_path = _baseline(tmp_path, server.base_url + "/big.bin", hashlib.sha256(body).hexdigest())
    target = tmp_path / "weights" / "tiny-fetch.pth"
    part = target.with_name(target.name + ".part")
    code = (
        "import sys; from plipbench.models.baselines import load_baseline; "
        "from plipbench.models.fetch import fetch_baseline; fetch_baseline(load_baseline(sys.argv[1]), quiet=True)"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([sys.executable, "-c", code, str(yaml_path)], env=env)
    try:
        deadline = time.monotonic() + 60
        while not (part.exists() and part.stat().st_size >= 512 << 10):
            assert child.poll() is None and time.monotonic() < deadline, "the download did not start"
            time.sleep(0.02)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    finally:
        if child.poll() is None:
            child.kill()
    done = part.stat().st_size
    assert 0 < done < len(body) and not target.exists()
    server.throttle = 0.0
    fetch_baseline(load_baseline(str(yaml_path)), quiet=True)
    assert target.read_bytes() == body and not part.exists()
    path, rng = server.requests[-1]
    assert path == "/big.bin" and rng is not None and int(rng.split("=")[1].rstrip("-")) >= done


def test_hf_source_builds_a_pinned_url(monkeypatch: pytest.MonkeyPatch) -> None:
    source = FetchSource(kind="hf", repo="timm/x", filename="model.safetensors", revision="abc123")
    assert source.download_url().endswith("/timm/x/resolve/abc123/model.safetensors")
    with pytest.raises(ValueError, match="needs revision"):
        FetchSource(kind="hf", repo="timm/x", filename="model.safetensors")


def test_cli_fetch_list_show(tmp_path: Path, server: FileServer, monkeypatch: pytest.MonkeyPatch, cli, online) -> None:
    body = b"w" * 4096
    server.files["/w.pth"] = body
    _baseline(tmp_path, server.base_url + "/w.pth", hashlib.sha256(body).hexdigest(), name="cli-fetch")
    monkeypatch.setenv("PLIPBENCH_BASELINES", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "250")
    listing = cli("models", "list")
    assert listing.exit_code == 0 and "cli-fetch" in listing.output and "fetchable" in listing.output
    shown = cli("models", "show", "cli-fetch")
    assert shown.exit_code == 0 and hashlib.sha256(body).hexdigest() in shown.output and "/w.pth" in shown.output
    fetched = cli("models", "fetch", "cli-fetch")
    assert fetched.exit_code == 0, fetched.output
    assert (tmp_path / "weights" / "cli-fetch.pth").read_bytes() == body
    assert "present" in cli("models", "list").output
    assert cli("models", "fetch").exit_code != 0  # neither names nor --all


def test_unknown_baseline_lists_close_names() -> None:
    from plipbench.errors import ConfigError
    from plipbench.models import create_backbone

    with pytest.raises(ConfigError, match="did you mean: .*timm-resnet50"):
        create_backbone("timm-resnet5")


def test_gdrive_source_goes_through_gdown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, online) -> None:
    import gdown

    from plipbench.models.fetch import fetch_file

    calls = []

    def fake_download(*, id, output, quiet, resume, progress):  # noqa: A002 - gdown's keyword
        calls.append((id, output, resume))
        Path(output).write_bytes(b"drive bytes")
        progress(11, 11)
        return output

    monkeypatch.setattr(gdown, "download", fake_download)
    target = tmp_path / "w" / "model.pth"
    source = FetchSource(kind="gdrive", id="abc123")
    fetch_file("drive", source, target, sha256=hashlib.sha256(b"drive bytes").hexdigest(), quiet=True)
    assert target.read_bytes() == b"drive bytes" and calls == [("abc123", str(target) + ".part", True)]

    def refused(**kwargs):
        raise gdown.exceptions.FileURLRetrievalError("Too many users have viewed or downloaded this file recently")

    monkeypatch.setattr(gdown, "download", refused)
    with pytest.raises(PlipbenchError, match="Google Drive refused the download of file id zzz: Too many users"):
        fetch_file("drive", FetchSource(kind="gdrive", id="zzz"), tmp_path / "w" / "other.pth", quiet=True)

"""The feature cache (issue 12): keyed by the code that computes the features (D1), corrupt entries
reported and recomputed (D5), stale temporaries swept (D20), one computation for two processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from plipbench.data.records import PersonRecord
from plipbench.evaluation.features import FeatureStore
from plipbench.models import create_backbone

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[2]

FACTORY = '''
import os
import time

import torch

SCALE = {scale}
SLEEP = float(os.environ.get("FACTORY_SLEEP", "0"))


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 4, 3)

    def forward(self, x):
        if SLEEP:
            with open(os.environ["FACTORY_LOG"], "a") as fh:
                fh.write(f"{{os.getpid()}}\\n")
            time.sleep(SLEEP)
        return self.conv(x).mean((2, 3)) * SCALE


def build(device="cpu"):
    meta = {{"name": "user-net", "family": "user", "embedding_dim": 4, "num_parameters": 112}}
    return Net(), meta, {{"size": [16, 8], "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}}
'''


def _factory(path: Path, scale: float = 1.0) -> str:
    path.write_text(FACTORY.format(scale=scale))
    return f"{path}:build"


def _records(root: Path, n: int = 6) -> list[PersonRecord]:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (32, 16, 3), dtype=np.uint8)).save(root / f"{i}.png")
        out.append(PersonRecord(image_path=root / f"{i}.png", pid=i))
    return out


@pytest.fixture()
def setup(tmp_path, monkeypatch):
    monkeypatch.setenv("PLIPBENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path, _records(tmp_path / "images"), tmp_path / "cache" / "features"


def _extract(spec: str, records, cache: Path) -> tuple[torch.Tensor, FeatureStore]:
    store = FeatureStore(create_backbone(spec), cache_dir=cache)
    return store.image_features(records), store


# -- D1 ------------------------------------------------------------------------------------------
def test_fixing_a_factory_forward_recomputes_features_with_the_same_weights(setup) -> None:
    tmp, records, cache = setup
    spec = _factory(tmp / "net.py", scale=1.0)
    first, store = _extract(spec, records, cache)
    assert store.stats["misses"] == 1
    fingerprint = store.backbone.fingerprint
    _factory(tmp / "net.py", scale=2.0)  # same weights, fixed forward
    second, store = _extract(spec, records, cache)
    assert store.backbone.fingerprint == fingerprint  # the weights fingerprint is unchanged...
    assert store.stats == {**store.stats, "hits": 0, "misses": 1}  # ...but the features are recomputed
    assert torch.allclose(second, 2 * first)
    third, store = _extract(spec, records, cache)  # unchanged code: a hit
    assert store.stats["hits"] == 1 and torch.equal(third, second)


def test_upgrading_plipbench_recomputes_features(setup, monkeypatch) -> None:
    import plipbench

    tmp, records, cache = setup
    spec = _factory(tmp / "net.py")
    _extract(spec, records, cache)
    monkeypatch.setattr(plipbench, "__version__", "99.0.0")
    _, store = _extract(spec, records, cache)
    assert store.stats["misses"] == 1 and store.stats["hits"] == 0


def test_code_sources_name_the_adapter_and_the_user_module(setup, monkeypatch) -> None:
    tmp, _, _ = setup
    (tmp / "pkg").mkdir()
    _factory(tmp / "pkg" / "my_user_net_mod.py")
    monkeypatch.syspath_prepend(str(tmp / "pkg"))
    backbone = create_backbone("python:my_user_net_mod:build")
    files = backbone.source_files()
    assert str(tmp / "pkg" / "my_user_net_mod.py") in files
    assert any(f.endswith(os.path.join("adapters", "user.py")) for f in files)
    plip = create_backbone("random:plip-mini")
    plip_files = plip.source_files()
    assert any(f.endswith(os.path.join("adapters", "random_init.py")) for f in plip_files)
    assert any(os.path.join("models", "plip") in f for f in plip_files)
    assert not any(f.startswith(os.path.dirname(torch.__file__)) for f in plip_files)


def test_precision_is_part_of_the_key(setup) -> None:
    tmp, records, cache = setup
    spec = _factory(tmp / "net.py")
    store = FeatureStore(create_backbone(spec), cache_dir=cache)
    store.image_features(records)
    store.backbone.set_precision("bf16")
    store.image_features(records)
    assert store.stats["misses"] == 2


def test_a_cached_file_of_another_shape_is_recomputed(setup, capsys) -> None:
    from safetensors.torch import save_file

    tmp, records, cache = setup
    spec = _factory(tmp / "net.py")
    first, _ = _extract(spec, records, cache)
    (path,) = list(cache.rglob("image-*.safetensors"))
    for wrong in (torch.zeros(len(records) - 1, 4), torch.zeros(len(records), 5)):
        save_file({"features": wrong}, str(path))
        again, store = _extract(spec, records, cache)
        assert store.stats["misses"] == 1 and torch.equal(again, first)
        assert str(path) in capsys.readouterr().err


def test_an_encoder_returning_another_dimension_is_refused(setup) -> None:
    from plipbench.errors import PlipbenchError

    tmp, records, cache = setup
    (tmp / "wide.py").write_text(FACTORY.format(scale=1.0).replace('"embedding_dim": 4', '"embedding_dim": 3'))
    with pytest.raises(PlipbenchError, match=r"4-d embeddings .*expected \(6, 3\)"):
        _extract(f"{tmp / 'wide.py'}:build", records, cache)
    assert not list(cache.rglob("*.safetensors"))


# -- D5 ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("damage", ["truncated", "foreign", "garbage", "empty"])
def test_a_corrupt_cached_file_is_reported_deleted_and_recomputed(setup, capsys, damage) -> None:
    from safetensors.torch import save_file

    tmp, records, cache = setup
    spec = _factory(tmp / "net.py")
    first, _ = _extract(spec, records, cache)
    (path,) = list(cache.rglob("image-*.safetensors"))
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:-20])
    elif damage == "foreign":
        save_file({"weights": torch.zeros(6, 4)}, str(path))
    elif damage == "garbage":
        path.write_bytes(b"\x00" * 64)
    else:
        path.write_bytes(b"")
    capsys.readouterr()
    again, store = _extract(spec, records, cache)  # no traceback
    assert torch.equal(again, first) and store.stats["misses"] == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning: ") and str(path) in err[0]
    _, store = _extract(spec, records, cache)  # rewritten: a hit again
    assert store.stats["hits"] == 1


# -- D20 -----------------------------------------------------------------------------------------
def test_stale_temporaries_are_swept_fresh_ones_kept(setup) -> None:
    tmp, records, cache = setup
    spec = _factory(tmp / "net.py")
    _, store = _extract(spec, records, cache)
    stale = store.cache_dir / ".image-0123.safetensors.abcd.tmp"
    fresh = store.cache_dir / ".image-4567.safetensors.efgh.tmp"
    stale.write_bytes(b"half written")
    fresh.write_bytes(b"being written")
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    _extract(spec, records, cache)
    assert not stale.exists() and fresh.exists()


# -- concurrency ---------------------------------------------------------------------------------
WORKER = '''
import json, sys, time
from pathlib import Path
import torch
torch.set_num_threads(1)
from plipbench.data.records import PersonRecord
from plipbench.evaluation.features import FeatureStore
from plipbench.models import create_backbone

spec, images, cache, ready, name = sys.argv[1:6]
records = [PersonRecord(image_path=p, pid=i) for i, p in enumerate(sorted(Path(images).glob("*.png")))]
backbone = create_backbone(spec)
Path(ready, name).touch()
while len(list(Path(ready).iterdir())) < 2:  # start together
    time.sleep(0.05)
store = FeatureStore(backbone, cache_dir=cache, batch_size=2)
features = store.image_features(records)
print(json.dumps({"hits": store.stats["hits"], "misses": store.stats["misses"], "sum": float(features.sum())}))
'''


def test_two_processes_compute_an_entry_once(setup) -> None:
    tmp, _, cache = setup
    spec = _factory(tmp / "net.py")
    (tmp / "ready").mkdir()
    (tmp / "worker.py").write_text(textwrap.dedent(WORKER))
    env = os.environ | {"FACTORY_SLEEP": "0.4", "FACTORY_LOG": str(tmp / "forward.log"),
                        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    procs = [subprocess.Popen([sys.executable, str(tmp / "worker.py"), spec, str(tmp / "images"), str(cache),
                               str(tmp / "ready"), name], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for name in ("a", "b")]
    outs = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        outs.append(json.loads(out.strip().splitlines()[-1]))
    assert sorted((o["hits"], o["misses"]) for o in outs) == [(0, 1), (1, 0)]
    assert outs[0]["sum"] == outs[1]["sum"]
    assert len(set((tmp / "forward.log").read_text().split())) == 1  # one process ran the encoder

"""The zero-shot attribute twins: synth-pa100k written as PETA_ZS / RAP_ZS pickles, read back by the restricted reader."""

from __future__ import annotations

import json

import pytest

from plipbench.data.readers import read_dataset
from plipbench.data.readers.safe_pickle import ALLOWED_GLOBALS, load_restricted, pickle_globals
from plipbench.data.synth import generate
from plipbench.data.synth.vocab import PA100K_ATTRIBUTES

TINY = {"identities": 12, "images_per_id": 3, "image_size": (32, 16), "workers": 1, "progress": False}


@pytest.mark.parametrize(("layout", "folder"), [("peta-zs", "images"), ("rap-zs", "RAP_dataset")])
def test_zero_shot_twin_reads_back(tmp_path, layout, folder):
    manifest = generate("synth-pa100k", tmp_path / "a", layout=layout, **TINY)
    generate("synth-pa100k", tmp_path / "b", layout=layout, **TINY)
    pkl = tmp_path / "a" / "dataset_zs_run0.pkl"
    assert pkl.read_bytes() == (tmp_path / "b" / "dataset_zs_run0.pkl").read_bytes()  # deterministic
    assert set(pickle_globals(pkl.read_bytes(), pkl)) <= ALLOWED_GLOBALS
    assert load_restricted(pkl)["root"].startswith("/nonexistent/")  # an absolute root, as in the real files
    ds = read_dataset(layout, tmp_path / "a")
    assert ds.summary() == manifest["splits"] and ds.attribute_names == list(PA100K_ATTRIBUTES)
    assert all(r.image_path.parent == tmp_path / "a" / folder and r.image_path.is_file() for r in ds.records)
    sidecar = json.loads((tmp_path / "a" / manifest["sidecar"]).read_text())
    by_path = {tmp_path / "a" / rel: entry for rel, entry in sidecar.items()}
    assert all(list(r.attributes) == by_path[r.image_path]["pa100k"] for r in ds.records)
    people = {s: {json.dumps(by_path[r.image_path]["identity"], sort_keys=True) for r in ds.split(s)}
              for s in ("train", "val", "test")}
    assert not people["train"] & people["test"] and not people["val"] & people["test"]  # identity-disjoint splits
    trainval = read_dataset(layout, tmp_path / "a", trainval=True)
    assert trainval.splits() == {"train": ds.splits()["train"] + ds.splits()["val"], "test": ds.splits()["test"]}

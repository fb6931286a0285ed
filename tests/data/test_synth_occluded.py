"""The synthetic occluded-ReID twin: heavy occluders on every query, written in both Occluded-Duke layouts."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from plipbench.data.readers import read_dataset
from plipbench.data.synth import PRESETS, generate
from plipbench.data.synth.generate import plan
from plipbench.data.synth.identity import derive_rng, identity_for
from plipbench.data.synth.render import render_person
from plipbench.data.synth.scenes import sample_look

TINY = {"identities": 24, "images_per_id": 5, "image_size": (64, 32), "workers": 1, "progress": False}


def test_heavy_occluders_hide_about_half_the_person():
    visible = []
    for i in range(30):
        ident = identity_for("test-occluders", 0, i)
        look = dataclasses.replace(sample_look(derive_rng("look", i)), occlusion=0.0)
        _, clear = render_person(ident, "front", derive_rng("render", i), look=look, parts=True)
        _, hidden = render_person(ident, "front", derive_rng("render", i), look=look, parts=True, heavy_occluder=True)
        visible.append((hidden[..., 0] > 0).sum() / (clear[..., 0] > 0).sum())  # person pixels left (LIP labels)
    assert 0.35 < float(np.mean(visible)) < 0.7 and max(visible) <= 1.0


def test_only_the_occluded_preset_plans_heavy_occluders():
    for name, preset in PRESETS.items():
        jobs = plan(preset, preset.layout, 20, max(preset.min_images_per_id, 3), 0)
        occluded = {s: [j.occluded for j in jobs if j.split == s] for s in {j.split for j in jobs}}
        if name != "synth-occluded-duke":
            assert not any(any(v) for v in occluded.values()), name  # so their images are byte-for-byte unchanged
        else:
            assert all(occluded["query"]) and 0 < sum(occluded["gallery"]) < len(occluded["gallery"])


@pytest.mark.parametrize("layout", ["occluded-duke", "occluded-duke-lists"])
def test_twin_is_read_back_by_the_occluded_duke_reader(tmp_path, layout):
    manifest = generate("synth-occluded-duke", tmp_path / "copy", layout=layout, **TINY)
    ds = read_dataset("occluded-duke", tmp_path / "copy")
    assert manifest["layout"] == "occluded-duke" and ds.summary() == manifest["splits"]
    assert ds.options["source"] == ("lists" if layout == "occluded-duke-lists" else "folders")
    sidecar = json.loads((tmp_path / "copy" / manifest["sidecar"]).read_text())
    by_name = {rel.rsplit("/", 1)[-1]: entry for rel, entry in sidecar.items()}
    assert all(by_name[r.image_path.name].get("occluded") for r in ds.split("query"))
    assert not all(by_name[r.image_path.name].get("occluded") for r in ds.split("gallery"))
    assert not {r.pid for r in ds.split("train")} & {r.pid for r in ds.split("query", "gallery")}
    if layout == "occluded-duke-lists":  # like the real lists, some queries come from the Duke gallery folder
        folders = {r.image_path.parent.name for r in ds.split("query")}
        assert folders == {"query", "bounding_box_test"}
        assert (tmp_path / "copy" / "Occluded_Duke" / "query.list").is_file()

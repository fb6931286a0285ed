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


def test_only_the_occluded_and_partial_presets_change_their_queries():
    from plipbench.data.synth.presets import SEARCH_LAYOUTS

    for name, preset in PRESETS.items():
        if preset.layout in SEARCH_LAYOUTS:  # scene frames: composed of person renders, planned elsewhere
            continue
        jobs = plan(preset, preset.layout, 20, max(preset.min_images_per_id, 3), 0)
        occluded = {s: [j.occluded for j in jobs if j.split == s] for s in {j.split for j in jobs}}
        partial = {s: [j.partial for j in jobs if j.split == s] for s in {j.split for j in jobs}}
        if name == "synth-occluded-duke":
            assert all(occluded["query"]) and 0 < sum(occluded["gallery"]) < len(occluded["gallery"])
        elif name == "synth-occluded-reid":
            assert all(occluded["query"]) and not any(occluded["gallery"])
        elif name == "synth-partial-reid":
            assert all(partial["query"]) and not any(partial["gallery"]) and not any(any(v) for v in occluded.values())
        else:  # so their images are byte-for-byte what they were
            assert not any(any(v) for v in occluded.values()) and not any(any(v) for v in partial.values()), name


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


@pytest.mark.parametrize(("preset", "layout", "reader", "suffix"), [
    ("synth-occluded-reid", "occluded-reid", "occluded-reid", ".jpg"),
    ("synth-occluded-reid", "occluded-reid-raw", "occluded-reid", ".tif"),
    ("synth-partial-reid", "partial-reid", "partial-reid", ".jpg"),
])
def test_test_only_twins(tmp_path, preset, layout, reader, suffix):
    manifest = generate(preset, tmp_path / "copy", layout=layout, identities=6, images_per_id=4, image_size=(64, 32),
                        workers=1, progress=False)
    ds = read_dataset(reader, tmp_path / "copy")
    assert ds.summary() == manifest["splits"] and set(ds.splits()) == {"query", "gallery"}
    assert {r.camid for r in ds.split("query")} == {0} and {r.camid for r in ds.split("gallery")} == {1}
    assert {r.pid for r in ds.split("query")} == {r.pid for r in ds.split("gallery")} and len(ds.split("query")) == 18
    assert {r.image_path.suffix for r in ds.records} == {suffix}
    sidecar = json.loads((tmp_path / "copy" / manifest["sidecar"]).read_text())
    flag = "partial" if preset == "synth-partial-reid" else "occluded"
    assert all(e.get(flag) for e in sidecar.values() if e["split"] == "query")
    assert not any(e.get(flag) for e in sidecar.values() if e["split"] == "gallery")

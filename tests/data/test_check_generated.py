"""Every synthetic preset, generated tiny in every layout it can be written in, passes check_dataset."""

from __future__ import annotations

import pytest

from plipbench.data.check import check_dataset

synth = pytest.importorskip("plipbench.data.synth.generate")
presets = pytest.importorskip("plipbench.data.synth.presets")

CASES = [(name, layout) for name, p in presets.PRESETS.items() for layout in p.layouts]


@pytest.mark.parametrize(("preset", "layout"), CASES)
def test_generated_copy_checks_out(tmp_path, preset, layout):
    manifest = synth.generate(preset, tmp_path / "copy", identities=12, images_per_id=4, layout=layout,
                              image_size=(32, 16), workers=1, progress=False)
    report = check_dataset(presets.READER_LAYOUTS.get(layout, layout), tmp_path / "copy")  # lip-schp: read as lip
    assert report.synthetic
    assert report.ok, report.problems
    assert report.summary == manifest["splits"]
    if presets.PRESETS[preset].task == "person-search":  # queries are boxes in gallery frames: frames decoded once
        assert report.decoded == manifest["splits"]["train"]["images"] + manifest["splits"]["gallery"]["images"]
    else:
        assert report.decoded == sum(s["images"] for s in manifest["splits"].values())


def test_contact_sheet_is_not_counted_as_a_dataset_image(tmp_path):
    from plipbench.data.synth.preview import contact_sheet

    synth.generate("synth-cuhk", tmp_path / "copy", identities=12, images_per_id=2, layout="rstpreid",
                   image_size=(32, 16), workers=1, progress=False)
    contact_sheet(tmp_path / "copy")
    assert (tmp_path / "copy" / "preview.png").is_file()
    report = check_dataset("rstpreid", tmp_path / "copy")
    assert report.ok, report.problems
    (tmp_path / "copy" / "imgs" / "stray.jpg").write_bytes((tmp_path / "copy" / "preview.png").read_bytes())
    assert any("image files on disk" in p for p in check_dataset("rstpreid", tmp_path / "copy").problems)

"""check_dataset: official sizes, missing / undecodable images, reader errors, synthetic manifests."""

from __future__ import annotations

import dataclasses
import json

import pytest
from fixtures_readers import CUHK_PEDES_RECORDS, make_market, make_pa100k, make_text_json, write_image

from plipbench.data.check import MANIFEST_NAME, QUICK_SAMPLE, check_dataset, decode_problem
from plipbench.data.readers import READERS, read_dataset
from plipbench.errors import ConfigError, DataError


def pin_official_sizes(monkeypatch, layout, root, **options):
    """Pretend the official sizes are those of the tiny fixture (so a valid fixture can pass)."""
    sizes = {s: {k: v for k, v in c.items() if k != "cameras"}
             for s, c in read_dataset(layout, root, **options).summary().items()}
    info = dataclasses.replace(READERS[layout], split_sizes=sizes, sizes_for=None)
    monkeypatch.setitem(READERS, layout, info)
    return sizes


def test_valid_copy_passes(tmp_path, monkeypatch):
    make_market(tmp_path)
    sizes = pin_official_sizes(monkeypatch, "market1501", tmp_path)
    report = check_dataset("market1501", tmp_path)
    assert report.ok and report.problems == [] and not report.synthetic
    assert report.expected == sizes and report.summary["train"]["images"] == 3
    assert report.decoded == 8  # every image decoded (junk excluded: it is not a record)


def test_real_copy_is_compared_with_official_sizes(tmp_path):
    make_market(tmp_path)
    report = check_dataset("market1501", tmp_path)
    assert not report.ok
    assert report.expected == READERS["market1501"].split_sizes
    # every mismatch is listed, not only the first
    assert "split 'train': 3 images, official 12936" in report.problems
    assert "split 'gallery': 3 identities, official 751" in report.problems
    assert len(report.problems) == 6


def test_missing_and_undecodable_images_are_all_listed(tmp_path, monkeypatch):
    make_text_json(tmp_path, "reid_raw.json", CUHK_PEDES_RECORDS, "file_path")
    pin_official_sizes(monkeypatch, "cuhk-pedes", tmp_path)
    (tmp_path / "imgs" / "train_query" / "p1_s1.jpg").unlink()
    (tmp_path / "imgs" / "CUHK01" / "0002.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (tmp_path / "imgs" / "test_query" / "p3_s9.jpg").write_bytes(b"")
    report = check_dataset("cuhk-pedes", tmp_path)
    assert not report.ok and len(report.problems) == 2
    assert report.missing_images == [tmp_path / "imgs" / "train_query" / "p1_s1.jpg"]
    assert "1 of 5 image files missing: imgs/train_query/p1_s1.jpg" in report.problems[0]
    assert sorted(p.name for p, _ in report.unreadable_images) == ["0002.png", "p3_s9.jpg"]
    assert report.problems[1].startswith("2 of 4 decoded images unreadable")


def test_decode_problem(tmp_path):
    good = write_image(tmp_path / "a.jpg")
    bad = tmp_path / "b.jpg"
    bad.write_bytes(good.read_bytes()[:40])  # truncated JPEG: header fine, data missing
    assert decode_problem(good) is None
    assert decode_problem(bad) is not None


def test_quick_samples_a_fixed_number(tmp_path):
    records = [dict(CUHK_PEDES_RECORDS[0], file_path=f"x/{i}.jpg", id=i + 1) for i in range(QUICK_SAMPLE + 8)]
    make_text_json(tmp_path, "reid_raw.json", records, "file_path")
    assert check_dataset("cuhk-pedes", tmp_path, quick=True).decoded == QUICK_SAMPLE
    assert check_dataset("cuhk-pedes", tmp_path).decoded == QUICK_SAMPLE + 8


def test_reader_error_becomes_a_problem(tmp_path):
    (tmp_path / "reid_raw.json").write_text("[{")
    report = check_dataset("cuhk-pedes", tmp_path)
    assert not report.ok and report.summary == {}
    assert len(report.problems) == 1 and "malformed JSON at line 1" in report.problems[0]


def test_missing_root_and_unknown_layout_raise(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        check_dataset("market1501", tmp_path / "nope")
    with pytest.raises(ConfigError, match="unknown dataset layout"):
        check_dataset("market", tmp_path)


def test_reader_options_reach_the_expected_sizes(tmp_path):
    from fixtures_readers import make_msmt17

    make_msmt17(tmp_path)
    plain = check_dataset("msmt17", tmp_path)
    merged = check_dataset("msmt17", tmp_path, msmt17_train_with_val=True)
    assert plain.expected["train"]["images"] == 30248 and "val" in plain.expected
    assert merged.expected["train"]["images"] == 32621 and "val" not in merged.expected
    assert merged.options["msmt17_train_with_val"] is True


# ---------------------------------------------------------------------------------------------- synthetic


def write_manifest(root, layout, **changes):
    summary = read_dataset(layout, root).summary()
    files = sum(1 for p in root.rglob("*") if p.suffix.lower() in (".jpg", ".png"))
    manifest = {"generator": "plipbench", "plipbench_version": "0", "preset": "test", "layout": layout, "seed": 0,
                "splits": summary, "files": files, "sidecar": "plipbench_synth_annotations.json"}
    manifest.update(changes)
    (root / MANIFEST_NAME).write_text(json.dumps(manifest))
    return manifest


def test_synthetic_copy_is_checked_against_its_manifest(tmp_path):
    make_market(tmp_path)
    manifest = write_manifest(tmp_path, "market1501")
    report = check_dataset("market1501", tmp_path)
    assert report.synthetic and report.ok, report.problems
    assert report.expected == manifest["splits"]
    assert manifest["files"] == 9  # the junk image is a file on disk but not a record


def test_synthetic_problems(tmp_path):
    make_market(tmp_path)
    summary = read_dataset("market1501", tmp_path).summary()
    summary["query"] = dict(summary["query"], images=5)
    write_manifest(tmp_path, "dukemtmc", splits=summary, files=3)
    write_image(tmp_path / "bounding_box_train" / "0001_c1s1_000001_01.jpg")  # query id 1 now also in train
    report = check_dataset("market1501", tmp_path)
    text = "\n".join(report.problems)
    assert "manifest layout is 'dukemtmc', checked as 'market1501'" in text
    assert "split 'train': 4 images, manifest 3" in text
    assert "split 'query': 2 images, manifest 5" in text
    assert "10 image files on disk, manifest says 3" in text
    assert "identities shared by train and query: 1" in text
    assert "identities shared by train and gallery: 1" in text


def test_synthetic_empty_split_and_missing_required_split(tmp_path):
    make_pa100k(tmp_path)
    write_manifest(tmp_path, "pa100k", splits={"train": {"images": 0}})
    report = check_dataset("pa100k", tmp_path)
    assert "manifest split 'train' is empty" in report.problems
    assert any("not in the manifest splits" in p for p in report.problems)


def test_query_identity_without_gallery_is_flagged(tmp_path):
    make_market(tmp_path)
    write_image(tmp_path / "query" / "0042_c1s1_000001_01.jpg")
    write_manifest(tmp_path, "market1501")
    report = check_dataset("market1501", tmp_path)
    assert report.problems == ["1 query identities have no gallery image (e.g. [42])"]

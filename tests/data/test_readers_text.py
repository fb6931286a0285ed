"""Text ReID readers (CUHK-PEDES, ICFG-PEDES, RSTPReid, SYNTH-PEDES) and the reader input checks."""

from __future__ import annotations

import json
import os

import pytest
from fixtures_readers import (
    CUHK_PEDES_RECORDS,
    ICFG_RECORDS,
    RSTP_RECORDS,
    SYNTH_RECORDS,
    make_text_json,
    write_image,
)

from plipbench.data.readers import read_dataset
from plipbench.errors import DataError


def test_cuhk_pedes_records(tmp_path):
    root = make_text_json(tmp_path / "CUHK-PEDES", "reid_raw.json", CUHK_PEDES_RECORDS, "file_path")
    ds = read_dataset("cuhk-pedes", tmp_path)
    assert ds.root == root
    assert [(r.split, r.pid, len(r.captions)) for r in ds] == [
        ("train", 1, 2), ("train", 1, 1), ("val", 2, 3), ("test", 3, 2), ("val", 4, 1)]  # ids raw; "dev" -> val
    assert ds.records[0].captions == ("a man in red.", "red shirt man.")
    assert ds.records[0].image_path == root / "imgs" / "train_query" / "p1_s1.jpg"
    assert ds.summary()["train"] == {"images": 2, "identities": 1, "captions": 3, "cameras": 0}


@pytest.mark.parametrize("json_name", ["ICFG-PEDES.json", "ICFG_PEDES.json"])
def test_icfg_pedes_accepts_both_file_names(tmp_path, json_name):
    make_text_json(tmp_path, json_name, ICFG_RECORDS, "file_path")
    ds = read_dataset("icfg-pedes", tmp_path)
    assert [(r.split, r.pid, r.captions) for r in ds] == [("train", 0, ("man walking.",)),
                                                          ("test", 1, ("woman standing.",))]
    assert ds.options["annotation"] == json_name


def test_rstpreid_uses_img_path(tmp_path):
    make_text_json(tmp_path / "RSTPReid", "data_captions.json", RSTP_RECORDS, "img_path")
    ds = read_dataset("rstpreid", tmp_path)
    assert [(r.split, r.pid, r.image_path.name) for r in ds] == [
        ("train", 0, "0000_c14_0031.jpg"), ("val", 5, "0005_c2_0001.jpg"), ("test", 9, "0009_c3_0002.jpg")]
    assert ds.summary()["test"]["captions"] == 2


def test_synth_pedes_records(tmp_path):
    make_text_json(tmp_path, "synthpedes_dataset.json", SYNTH_RECORDS, "file_path", image_base="")
    ds = read_dataset("synth-pedes", tmp_path)
    first, second = ds.records
    assert {r.split for r in ds} == {"train"}
    assert first.image_path == tmp_path / "Part1" / "7" / "1.jpg"
    assert first.attribute_phrases == ("man", "black hair", "black shirt", "pink shorts", "black shoes", "unknown")
    assert first.prompt_captions == ("a man in a black shirt.",)
    assert second.pid == 8 and len(second.captions) == 3


def _write(root, name, text):
    root.mkdir(parents=True, exist_ok=True)
    (root / name).write_text(text)


def test_malformed_json_names_the_position(tmp_path):
    _write(tmp_path, "reid_raw.json", '[{"split": "train",\n "id": 1,, }]')
    with pytest.raises(DataError, match=r"reid_raw\.json: malformed JSON at line 2 column 10 \(char 29\)"):
        read_dataset("cuhk-pedes", tmp_path)


def test_missing_key_names_record_and_key(tmp_path):
    records = [dict(r) for r in RSTP_RECORDS]
    del records[1]["captions"]
    make_text_json(tmp_path, "data_captions.json", records[:1], "img_path")
    _write(tmp_path, "data_captions.json", json.dumps(records))
    with pytest.raises(DataError, match=r"data_captions\.json: record 1: missing key\(s\) 'captions'"):
        read_dataset("rstpreid", tmp_path)


def test_wrong_types_are_data_errors(tmp_path):
    _write(tmp_path, "reid_raw.json", json.dumps({"not": "a list"}))
    with pytest.raises(DataError, match="expected a JSON list"):
        read_dataset("cuhk-pedes", tmp_path)
    bad = [dict(CUHK_PEDES_RECORDS[0], captions="one string")]
    _write(tmp_path, "reid_raw.json", json.dumps(bad))
    with pytest.raises(DataError, match="record 0 key 'captions': expected a list of strings"):
        read_dataset("cuhk-pedes", tmp_path)
    bad = [dict(CUHK_PEDES_RECORDS[0], id="seven")]
    _write(tmp_path, "reid_raw.json", json.dumps(bad))
    with pytest.raises(DataError, match="record 0 key 'id': expected an integer"):
        read_dataset("cuhk-pedes", tmp_path)


@pytest.mark.parametrize("bad_path", ["../../etc/passwd", "/etc/passwd", "train/../../secret.jpg", "..", ""])
def test_paths_escaping_the_root_are_refused(tmp_path, bad_path):
    records = [dict(CUHK_PEDES_RECORDS[0]), dict(CUHK_PEDES_RECORDS[1], file_path=bad_path)]
    _write(tmp_path, "reid_raw.json", json.dumps(records))
    with pytest.raises(DataError, match=r"reid_raw\.json: record 1: image path"):
        read_dataset("cuhk-pedes", tmp_path)


def test_symlink_escape_is_refused_but_symlinked_image_folder_is_fine(tmp_path):
    outside = write_image(tmp_path / "outside" / "secret.jpg")
    root = tmp_path / "ds"
    make_text_json(root, "reid_raw.json", CUHK_PEDES_RECORDS[:1], "file_path")
    os.symlink(outside, root / "imgs" / "link.jpg")
    os.symlink(tmp_path / "outside", root / "imgs" / "linkdir")
    for rel in ("link.jpg", "linkdir/secret.jpg"):
        records = [dict(CUHK_PEDES_RECORDS[0], file_path=rel)]
        _write(root, "reid_raw.json", json.dumps(records))
        with pytest.raises(DataError, match="outside the dataset folder"):
            read_dataset("cuhk-pedes", root)
    # the whole image folder being a link (imgs -> another disk) is allowed
    other = tmp_path / "ds2"
    make_text_json(tmp_path / "store", "unused.json", CUHK_PEDES_RECORDS[:1], "file_path")
    other.mkdir()
    os.symlink(tmp_path / "store" / "imgs", other / "imgs")
    _write(other, "reid_raw.json", json.dumps(CUHK_PEDES_RECORDS[:1]))
    assert len(read_dataset("cuhk-pedes", other)) == 1


def test_missing_annotation_file(tmp_path):
    (tmp_path / "imgs").mkdir()
    with pytest.raises(DataError, match="no rstpreid dataset found: expected data_captions.json"):
        read_dataset("rstpreid", tmp_path)

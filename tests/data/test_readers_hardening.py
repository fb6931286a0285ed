"""Hostile dataset copies: non-UTF-8 bytes, symbolic links out of the folder, out-of-range identities, bad slots.

Each is refused at read time with a DataError naming the file (issue 12 D10, D13, D17), so that
``data check`` reports it and eval never sees it.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures_readers import (
    CUHK_PEDES_RECORDS,
    SYNTH_RECORDS,
    make_market,
    make_msmt17,
    make_text_json,
    write_image,
)
from typer.testing import CliRunner

from plipbench.cli import app
from plipbench.data.check import check_dataset
from plipbench.data.readers import read_dataset
from plipbench.errors import DataError

PLIPBENCH = Path(sys.executable).parent / "plipbench"
BAD_NAME = os.fsdecode(b"0001_c1s1_\xff\xfe_00.jpg")  # bytes a Linux file system accepts, not UTF-8


# ------------------------------------------------------------------------------------- D10: UTF-8


def test_msmt17_list_with_non_utf8_bytes_names_the_file_and_line(tmp_path):
    make_msmt17(tmp_path)
    lst = tmp_path / "list_gallery.txt"
    lst.write_bytes(lst.read_bytes() + b"0002/0002_000_02_0113noon_\xff\xfe_0.jpg 2\n")
    with pytest.raises(DataError, match=r"line 3: not UTF-8 text") as err:
        read_dataset("msmt17", tmp_path)
    assert err.value.path == lst
    report = check_dataset("msmt17", tmp_path, quick=True)
    assert not report.ok and any("list_gallery.txt: line 3: not UTF-8" in p for p in report.problems)


def test_data_check_and_doctor_cli_survive_a_non_utf8_list(tmp_path):
    data = tmp_path / "data"
    make_msmt17(data / "MSMT17_V1")
    lst = data / "MSMT17_V1" / "list_train.txt"
    lst.write_bytes(b"\xff" + lst.read_bytes())
    env = {**os.environ, "PLIPBENCH_DATA": str(data)}
    proc = subprocess.run([str(PLIPBENCH), "data", "check", "-l", "msmt17", "-r", str(data)], capture_output=True,
                          text=True, env=env)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "list_train.txt: line 1: not UTF-8" in proc.stdout
    proc = subprocess.run([str(PLIPBENCH), "doctor", "--json"], capture_output=True, text=True, env=env)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    rows = {r["layout"]: r for r in json.loads(proc.stdout)["datasets"]}
    assert rows["msmt17"]["status"] == "1 problem(s)"


def test_market_file_name_with_non_utf8_bytes_is_refused_at_read_time(tmp_path):
    make_market(tmp_path)
    write_image(tmp_path / "bounding_box_test" / BAD_NAME)
    with pytest.raises(DataError, match=r"file name '0001_c1s1_\\xff\\xfe_00.jpg' is not valid UTF-8") as err:
        read_dataset("market1501", tmp_path)
    assert err.value.path == tmp_path / "bounding_box_test"
    str(err.value).encode("utf-8")  # the message itself can be printed anywhere
    result = CliRunner().invoke(app, ["data", "check", "--layout", "market1501", "--root", str(tmp_path)])
    assert result.exit_code == 2 and "is not valid UTF-8" in result.output, result.output


def test_annotation_with_lone_surrogates_is_refused(tmp_path):
    records = copy.deepcopy(CUHK_PEDES_RECORDS)
    make_text_json(tmp_path, "reid_raw.json", records, "file_path")
    text = (tmp_path / "reid_raw.json").read_text().replace("p1_s2.jpg", "p1_\\udcff.jpg")
    (tmp_path / "reid_raw.json").write_text(text)
    with pytest.raises(DataError, match=r"record 1: image path .* is not valid UTF-8"):
        read_dataset("cuhk-pedes", tmp_path)
    text = text.replace("p1_\\udcff.jpg", "p1_s2.jpg").replace("a man in red again.", "again \\ud800")
    (tmp_path / "reid_raw.json").write_text(text)
    with pytest.raises(DataError, match=r"record 1 key 'captions': string .* is not valid UTF-8"):
        read_dataset("cuhk-pedes", tmp_path)


# ----------------------------------------------------------------------------------- D13: symlinks


@pytest.mark.parametrize("layout", ["market1501", "dukemtmc"])
def test_market_style_readers_refuse_links_out_of_the_folder(tmp_path, layout):
    root = tmp_path / "copy"
    make_market(root) if layout == "market1501" else make_market(root, {
        "bounding_box_train": ["0005_c2_f0046182.jpg"], "query": ["0011_c1_f0100000.jpg"],
        "bounding_box_test": ["0011_c4_f0100500.jpg"]})
    secret = write_image(tmp_path / "outside" / "secret.jpg")
    before = len(read_dataset(layout, root).split("query"))
    link = root / "query" / "0042_c1s1_000001_00.jpg"
    link.symlink_to(secret)
    with pytest.raises(DataError, match=r"0042_c1s1_000001_00.jpg' resolves \(through a symbolic link\) outside"):
        read_dataset(layout, root)
    link.unlink()
    link.symlink_to(root / "query" / sorted(os.listdir(root / "query"))[0])  # inside the folder: fine
    assert len(read_dataset(layout, root).split("query")) == before + 1


def test_market_split_folder_may_itself_be_a_link(tmp_path):
    real = make_market(tmp_path / "big")
    root = tmp_path / "copy"
    root.mkdir()
    for folder in ("bounding_box_train", "query", "bounding_box_test"):
        (root / folder).symlink_to(real / folder, target_is_directory=True)
    assert len(read_dataset("market1501", root)) == len(read_dataset("market1501", real))


# ---------------------------------------------------------------------------- D17: ids and slots


def test_synth_pedes_attributes_need_six_slots(tmp_path):
    records = copy.deepcopy(SYNTH_RECORDS)
    records[1]["attributes"] = ["woman,red coat,boots"]
    make_text_json(tmp_path, "synthpedes_dataset.json", records, "file_path", image_base="")
    with pytest.raises(DataError, match=r"record 1 key 'attributes': expected 6 comma-separated phrases.*got 3"):
        read_dataset("synth-pedes", tmp_path)


@pytest.mark.parametrize("bad_id", [10**30, -3, 2**63])
def test_text_ids_must_be_non_negative_int64(tmp_path, bad_id):
    records = copy.deepcopy(CUHK_PEDES_RECORDS)
    records[2]["id"] = bad_id
    make_text_json(tmp_path, "reid_raw.json", records, "file_path")
    with pytest.raises(DataError, match=r"record 2 key 'id': identity .* is out of range"):
        read_dataset("cuhk-pedes", tmp_path)
    records[2]["id"] = 2**63 - 1
    (tmp_path / "reid_raw.json").write_text(json.dumps(records))
    assert max(r.pid for r in read_dataset("cuhk-pedes", tmp_path)) == 2**63 - 1


def test_synth_pedes_id_of_10_to_the_30_is_refused(tmp_path):
    records = copy.deepcopy(SYNTH_RECORDS)
    records[0]["id"] = 10**30
    make_text_json(tmp_path, "synthpedes_dataset.json", records, "file_path", image_base="")
    with pytest.raises(DataError, match=r"record 0 key 'id': identity 1000000000000000000000000000000 is out"):
        read_dataset("synth-pedes", tmp_path)


def test_market_and_msmt_ids_must_fit_int64(tmp_path):
    make_market(tmp_path / "m")
    write_image(tmp_path / "m" / "query" / f"{10**30}_c1s1_000001_00.jpg")
    with pytest.raises(DataError, match="64-bit"):
        read_dataset("market1501", tmp_path / "m")
    make_msmt17(tmp_path / "s")
    lst = tmp_path / "s" / "list_query.txt"
    lst.write_text(lst.read_text().replace(" 0\n", f" {10**30}\n"))
    with pytest.raises(DataError, match=r"list_query.txt: line 1: label: identity .* is out of range"):
        read_dataset("msmt17", tmp_path / "s")
    lst.write_text(lst.read_text().replace(f" {10**30}\n", " -1\n"))
    with pytest.raises(DataError, match="out of range"):
        read_dataset("msmt17", tmp_path / "s")


def test_non_utf8_dataset_root_is_refused_before_it_is_printed(tmp_path):
    root = Path(os.fsdecode(os.fsencode(tmp_path) + b"/copy-\xff"))
    make_market(root)
    with pytest.raises(DataError, match=r"dataset root '.*copy-\\xff' is not valid UTF-8"):
        check_dataset("market1501", root)
    with pytest.raises(DataError, match=r"dataset folder '.*copy-\\xff' is not valid UTF-8"):
        read_dataset("market1501", root)

"""Occluded-Duke (lists over DukeMTMC-reID, or converted folders) and the test-only Occluded-REID, Partial-REID and
Partial-iLIDS readers, on tiny hand-made copies; bad input is one DataError naming the file (exit 2 from the CLI)."""

from __future__ import annotations

import shutil

import pytest
from fixtures_occluded import (
    OCC_DUKE_EXPECTED,
    OCC_DUKE_LISTS,
    OCC_REID_FASTREID,
    OCC_REID_RAW,
    PARTIAL_REID,
    TEST_ONLY_EXPECTED,
    make_occluded_duke_lists,
    make_test_only,
)
from fixtures_readers import DUKE_EXPECTED, DUKE_FILES, make_market
from typer.testing import CliRunner

from plipbench.cli import app
from plipbench.data.readers import find_root, read_dataset
from plipbench.errors import DataError


def triples(ds):
    return [(r.split, r.pid, r.camid) for r in ds.records]


def test_occluded_duke_lists_over_a_duke_copy_next_to_them(tmp_path):
    make_occluded_duke_lists(tmp_path)
    for root in (tmp_path, tmp_path / "Occluded_Duke"):
        ds = read_dataset("occluded-duke", root)
        assert triples(ds) == OCC_DUKE_EXPECTED
        assert ds.root == tmp_path / "Occluded_Duke" and ds.options["source"] == "lists"
    # query image 0012_c3 lives in Duke's gallery folder: found in any of the three folders
    query = {r.image_path.name: r.image_path.parent.name for r in ds.split("query")}
    assert query == {"0011_c1_f0100000.jpg": "query", "0012_c3_f0200000.jpg": "bounding_box_test"}
    assert all(r.image_path.is_file() for r in ds.records)
    assert find_root("occluded-duke", tmp_path) == tmp_path / "Occluded_Duke"


def test_occluded_duke_duke_root_option(tmp_path):
    make_occluded_duke_lists(tmp_path / "a")
    shutil.move(tmp_path / "a" / "DukeMTMC-reID", tmp_path / "elsewhere" / "dukemtmc-reid" / "DukeMTMC-reID")
    with pytest.raises(DataError, match="need the DukeMTMC-reID images.*duke_root"):
        read_dataset("occluded-duke", tmp_path / "a")
    ds = read_dataset("occluded-duke", tmp_path / "a", duke_root=str(tmp_path / "elsewhere"))
    assert triples(ds) == OCC_DUKE_EXPECTED
    ds = read_dataset("occluded-duke", tmp_path / "a", duke_root="../../elsewhere/dukemtmc-reid/DukeMTMC-reID")
    assert triples(ds) == OCC_DUKE_EXPECTED and ds.options["duke_root"].startswith("../")
    with pytest.raises(DataError, match="option duke_root: no DukeMTMC-reID copy"):
        read_dataset("occluded-duke", tmp_path / "a", duke_root=str(tmp_path / "nowhere"))


def test_occluded_duke_converted_folders_read_like_duke(tmp_path):
    make_market(tmp_path / "Occluded_Duke", DUKE_FILES)
    ds = read_dataset("occluded-duke", tmp_path)
    assert triples(ds) == DUKE_EXPECTED and ds.options["source"] == "folders"


@pytest.mark.parametrize(
    ("list_name", "line", "problem"),
    [
        ("query.list", "0042_c1_f0000001.jpg", r"query.list: line 3: image 0042_c1_f0000001.jpg not found"),
        ("gallery.list", "0011_c1_f0100000.jpg", r"gallery.list: line 4: image 0011_c1_f0100000.jpg is listed twice "
                                                 r"\(first in query.list line 1\)"),
        ("train.list", "readme.txt", r"train.list: line 4: 'readme.txt' is not a Duke image name"),
    ],
)
def test_occluded_duke_bad_lists_name_the_file_and_line(tmp_path, list_name, line, problem):
    lists = {k: list(v) for k, v in OCC_DUKE_LISTS.items()}
    lists[list_name].append(line)
    make_occluded_duke_lists(tmp_path, lists)
    with pytest.raises(DataError, match=problem):
        read_dataset("occluded-duke", tmp_path)


def test_occluded_duke_list_lines_may_carry_a_folder_and_blank_lines(tmp_path):
    lists = {k: [f"bounding_box_train/{n}" if k == "train.list" else n for n in v] + [""]
             for k, v in OCC_DUKE_LISTS.items()}
    make_occluded_duke_lists(tmp_path, lists)
    assert triples(read_dataset("occluded-duke", tmp_path)) == OCC_DUKE_EXPECTED


@pytest.mark.parametrize("files", [OCC_REID_RAW, OCC_REID_FASTREID], ids=["raw-tif-per-id", "fast-reid"])
def test_occluded_reid_both_layouts(tmp_path, files):
    folder = "Occluded_REID" if files is OCC_REID_RAW else "OccludedREID"
    make_test_only(tmp_path / folder, files)
    ds = read_dataset("occluded-reid", tmp_path)
    assert triples(ds) == TEST_ONLY_EXPECTED  # query camera 0, gallery camera 1: the same-camera filter drops nothing
    assert ds.root == tmp_path / folder and not ds.split("train")
    assert {r.image_path.suffix for r in ds.records} == ({".tif"} if files is OCC_REID_RAW else {".jpg"})


def test_partial_reid_and_partial_ilids(tmp_path):
    make_test_only(tmp_path / "Partial_REID", PARTIAL_REID)
    assert triples(read_dataset("partial-reid", tmp_path)) == TEST_ONLY_EXPECTED
    make_test_only(tmp_path / "PartialiLIDS", OCC_REID_FASTREID)
    assert triples(read_dataset("partial-ilids", tmp_path)) == TEST_ONLY_EXPECTED


def test_test_only_bad_input(tmp_path):
    make_test_only(tmp_path / "a", {**OCC_REID_RAW, "whole_body_images": ["001/002_01.tif"]})
    with pytest.raises(DataError, match=r"002_01.tif: identity 2 of the file name differs from its folder '001'"):
        read_dataset("occluded-reid", tmp_path / "a")
    make_test_only(tmp_path / "b", {**OCC_REID_FASTREID, "gallery": ["person.jpg"]})
    with pytest.raises(DataError, match=r"person.jpg: file name does not start with '<pid>_'"):
        read_dataset("occluded-reid", tmp_path / "b")
    make_test_only(tmp_path / "c", {"query": ["001_01.jpg"]})
    with pytest.raises(DataError, match="no occluded-reid dataset found"):
        read_dataset("occluded-reid", tmp_path / "c")


def test_data_check_exits_2_with_one_line_naming_the_list(tmp_path):
    lists = {k: list(v) for k, v in OCC_DUKE_LISTS.items()}
    lists["query.list"].append("0042_c1_f0000001.jpg")
    make_occluded_duke_lists(tmp_path, lists)
    result = CliRunner().invoke(app, ["data", "check", "-l", "occluded-duke", "-r", str(tmp_path)])
    assert result.exit_code == 2
    problems = [line for line in result.output.splitlines() if line.startswith("problem:")]
    assert len(problems) == 1 and "query.list: line 3" in problems[0] and "Traceback" not in result.output


def test_data_check_compares_with_the_official_sizes(tmp_path):
    make_test_only(tmp_path / "Occluded_REID", OCC_REID_RAW)
    result = CliRunner().invoke(app, ["data", "check", "-l", "occluded-reid", "-r", str(tmp_path)])
    assert result.exit_code == 2 and "official 1000" in result.output and "decoded 6 image(s)" in result.output

"""Image ReID readers (Market-1501, DukeMTMC-reID, MSMT17 V1/V2, CUHK03-NP) on tiny hand-made copies."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from fixtures_readers import (
    DUKE_EXPECTED,
    DUKE_FILES,
    MARKET_EXPECTED,
    make_cuhk03_folders,
    make_cuhk03_mat,
    make_market,
    make_msmt17,
    write_image,
)

from plipbench.data.readers import LAYOUT_NAMES, READERS, find_root, parse_options, read_dataset
from plipbench.errors import ConfigError, DataError


def triples(ds):
    return [(r.split, r.pid, r.camid) for r in ds.records]


def test_registry_covers_every_layout_and_stays_light():
    assert set(READERS) == set(LAYOUT_NAMES)
    for name, info in READERS.items():
        assert info.name == name and info.tree.strip() and info.folder_names and info.required_splits
        for split, counts in info.split_sizes.items():
            assert set(counts) <= {"images", "identities", "captions"}, (name, split)
    import subprocess

    code = ("import sys, plipbench.data.readers, plipbench.data.check; "
            "print(sorted(m for m in ('torch', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_unknown_layout_lists_the_known_ones(tmp_path):
    with pytest.raises(ConfigError, match="market1501.*rapv2"):
        read_dataset("market-1501", tmp_path)


def test_unknown_option_is_a_config_error(tmp_path):
    make_market(tmp_path)
    with pytest.raises(ConfigError, match="does not accept option.*partition"):
        read_dataset("market1501", tmp_path, partition=1)
    with pytest.raises(ConfigError, match="true/false"):
        parse_options("msmt17", ["msmt17_train_with_val=maybe"])
    assert parse_options("msmt17", ["msmt17-train-with-val=yes", "version=V2"]) == {
        "msmt17_train_with_val": True, "version": "V2"}
    assert parse_options("peta", ["partition=3"]) == {"partition": 3}


def test_market1501_records(tmp_path):
    make_market(tmp_path)
    ds = read_dataset("market1501", tmp_path)
    assert triples(ds) == MARKET_EXPECTED  # junk -1 dropped, pid 0 kept, camid 0-based
    assert ds.records[0].image_path == tmp_path / "bounding_box_train" / "0002_c1s1_000451_03.jpg"
    assert ds.summary()["gallery"] == {"images": 3, "identities": 3, "captions": 0, "cameras": 3}
    assert ds.layout == "market1501" and ds.root == tmp_path


def test_regex_applies_to_the_basename_only(tmp_path):
    root = tmp_path / "2024_c5" / "Market-1501-v15.09.15"
    make_market(root)
    assert triples(read_dataset("market1501", root)) == MARKET_EXPECTED


@pytest.mark.parametrize("rel", ["market1501/Market-1501-v15.09.15", "Market-1501-v15.09.15", "market1501", ""])
def test_market_root_resolution_torchreid_and_fastreid(tmp_path, rel):
    dataset_dir = tmp_path / rel if rel else tmp_path
    make_market(dataset_dir)
    ds = read_dataset("market1501", tmp_path)
    assert ds.root == dataset_dir
    assert find_root("market1501", tmp_path) == dataset_dir


def test_find_root_returns_none_when_absent(tmp_path):
    assert find_root("market1501", tmp_path) is None
    assert find_root("market1501", tmp_path / "nope") is None


def test_dukemtmc_records_and_torchreid_root(tmp_path):
    make_market(tmp_path / "dukemtmc-reid" / "DukeMTMC-reID", DUKE_FILES)
    ds = read_dataset("dukemtmc", tmp_path)
    assert triples(ds) == DUKE_EXPECTED
    assert ds.root == tmp_path / "dukemtmc-reid" / "DukeMTMC-reID"


def test_market_bad_file_name_and_missing_folder(tmp_path):
    make_market(tmp_path)
    write_image(tmp_path / "query" / "person.jpg")
    with pytest.raises(DataError, match=r"person\.jpg.*<pid>_c<camera>"):
        read_dataset("market1501", tmp_path)
    (tmp_path / "query" / "person.jpg").unlink()
    for f in (tmp_path / "query").iterdir():
        f.unlink()
    (tmp_path / "query").rmdir()
    with pytest.raises(DataError, match="query folder not found"):
        read_dataset("market1501", tmp_path)


def test_missing_root_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_dataset("market1501", tmp_path / "absent")
    with pytest.raises(DataError, match="no market1501 dataset found"):
        read_dataset("market1501", tmp_path)


@pytest.mark.parametrize("version", ["V1", "V2"])
def test_msmt17_versions_and_val_option(tmp_path, version):
    dataset_dir = tmp_path / "msmt17" / f"MSMT17_{version}"
    make_msmt17(dataset_dir, version)
    ds = read_dataset("msmt17", tmp_path)
    assert ds.root == dataset_dir
    assert ds.options == {"msmt17_train_with_val": False, "version": version}
    assert triples(ds) == [("train", 0, 0), ("train", 1, 14), ("val", 1, 6), ("query", 0, 2),
                           ("gallery", 0, 3), ("gallery", 2, 1)]
    train_dir = "train" if version == "V1" else "mask_train_v2"
    assert ds.records[0].image_path == dataset_dir / train_dir / "0000" / "0000_000_01_0303morning_0015_0.jpg"
    merged = read_dataset("msmt17", tmp_path, msmt17_train_with_val=True)
    assert [r.split for r in merged.records[:3]] == ["train"] * 3
    assert merged.options["msmt17_train_with_val"] is True
    assert READERS["msmt17"].expected_sizes(merged.options)["train"]["images"] == 32621
    assert READERS["msmt17"].expected_sizes(ds.options)["train"]["images"] == 30248


def test_msmt17_prefers_v1_and_version_option(tmp_path):
    make_msmt17(tmp_path / "MSMT17_V1", "V1")
    make_msmt17(tmp_path / "MSMT17_V2", "V2")
    assert read_dataset("msmt17", tmp_path).options["version"] == "V1"
    assert read_dataset("msmt17", tmp_path, version="V2").root == tmp_path / "MSMT17_V2"


def test_msmt17_malformed_line(tmp_path):
    make_msmt17(tmp_path)
    (tmp_path / "list_query.txt").write_text("0000/0000_000_03_x_0001_0.jpg\n")
    with pytest.raises(DataError, match=r"list_query\.txt.*line 1"):
        read_dataset("msmt17", tmp_path)


@pytest.mark.parametrize("variant", ["labeled", "detected"])
def test_cuhk03_np_market_style(tmp_path, variant):
    make_cuhk03_folders(tmp_path / "cuhk03-np", variant)
    ds = read_dataset("cuhk03-np", tmp_path, variant=variant)
    assert ds.root == tmp_path / "cuhk03-np"
    assert triples(ds) == [("train", 1, 0), ("train", 1, 1), ("query", 10, 0), ("gallery", 10, 1), ("gallery", 11, 0)]
    assert ds.options == {"variant": variant, "source": "folders"}
    assert ds.records[0].image_path.parent == tmp_path / "cuhk03-np" / variant / "bounding_box_train"
    other = "detected" if variant == "labeled" else "labeled"
    with pytest.raises(DataError, match=f"{other}/bounding_box_train"):
        read_dataset("cuhk03-np", tmp_path, variant=other)


def test_cuhk03_np_mat_config_is_1_based(tmp_path):
    make_cuhk03_mat(tmp_path / "cuhk03", "detected")
    ds = read_dataset("cuhk03-np", tmp_path, variant="detected")
    assert ds.options == {"variant": "detected", "source": "mat"}
    assert triples(ds) == [("train", 1, 0), ("train", 1, 1), ("query", 10, 0), ("gallery", 10, 1), ("gallery", 11, 0)]
    assert [r.image_path.name for r in ds.records] == ["1_001_1_01.png", "1_001_2_06.png", "2_010_1_01.png",
                                                       "2_010_2_07.png", "3_011_1_02.png"]
    assert READERS["cuhk03-np"].expected_sizes(ds.options)["gallery"]["images"] == 5332


def test_cuhk03_mat_missing_fields_are_named(tmp_path):
    import scipy.io

    (tmp_path / "images_labeled").mkdir()
    scipy.io.savemat(tmp_path / "cuhk03_new_protocol_config_labeled.mat", {"filelist": [["a"]], "labels": [[1]]})
    with pytest.raises(DataError, match="missing field.*train_idx, query_idx, gallery_idx"):
        read_dataset("cuhk03-np", tmp_path, source="mat")


def test_path_type_of_root_is_accepted(tmp_path):
    make_market(tmp_path)
    assert len(read_dataset("market1501", str(tmp_path))) == len(read_dataset("market1501", Path(tmp_path)))


def test_msmt17_missing_list_file_is_named(tmp_path):
    make_msmt17(tmp_path, "V2")
    (tmp_path / "list_val.txt").unlink()
    with pytest.raises(DataError, match=r"list_val\.txt: MSMT17 list file not found"):
        read_dataset("msmt17", tmp_path)

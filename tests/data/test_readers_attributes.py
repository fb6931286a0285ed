"""Attribute readers (PA-100K, PETA, RAPv1, RAPv2) on .mat files written with scipy.io.savemat."""

from __future__ import annotations

import numpy as np
import pytest
from fixtures_readers import (
    PA100K_NAMES,
    PETA_ATTRS,
    RAPV1_ATTRS,
    RAPV2_SELECTED,
    cell,
    make_pa100k,
    make_peta,
    make_rapv1,
    make_rapv2,
)

from plipbench.data.readers import read_dataset
from plipbench.errors import ConfigError, DataError

scipy_io = pytest.importorskip("scipy.io")


def attrs(ds, split):
    return np.array([r.attributes for r in ds.split(split)])


@pytest.mark.parametrize(("image_subdir", "annotation_subdir"), [
    ("data", ""), ("data/release_data/release_data", "annotation"), ("release_data/release_data", "")])
def test_pa100k(tmp_path, image_subdir, annotation_subdir):
    labels = make_pa100k(tmp_path / "PA-100K", image_subdir, annotation_subdir)
    ds = read_dataset("pa100k", tmp_path)
    assert ds.attribute_names == PA100K_NAMES
    assert ds.splits() == {"train": 3, "val": 1, "test": 2}
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(attrs(ds, split), labels[split])
    assert [r.pid for r in ds] == list(range(6)) and {r.camid for r in ds} == {-1}
    assert ds.records[0].image_path == tmp_path / "PA-100K" / image_subdir / "000001.jpg"
    assert ds.records[-1].image_path.name == "000006.jpg"
    assert ds.options["image_dir"] == image_subdir


def test_pa100k_label_shape_mismatch(tmp_path):
    make_pa100k(tmp_path)
    mat = scipy_io.loadmat(tmp_path / "annotation.mat")
    mat["val_label"] = np.zeros((1, 25))
    scipy_io.savemat(tmp_path / "annotation.mat", {k: v for k, v in mat.items() if not k.startswith("__")})
    with pytest.raises(DataError, match=r"field val_label: label matrix has shape \(1, 25\), expected \(1, 26\)"):
        read_dataset("pa100k", tmp_path)


def test_pa100k_missing_fields_named(tmp_path):
    scipy_io.savemat(tmp_path / "annotation.mat", {"attributes": cell(PA100K_NAMES), "train_label": np.zeros((1, 26))})
    with pytest.raises(DataError, match="missing field.*train_images_name.*test_label"):
        read_dataset("pa100k", tmp_path)


def test_non_matlab_file(tmp_path):
    (tmp_path / "annotation.mat").write_bytes(b"not a mat file at all" * 10)
    with pytest.raises(DataError, match=r"annotation\.mat"):
        read_dataset("pa100k", tmp_path)


def test_peta_partition_and_eval_columns(tmp_path):
    labels = make_peta(tmp_path)
    ds = read_dataset("peta", tmp_path)
    assert ds.options == {"partition": 0, "attributes": "eval"}
    assert len(ds.attribute_names) == 35 and ds.attribute_names[0] == "peta000"
    assert [(r.split, r.pid, r.image_path.name) for r in ds] == [
        ("train", 0, "00001.png"), ("train", 1, "00002.png"), ("train", 2, "00003.png"), ("val", 3, "00004.png"),
        ("test", 4, "00005.png"), ("test", 5, "00006.png")]
    np.testing.assert_array_equal(attrs(ds, "test"), labels[[4, 5], :35])
    part1 = read_dataset("peta", tmp_path, partition=1, attributes="all")
    assert [r.pid for r in part1.split("train")] == [5, 4] and [r.pid for r in part1.split("test")] == [0, 1, 2]
    assert len(part1.attribute_names) == PETA_ATTRS
    np.testing.assert_array_equal(attrs(part1, "train"), labels[[5, 4]])
    with pytest.raises(ConfigError, match="partition"):
        read_dataset("peta", tmp_path, partition=7)


def test_rapv1_trainval_label2_and_eval(tmp_path):
    labels = make_rapv1(tmp_path / "RAP")
    ds = read_dataset("rapv1", tmp_path)
    assert ds.options == {"partition": 0, "attributes": "eval", "label_2_as": 0}
    assert [(r.split, r.pid) for r in ds] == [("train", 0), ("train", 2), ("train", 3), ("test", 1), ("test", 4)]
    assert len(ds.attribute_names) == 51 and ds.attribute_names[-1] == "rap50"
    expected = np.where(labels == 2, 0, labels)[[0, 2, 3], :51]
    np.testing.assert_array_equal(attrs(ds, "train"), expected)
    assert (labels == 2).any()  # the fixture really exercises the mapping
    as_one = read_dataset("rapv1", tmp_path, label_2_as=1, attributes="all")
    np.testing.assert_array_equal(attrs(as_one, "test"), np.where(labels == 2, 1, labels)[[1, 4]])
    assert len(as_one.attribute_names) == RAPV1_ATTRS


def test_rapv2_named_fields(tmp_path):
    labels = make_rapv2(tmp_path / "RAPv2")
    ds = read_dataset("rapv2", tmp_path)
    assert ds.attribute_names == [f"v2attr{i - 1}" for i in RAPV2_SELECTED]
    assert ds.splits() == {"train": 3, "val": 1, "test": 2}
    # person_identity used; the unknown (-1) ones get fresh ids above the largest (12)
    assert [r.pid for r in ds] == [10, 10, 13, 11, 14, 12]
    cols = [i - 1 for i in RAPV2_SELECTED]
    np.testing.assert_array_equal(attrs(ds, "test"), np.where(labels == 2, 0, labels)[[4, 5]][:, cols])


def test_rap_versions_are_told_apart(tmp_path):
    make_rapv2(tmp_path / "v2", identities=False)
    assert [r.pid for r in read_dataset("rapv2", tmp_path / "v2")] == list(range(6))
    with pytest.raises(DataError, match="RAPv2 annotation.*use layout rapv2"):
        read_dataset("rapv1", tmp_path / "v2")
    make_rapv1(tmp_path / "v1")
    with pytest.raises(DataError, match="missing field.*name.*use layout rapv1"):
        read_dataset("rapv2", tmp_path / "v1")


def test_struct_with_too_few_fields(tmp_path):
    scipy_io.savemat(tmp_path / "PETA.mat", {"peta": {"data": np.zeros((2, 5)), "names": cell(["a"])}})
    with pytest.raises(DataError, match=r"struct peta: expected at least 4 fields .* found 2"):
        read_dataset("peta", tmp_path)


def test_out_of_range_index(tmp_path):
    make_rapv2(tmp_path)
    mat = scipy_io.loadmat(tmp_path / "RAP_annotation" / "RAP_annotation.mat")
    rec = mat["RAP_annotation"]
    rec[0, 0]["selected_attribute"] = np.array([[0, 2]])  # 0 is not a valid 1-based index
    scipy_io.savemat(tmp_path / "RAP_annotation" / "RAP_annotation.mat", {"RAP_annotation": rec})
    with pytest.raises(DataError, match="selected_attribute: 1-based indices must be integers in 1..10"):
        read_dataset("rapv2", tmp_path)

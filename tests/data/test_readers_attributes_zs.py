"""PETA_ZS / RAP_ZS: the dataset_zs pickles are read through the restricted unpickler, never by running them.

A pickle built here with exactly the globals of the real files (protocols 2, 3 and 4) reads; a pickle that would
call ``os.system`` is refused with one line naming the file, and the command never runs (its marker file is not
created), whether the refusal comes from the static scan or from ``find_class`` itself; object arrays are refused.
"""

from __future__ import annotations

import io
import os
import pickle

import numpy as np
import pytest
from fixtures_occluded import EasyDict, dump_zs_pickle, make_zs, zs_info
from typer.testing import CliRunner

from plipbench.cli import app
from plipbench.data.check import check_dataset
from plipbench.data.readers import read_dataset
from plipbench.data.readers.safe_pickle import (
    ALLOWED_GLOBALS,
    RestrictedUnpickler,
    load_restricted,
    pickle_globals,
)
from plipbench.errors import DataError


class RunsCommand:
    """Unpickling this calls ``os.system(command)``: what a malicious dataset file would do."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


class PlainUnpickler(pickle.Unpickler):
    """pickle's default resolution, with easydict (not installed) mapped to the fixtures' stand-in."""

    def find_class(self, module: str, name: str):
        return EasyDict if (module, name) == ("easydict", "EasyDict") else super().find_class(module, name)


@pytest.mark.parametrize("protocol", [2, 3, 4])
def test_peta_zs_reads_with_the_allowed_globals_only(tmp_path, protocol):
    info = zs_info(names_as_numpy=True)
    make_zs(tmp_path / "PETA", info, protocol=protocol)
    data = (tmp_path / "PETA" / "dataset_zs_run0.pkl").read_bytes()
    assert set(pickle_globals(data, tmp_path)) <= ALLOWED_GLOBALS
    assert "easydict.EasyDict" in pickle_globals(data, tmp_path)
    ds = read_dataset("peta-zs", tmp_path)
    assert ds.root == tmp_path / "PETA" and ds.name == "PETA_ZS"
    assert [(r.split, r.pid) for r in ds.records] == [("train", 0), ("train", 1), ("train", 2), ("val", 3),
                                                     ("test", 4), ("test", 5)]
    assert len(ds.attribute_names) == 35 and ds.attribute_names[0] == "attr000"
    assert all(type(a) is str for a in ds.attribute_names)
    want = np.where(info.label == 2, 0, info.label)[:, :35]
    assert np.array_equal(np.array([r.attributes for r in ds.records]), want)
    # the authors' absolute root (/mnt/data1/...) is ignored: images come from the dataset folder
    assert all(r.image_path.parent == tmp_path / "PETA" / "images" and r.image_path.is_file() for r in ds.records)


def test_peta_zs_options(tmp_path):
    make_zs(tmp_path / "PETA")
    ds = read_dataset("peta-zs", tmp_path, trainval=True, attributes="all", label_2_as=1)
    assert ds.splits() == {"train": 4, "test": 2} and len(ds.attribute_names) == 40
    assert ds.records[0].attributes[0] == 1  # label 2 -> label_2_as
    assert ds.options["trainval"] is True


def test_file_without_label_idx_holds_the_evaluated_columns(tmp_path):
    make_zs(tmp_path / "a" / "PETA", zs_info(label_idx=False, attrs=[f"a{i}" for i in range(35)]))
    assert len(read_dataset("peta-zs", tmp_path / "a").attribute_names) == 35
    make_zs(tmp_path / "b" / "PETA", zs_info(label_idx=False))
    assert len(read_dataset("peta-zs", tmp_path / "b").attribute_names) == 40
    report = check_dataset("peta-zs", tmp_path / "b")  # a real copy is compared with the official count
    assert report.problems == ["40 evaluated attributes, official 35"]


def test_rap_zs_evaluates_53_attributes_in_rap_dataset(tmp_path):
    attrs = [f"r{i}" for i in range(60)]
    info = zs_info(attrs=attrs)
    info["label_idx"] = info.label_idx = EasyDict(eval=[i for i in range(54) if i != 38], color=[], extra=[])
    make_zs(tmp_path / "RAP2", info, image_dir="RAP_dataset")
    ds = read_dataset("rap-zs", tmp_path)
    assert len(ds.attribute_names) == 53 and "r38" not in ds.attribute_names
    assert ds.records[0].image_path.parent.name == "RAP_dataset"


def _evil_pickle(marker) -> bytes:
    info = zs_info()
    info["root"] = info.root = RunsCommand(f"touch {marker}")
    return dump_zs_pickle(info)


def test_a_code_running_pickle_is_refused_and_does_not_run(tmp_path):
    marker = tmp_path / "marker"
    make_zs(tmp_path / "PETA")
    (tmp_path / "PETA" / "dataset_zs_run0.pkl").write_bytes(_evil_pickle(marker))
    with pytest.raises(DataError, match=r"dataset_zs_run0.pkl: pickle refers to global\(s\) (posix|nt).system"):
        read_dataset("peta-zs", tmp_path)
    assert not marker.exists()
    # find_class refuses it on its own too (the static scan is not the only guard)
    with pytest.raises(DataError, match="global (posix|nt).system, which is not allowed"):
        RestrictedUnpickler(io.BytesIO(_evil_pickle(marker)), tmp_path / "x.pkl").load()
    assert not marker.exists()
    # sanity: the same bytes do run under pickle's own find_class, so the test would notice a reader that used it
    PlainUnpickler(io.BytesIO(_evil_pickle(marker))).load()
    assert marker.exists()


def test_data_check_refuses_the_pickle_with_one_line_and_exit_2(tmp_path):
    marker = tmp_path / "marker"
    make_zs(tmp_path / "PETA")
    ok = CliRunner().invoke(app, ["data", "check", "-l", "peta-zs", "-r", str(tmp_path)])
    assert ok.exit_code == 0, ok.output  # official sizes unknown: only the content and images are checked
    (tmp_path / "PETA" / "dataset_zs_run0.pkl").write_bytes(_evil_pickle(marker))
    result = CliRunner().invoke(app, ["data", "check", "-l", "peta-zs", "-r", str(tmp_path)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    problems = [line for line in result.output.splitlines() if line.startswith("problem:")]
    assert len(problems) == 1 and "dataset_zs_run0.pkl" in problems[0] and "system" in problems[0]
    assert not marker.exists()


def test_object_arrays_are_refused(tmp_path):
    info = zs_info()
    info["label"] = info.label = info.label.astype(object)
    make_zs(tmp_path / "a" / "PETA", info)
    with pytest.raises(DataError, match="object dtype"):
        read_dataset("peta-zs", tmp_path / "a")
    info = zs_info()
    info["weight_train"] = info.weight_train = [np.zeros(2, dtype=[("w", "f4"), ("o", "O")])]
    (tmp_path / "s.pkl").write_bytes(dump_zs_pickle(info))
    with pytest.raises(DataError, match="object dtype"):
        load_restricted(tmp_path / "s.pkl")


def test_allowed_globals_cannot_be_misused(tmp_path):
    path = tmp_path / "x.pkl"
    # numpy.ndarray called directly (could allocate any size): it is only a token for _reconstruct
    path.write_bytes(b"\x80\x03cnumpy\nndarray\nq\x00K\n\x85q\x01\x85q\x02Rq\x03.")
    with pytest.raises(DataError, match="cannot unpickle"):
        load_restricted(path)
    unpickler = RestrictedUnpickler(io.BytesIO(b""), path)
    with pytest.raises(DataError, match="only latin1"):
        unpickler.find_class("_codecs", "encode")("x", "rot13")
    with pytest.raises(DataError, match="unexpected arguments"):
        unpickler.find_class("numpy._core.multiarray", "_reconstruct")(np.ndarray, (10**12,), b"b")
    with pytest.raises(DataError, match="object dtype"):
        unpickler.find_class("numpy", "dtype")("O8", False, True)
    for module, name in (("builtins", "eval"), ("numpy", "load"), ("copyreg", "_reconstructor"), ("os", "system")):
        with pytest.raises(DataError, match="not allowed"):
            unpickler.find_class(module, name)
    path.write_bytes(b"\x80\x03X\x01\x00\x00\x00aq\x00Q.")  # a persistent id: no persistent_load
    with pytest.raises(DataError, match="cannot unpickle"):
        load_restricted(path)
    path.write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="not a well-formed pickle"):
        load_restricted(path)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda i: i.partition.__setitem__("test", np.array([4, 9])), r"partition.test: indices must be integers in 0..5"),
        (lambda i: i.partition.__setitem__("val", np.array([2])), r"image 2 \(00003.png\) is in partition train and val"),
        (lambda i: i.pop("attr_name"), r"missing key 'attr_name'"),
        (lambda i: i.__setitem__("label", i.label[:, :3]), r"label: expected an array of shape \(6, 40\)"),
        (lambda i: i.__setitem__("image_name", ["../../etc/passwd"] * 6), r"image_name\[0\].*escapes the dataset folder"),
    ],
)
def test_bad_content_is_one_data_error_naming_the_pickle(tmp_path, change, problem):
    info = zs_info()
    make_zs(tmp_path / "PETA", info)
    change(info)
    (tmp_path / "PETA" / "dataset_zs_run0.pkl").write_bytes(dump_zs_pickle(info))
    with pytest.raises(DataError, match=problem) as err:
        read_dataset("peta-zs", tmp_path)
    assert "dataset_zs_run0.pkl" in str(err.value) and "\n" not in str(err.value)

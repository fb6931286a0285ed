"""The person-search presets write CUHK-SYSU and PRW copies that the readers read back, with what the protocol
needs: recurring identities, unlabelled walkers, small boxes, target-absent gallery frames; data check's errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from fixtures_person_search import CUHK_GALLERIES, make_cuhk_sysu
from fixtures_readers import cell

from plipbench.data.check import check_dataset
from plipbench.data.readers import read_dataset
from plipbench.data.readers.person_search import UNLABELED
from plipbench.data.synth import PRESETS, generate
from plipbench.data.synth.search import plan_search

TINY = {"identities": 30, "images_per_id": 4, "progress": False}


@pytest.fixture(scope="module")
def copies(tmp_path_factory) -> dict[str, Path]:
    out = {}
    for preset in ("synth-cuhk-sysu", "synth-prw"):
        root = tmp_path_factory.mktemp(preset)
        generate(preset, root, **TINY)
        out[preset] = root
    return out


def _manifest(root: Path) -> dict:
    return json.loads((root / "plipbench_synth_manifest.json").read_text())


@pytest.mark.parametrize(("preset", "layout"), [("synth-cuhk-sysu", "cuhk-sysu"), ("synth-prw", "prw")])
def test_the_reader_reads_back_what_the_manifest_says(copies, preset, layout) -> None:
    manifest = _manifest(copies[preset])
    ds = read_dataset(layout, copies[preset])
    assert manifest["layout"] == layout and ds.summary() == manifest["splits"]
    assert ds.dropped_boxes == 0 and ds.options.get("unmatched_boxes", 0) == 0
    gallery_pids = np.concatenate([s.pids for s in ds.gallery])
    boxes = np.concatenate([s.boxes for s in ds.gallery])
    assert (gallery_pids == UNLABELED).sum() >= 0.1 * len(gallery_pids)  # walkers as gallery negatives
    assert ((boxes[:, 2] - boxes[:, 0]) <= 20).sum() >= 3  # small boxes for the adaptive IoU threshold
    assert manifest["person_search"]["unlabeled_boxes"] > 0 and manifest["person_search"]["small_boxes"] > 0
    assert all(q.gallery_index >= 0 for q in ds.queries)
    for q in ds.queries:  # every query's box is one of its frame's boxes, with its pid (a recurring identity)
        frame = ds.gallery[q.gallery_index]
        same = np.all(frame.boxes == q.box, axis=1)
        assert same.sum() == 1 and frame.pids[same][0] == q.pid
        assert sum(int((s.pids == q.pid).sum()) for s in ds.gallery) >= 2
    train_ids = {int(p) for s in ds.train for p in s.pids if p != UNLABELED}
    assert len(train_ids) == manifest["splits"]["train"]["identities"] == 18
    assert len({s.name for s in ds.train} & {s.name for s in ds.gallery}) == 0


def test_train_and_test_identities_are_disjoint() -> None:
    p = PRESETS["synth-prw"]
    frames = plan_search(p, "prw", 30, 4, 0)
    ids = {split: {x.pid for f in frames if f.split == split for x in f.persons if x.pid} for split in ("train", "test")}
    assert ids["train"] and ids["test"] and not ids["train"] & ids["test"]
    walkers = [(x.pool, x.index) for f in frames for x in f.persons if not x.pid]
    assert len(walkers) == len(set(walkers))  # a walker is never seen twice


def test_cuhk_sysu_galleries_hold_targets_and_absent_frames(copies) -> None:
    root = copies["synth-cuhk-sysu"]
    g100 = read_dataset("cuhk-sysu", root)
    g50 = read_dataset("cuhk-sysu", root, gallery_size=50)
    assert len(g100.queries) == 12 == g100.summary()["gallery"]["identities"]
    for i, q in enumerate(g100.queries):
        images, targets = g100.protocol.images[i], g100.protocol.targets[i]
        assert len(images) == 100 and len(g50.protocol.images[i]) == 50
        assert np.array_equal(g50.protocol.images[i], images[:50])  # the smaller gallery is a prefix
        assert q.gallery_index not in images.tolist() and len(set(images.tolist())) == 100
        assert 1 <= len(targets) <= 3 and len(images) - len(targets) >= 97  # target-absent frames
        for g, box in targets.items():
            frame = g100.gallery[images[g]]
            assert frame.pids[np.all(frame.boxes == box, axis=1)].tolist() == [q.pid]
    raw = scipy.io.loadmat(root / "annotation" / "Images.mat")["Img"]
    assert raw.shape[0] == 1 and raw.dtype.names == ("imname", "nAppear", "box")
    assert raw[0, 0]["box"].dtype.names[0] == "idlocate"  # idlocate is the first field of each box
    testg = scipy.io.loadmat(root / "annotation" / "test" / "train_test" / "TestG50.mat")["TestG50"]
    assert testg.dtype.names == ("Query", "Gallery") and testg.shape == (1, 12)
    assert testg[0, 0]["Gallery"][0, -1]["idlocate"].size == 0  # empty idlocate: the target is absent


def test_prw_cameras_queries_and_crlf(copies) -> None:
    root = copies["synth-prw"]
    ds = read_dataset("prw", root)
    assert {s.camid for s in ds.gallery} == set(range(6)) == {s.camid for s in ds.train}
    cams_of: dict[int, set[int]] = {}
    for s in ds.gallery:
        for p in s.pids[s.pids != UNLABELED].tolist():
            cams_of.setdefault(p, set()).add(s.camid)
    assert sum(len(c) >= 2 for c in cams_of.values()) >= 6  # identities recur across cameras
    pairs = [(q.pid, q.camid) for q in ds.queries]
    assert len(pairs) == len(set(pairs)) and {p for p, _ in pairs} == set(cams_of)  # one per identity and camera
    assert len(ds.queries) == sum(len(c) for c in cams_of.values())
    text = (root / "query_info.txt").read_bytes()
    assert text.count(b"\r\n") == len(ds.queries) == text.count(b"\n")
    for q in ds.queries:
        crop = root / "query_box" / f"{q.pid}_{q.name}"
        from PIL import Image

        with Image.open(crop) as img:
            assert img.size == (int(q.box[2] - q.box[0]), int(q.box[3] - q.box[1]))
    raw = scipy.io.loadmat(root / "annotations" / f"{ds.gallery[0].name}.mat")["box_new"]
    assert raw.shape[1] == 5 and set(raw[:, 0].tolist()) <= set(cams_of) | {-2.0}
    ids_train = scipy.io.loadmat(root / "ID_train.mat")["ID_train"].ravel()
    ids_test = scipy.io.loadmat(root / "ID_test.mat")["ID_test2"].ravel()
    assert len(ids_train) == 18 and len(ids_test) == 12 and not set(ids_train) & set(ids_test)


def test_the_same_seed_writes_the_same_bytes(tmp_path) -> None:
    def files(root: Path) -> dict[str, bytes]:
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    args = {"identities": 10, "images_per_id": 3, "progress": False}
    generate("synth-prw", tmp_path / "a", seed=5, **args)
    generate("synth-prw", tmp_path / "b", seed=5, **args)
    generate("synth-prw", tmp_path / "c", seed=6, **args)
    a, b, c = files(tmp_path / "a"), files(tmp_path / "b"), files(tmp_path / "c")
    assert a == b and a["query_info.txt"] != c["query_info.txt"]


def test_data_check_names_the_annotation_of_a_box_outside_its_frame(copies, tmp_path, capsys) -> None:
    import shutil

    from plipbench.cli import main

    root = tmp_path / "prw"
    shutil.copytree(copies["synth-prw"], root)
    ds = read_dataset("prw", root)
    frame = ds.gallery[3]
    anno = root / "annotations" / f"{frame.name}.mat"
    rows = scipy.io.loadmat(anno)["box_new"]
    rows[0, 1] = 380.0  # x + w beyond the 384 px frame
    scipy.io.savemat(anno, {"box_new": rows})
    report = check_dataset("prw", root)
    assert not report.ok
    line = next(p for p in report.problems if "reach out of their frame" in p)
    assert line.startswith(str(anno)) and frame.name in line and "\n" not in line
    assert main(["data", "check", "--layout", "prw", "--root", str(root), "--quick"]) == 2
    assert "reach out of their frame" in capsys.readouterr().out


def test_data_check_refuses_a_query_frame_that_is_not_a_test_frame(copies, tmp_path, capsys) -> None:
    import shutil

    from plipbench.cli import main

    root = tmp_path / "prw"
    shutil.copytree(copies["synth-prw"], root)
    train_frame = read_dataset("prw", root).train[0].name[:-4]
    with open(root / "query_info.txt", "ab") as fh:
        fh.write(f"1 10 10 20 40 {train_frame}\r\n".encode())
    assert main(["data", "check", "--layout", "prw", "--root", str(root)]) == 2
    out = capsys.readouterr().out
    assert "query_info.txt" in out and f"query frame {train_frame} is not a test frame" in out


def test_data_check_reports_a_cuhk_sysu_query_whose_image_is_not_in_the_pool(tmp_path) -> None:
    root = tmp_path / "CUHK-SYSU"
    no_s3 = {size: [[e for e in g if e[0] != "s3.jpg"] for g in gal] for size, gal in CUHK_GALLERIES.items()}
    make_cuhk_sysu(root, galleries=no_s3)
    scipy.io.savemat(root / "annotation" / "pool.mat", {"pool": cell(["s1.jpg", "s2.jpg", "s4.jpg", "s5.jpg"])})
    report = check_dataset("cuhk-sysu", root, gallery_size=50)
    line = next(p for p in report.problems if "not in the gallery" in p)
    assert "TestG50.mat" in line and "query 2, image s3.jpg" in line

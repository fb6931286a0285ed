"""Person-search readers (CUHK-SYSU, PRW) on tiny copies written with scipy.io.savemat, read back and scored."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io
from fixtures_person_search import (
    CUHK_GALLERIES,
    CUHK_PIDS,
    PRW_FRAMES,
    make_cuhk_sysu,
    make_prw,
    write_testg,
)

from plipbench.data.readers.cuhk_sysu import read_cuhk_sysu
from plipbench.data.readers.person_search import UNLABELED
from plipbench.data.readers.prw import read_prw
from plipbench.errors import ConfigError, DataError
from plipbench.metrics import Detections, evaluate_cuhk_sysu, evaluate_prw


def identity_features(pids: np.ndarray, dim: int = 8) -> np.ndarray:
    """One-hot features by identity; unlabeled persons get zero vectors (similarity 0 to every query)."""
    out = np.zeros((len(pids), dim))
    for i, pid in enumerate(pids.tolist()):
        if pid != UNLABELED:
            out[i, pid] = 1.0
    return out


# ---------------------------------------------------------------------------------------------- CUHK-SYSU


def test_cuhk_sysu_reads_scenes_identities_queries_and_the_protocol(tmp_path):
    ds = read_cuhk_sysu(make_cuhk_sysu(tmp_path / "CUHK-SYSU"))
    assert [s.name for s in ds.gallery] == ["s1.jpg", "s2.jpg", "s3.jpg", "s4.jpg", "s5.jpg"]
    assert [s.name for s in ds.train] == ["s6.jpg", "s7.jpg"]
    for scene in ds.train + ds.gallery:
        assert scene.pids.tolist() == CUHK_PIDS[scene.name], scene.name
        assert scene.image_path == tmp_path / "CUHK-SYSU" / "Image" / "SSM" / scene.name
    s1 = ds.gallery[0]
    assert s1.boxes.tolist() == [[10, 20, 40, 80], [50, 20, 80, 80]] and ds.dropped_boxes == 1  # [x, y, w, h] -> x2, y2
    assert [(q.name, q.pid, q.gallery_index) for q in ds.queries] == [("s1.jpg", 1, 0), ("s3.jpg", 2, 2)]
    assert ds.queries[1].box.tolist() == [5, 5, 13, 21]
    p = ds.protocol
    assert p.gallery_size == 100 and p.source.name == "TestG100.mat"
    assert [a.tolist() for a in p.images] == [[1, 3, 4, 2], [3, 0, 1, 4]]
    assert {k: v.tolist() for k, v in p.targets[0].items()} == {0: [12, 22, 42, 82], 1: [70, 5, 100, 65]}
    assert ds.summary()["gallery"] == {"images": 5, "boxes": 8, "identities": 2}
    assert ds.options == {"gallery_size": 100, "unmatched_boxes": 0}


def test_cuhk_sysu_gallery_size_50_and_full_set_use_testg50(tmp_path):
    root = make_cuhk_sysu(tmp_path / "CUHK-SYSU")
    for size in (50, -1):
        ds = read_cuhk_sysu(tmp_path, gallery_size=size)  # found under the data folder
        assert ds.protocol.source.name == "TestG50.mat" and ds.protocol.gallery_size == size
        assert [a.tolist() for a in ds.protocol.images] == [[1, 3, 4], [3, 0, 1]]
    assert root.is_dir()
    with pytest.raises(ConfigError, match="gallery_size must be one of"):
        read_cuhk_sysu(root, gallery_size=200)
    with pytest.raises(DataError, match="TestG500.mat: annotation .mat file not found"):
        read_cuhk_sysu(root, gallery_size=500)


def test_cuhk_sysu_read_back_scores_perfect_features_perfectly(tmp_path):
    ds = read_cuhk_sysu(make_cuhk_sysu(tmp_path))
    gallery = [Detections.from_boxes(s.boxes, identity_features(s.pids)) for s in ds.gallery]
    queries = identity_features(np.array([q.pid for q in ds.queries]))
    for size in (100, -1):
        inputs = ds.evaluation_inputs()
        inputs["gallery_size"] = size
        r = evaluate_cuhk_sysu(queries, gallery, **inputs)
        assert r["mAP"] == 1.0 and r["top-1"] == 1.0 and r["num_queries"] == 2


def test_cuhk_sysu_bad_files_name_the_file(tmp_path):
    root = make_cuhk_sysu(tmp_path / "a")
    (root / "annotation" / "pool.mat").unlink()
    with pytest.raises(DataError, match=r"pool.mat: annotation .mat file not found"):
        read_cuhk_sysu(root)

    root = make_cuhk_sysu(tmp_path / "b")
    (root / "annotation" / "Images.mat").write_bytes(b"not a mat file at all" * 10)
    with pytest.raises(DataError, match=r"Images.mat: not a readable MATLAB .mat file"):
        read_cuhk_sysu(root)

    root = make_cuhk_sysu(tmp_path / "c")
    scipy.io.savemat(root / "annotation" / "Images.mat", {"Images": np.zeros(1)})
    with pytest.raises(DataError, match=r"Images.mat: missing field\(s\) Img; found Images"):
        read_cuhk_sysu(root)

    root = make_cuhk_sysu(tmp_path / "d", boxes={"s1.jpg": [(1, 1, 0, 5)]})
    with pytest.raises(DataError, match=r"Images.mat: image s1.jpg: no box with positive width"):
        read_cuhk_sysu(root)

    root = make_cuhk_sysu(tmp_path / "e", boxes={**{"s1.jpg": [(1, 2, 3)]}})
    with pytest.raises(DataError, match=r"Images.mat: Img\(1\).box\(1\).idlocate: expected a box of 4 finite"):
        read_cuhk_sysu(root)

    root = make_cuhk_sysu(tmp_path / "f")
    write_testg(root, 100, CUHK_GALLERIES[100], queries=[("s1.jpg", (10, 20, 30, 60)), ("s2.jpg", (12, 22, 30, 60))])
    with pytest.raises(DataError, match=r"TestG100.mat: Query\(2\) is s2.jpg .* but TestG50.mat's query 2 is s3.jpg"):
        read_cuhk_sysu(root)

    root = make_cuhk_sysu(tmp_path / "g")
    write_testg(root, 100, [CUHK_GALLERIES[100][0], [("s6.jpg", ())]])
    with pytest.raises(DataError, match=r"TestG100.mat: Gallery\(2, 1\): image s6.jpg is not a test image"):
        read_cuhk_sysu(root)

    root = make_cuhk_sysu(tmp_path / "h")
    write_testg(root, 50, [[("s9.jpg", (1, 1, 5, 5))], CUHK_GALLERIES[50][1]])
    with pytest.raises(DataError, match=r"TestG50.mat: Gallery\(1, 1\): image s9.jpg is not in annotation/Images.mat"):
        read_cuhk_sysu(root)

    root = make_cuhk_sysu(tmp_path / "i")
    scipy.io.savemat(root / "annotation" / "test" / "train_test" / "TestG50.mat", {"TestG50": {"Query": 1}})
    with pytest.raises(DataError, match=r"TestG50.mat: TestG50: expected a struct array with fields Query and Gallery"):
        read_cuhk_sysu(root)

    with pytest.raises(DataError, match="no cuhk-sysu dataset found: expected annotation/Images.mat"):
        read_cuhk_sysu(tmp_path / "i" / "Image")


# ---------------------------------------------------------------------------------------------- PRW


def test_prw_reads_frames_boxes_cameras_and_crlf_queries(tmp_path):
    ds = read_prw(make_prw(tmp_path / "PRW-v16.04.20"))
    assert [s.name for s in ds.gallery] == ["c1s1_000001.jpg", "c2s1_000002.jpg", "c3s1_000003.jpg"]
    assert [s.name for s in ds.train] == ["c1s2_000100.jpg"] and ds.train[0].camid == 0
    assert [s.camid for s in ds.gallery] == [0, 1, 2]
    assert ds.gallery[0].pids.tolist() == [7, UNLABELED]
    # a negative x is cut at the border: [-5, 10, 25, 70] -> [0, 10, 25, 70]; the fallback keys are read
    assert ds.gallery[1].boxes.tolist() == [[0, 10, 25, 70], [100, 10, 120, 50]]
    np.testing.assert_allclose(ds.gallery[2].boxes, [[10.6, 10.2, 31.1, 50.7]])
    assert [(q.name, q.pid, q.camid, q.gallery_index) for q in ds.queries] == [
        ("c1s1_000001.jpg", 7, 0, 0), ("c2s1_000002.jpg", 3, 1, 1)]
    assert ds.queries[1].box.tolist() == [100, 10, 120, 50]
    assert ds.queries[0].image_path == tmp_path / "PRW-v16.04.20" / "frames" / "c1s1_000001.jpg"
    assert ds.summary()["query"] == {"images": 2, "identities": 2} and ds.protocol is None


def test_prw_seqnet_boxes_and_lf_lines(tmp_path):
    ds = read_prw(make_prw(tmp_path, newline="\n"), seqnet_boxes=True)
    assert ds.gallery[1].boxes.tolist()[0] == [0, 10, 30, 70]  # clipped in [x, y, w, h]: moved, not cut
    assert ds.gallery[2].boxes.tolist() == [[10, 10, 31, 50]]  # truncated
    assert ds.queries[0].name == "c1s1_000001.jpg" and ds.options == {"seqnet_boxes": True}


def test_prw_read_back_scores_perfect_features_perfectly(tmp_path):
    ds = read_prw(make_prw(tmp_path))
    gallery = [Detections.from_boxes(s.boxes, identity_features(s.pids)) for s in ds.gallery]
    queries = identity_features(np.array([q.pid for q in ds.queries]))
    r = evaluate_prw(queries, gallery, **ds.evaluation_inputs())
    assert r["mAP"] == 1.0 and r["top-1"] == 1.0 and r["num_queries"] == 2
    cross = evaluate_prw(queries, gallery, **ds.evaluation_inputs(), ignore_cam_id=False)
    assert cross["num_queries"] == 2  # pid 7: c1 -> c2; pid 3: c2 -> c3


def test_prw_bad_files_name_the_file(tmp_path):
    root = make_prw(tmp_path / "a", query_lines=["7 10 20 30 60 c9s1_000009"])
    with pytest.raises(DataError, match=r"query_info.txt: line 1: query frame c9s1_000009 is not a test frame"):
        read_prw(root)

    root = make_prw(tmp_path / "b", query_lines=["7 10 20 30 c1s1_000001"])
    with pytest.raises(DataError, match=r"query_info.txt: line 1: expected 6 fields"):
        read_prw(root)

    root = make_prw(tmp_path / "c", query_lines=["x 10 20 30 60 c1s1_000001"])
    with pytest.raises(DataError, match=r"line 1: expected an integer pid"):
        read_prw(root)

    root = make_prw(tmp_path / "d")
    (root / "annotations" / "c2s1_000002.jpg.mat").unlink()
    with pytest.raises(DataError, match=r"c2s1_000002.jpg.mat: annotation of frame c2s1_000002.jpg"):
        read_prw(root)

    root = make_prw(tmp_path / "e", frames={**PRW_FRAMES, "c3s1_000003": ("box_new", [[3, 1, 2, 3]])})
    with pytest.raises(DataError, match=r"c3s1_000003.jpg.mat: field box_new: expected finite rows"):
        read_prw(root)

    root = make_prw(tmp_path / "f", frames={**PRW_FRAMES, "c3s1_000003": ("boxes", [[3, 1, 2, 3, 4]])})
    with pytest.raises(DataError, match=r"c3s1_000003.jpg.mat: missing field box_new .*found boxes"):
        read_prw(root)

    root = make_prw(tmp_path / "g", frames={**PRW_FRAMES, "c3s1_000003": ("box_new", [[-1, 1, 2, 3, 4]])})
    with pytest.raises(DataError, match=r"id -1 is not a person id"):
        read_prw(root)

    root = make_prw(tmp_path / "h")
    (root / "query_info.txt").unlink()
    with pytest.raises(DataError, match=r"query_info.txt: file not found"):
        read_prw(root)

    root = make_prw(tmp_path / "i")
    scipy.io.savemat(root / "frame_test.mat", {"img_index": np.zeros(1)})
    with pytest.raises(DataError, match=r"frame_test.mat: missing field\(s\) img_index_test"):
        read_prw(root)


def test_cuhk_sysu_labels_targets_after_an_empty_entry_and_counts_unmatched_boxes(tmp_path):
    # SeqNet stops labelling a gallery at its first empty idlocate; every entry is read here
    galleries = {50: [[("s5.jpg", ()), ("s2.jpg", (12, 22, 30, 60)), ("s4.jpg", (70, 5, 30, 61))],
                      [("s4.jpg", (1, 1, 8, 16))]]}
    ds = read_cuhk_sysu(make_cuhk_sysu(tmp_path, galleries=galleries), gallery_size=50)
    by_name = {s.name: s.pids.tolist() for s in ds.gallery}
    assert by_name["s2.jpg"] == [1, -1]
    assert by_name["s4.jpg"] == [-1, 2]  # (70, 5, 30, 61) is no annotated box: not labelled, but counted
    assert ds.options["unmatched_boxes"] == 1
    assert {k: v.tolist() for k, v in ds.protocol.targets[0].items()} == {1: [12, 22, 42, 82], 2: [70, 5, 100, 66]}

"""Human parsing data: the generator's exact part masks, the LIP / PASCAL-Person-Part / CIHP layouts, readers, check."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from plipbench.data.check import check_dataset
from plipbench.data.readers import read_dataset
from plipbench.data.readers.parsing import LIP_CLASSES, PASCAL_CLASSES
from plipbench.data.synth import parts as P
from plipbench.data.synth.generate import generate
from plipbench.data.synth.identity import derive_rng, identity_for
from plipbench.data.synth.render import render_person
from plipbench.data.synth.scenes import sample_look
from plipbench.errors import DataError
from plipbench.evaluation.runner import dataset_fingerprint

# LIP class -> the PASCAL-Person-Part classes the same pixel may have
ALLOWED = {
    P.BG: {0}, P.HAT: {P.P_HEAD}, P.HAIR: {P.P_HEAD}, P.SUNGLASSES: {P.P_HEAD}, P.FACE: {P.P_HEAD},
    P.UPPER: {P.P_TORSO, P.P_UPPER_ARM, P.P_LOWER_ARM}, P.COAT: {P.P_TORSO, P.P_UPPER_ARM, P.P_LOWER_ARM, P.P_UPPER_LEG},
    P.DRESS: {P.P_TORSO, P.P_UPPER_ARM, P.P_LOWER_ARM, P.P_UPPER_LEG}, P.SKIRT: {P.P_UPPER_LEG},
    P.PANTS: {P.P_UPPER_LEG, P.P_LOWER_LEG}, P.LEFT_ARM: {P.P_UPPER_ARM, P.P_LOWER_ARM, P.P_TORSO},
    P.RIGHT_ARM: {P.P_UPPER_ARM, P.P_LOWER_ARM, P.P_TORSO}, P.LEFT_LEG: {P.P_UPPER_LEG, P.P_LOWER_LEG},
    P.RIGHT_LEG: {P.P_UPPER_LEG, P.P_LOWER_LEG}, P.LEFT_SHOE: {P.P_LOWER_LEG}, P.RIGHT_SHOE: {P.P_LOWER_LEG},
}  # fmt: skip


def _render(idx: int, view: str, parts: bool):
    rng = derive_rng("render", "synth-pa100k", 0, idx, 0)
    return render_person(identity_for("synth-pa100k", 0, idx), view, rng, (128, 64), look=sample_look(rng),
                         parts=parts)


def test_part_labels_never_change_the_image_and_follow_the_drawing() -> None:
    seen = np.zeros(len(LIP_CLASSES), bool)
    for idx in range(40):
        for view in ("front", "side", "back"):
            img, labels = _render(idx, view, True)
            assert np.array_equal(img, _render(idx, view, False))
            assert labels.shape == (128, 64, 2) and labels.dtype == np.uint8
            lip, pascal = labels[..., 0], labels[..., 1]
            assert lip.max() < len(LIP_CLASSES) and pascal.max() < len(PASCAL_CLASSES)
            for c in np.unique(lip):
                assert set(np.unique(pascal[lip == c]).tolist()) <= ALLOWED[int(c)], (idx, view, int(c))
            seen[np.unique(lip)] = True
            ident = identity_for("synth-pa100k", 0, idx)
            if ident.headwear != "none":
                assert (lip == P.HAT).any()
            if ident.glasses == "sunglasses" and view != "back":
                assert (lip == P.SUNGLASSES).any()
            if ident.lower_type == "skirt":
                assert (lip == P.SKIRT).any()
    # every class the drawing can produce appears in 120 images; gloves, socks, jumpsuits and scarves cannot
    assert {int(c) for c in np.flatnonzero(~seen)} == {3, 8, 10, 11}


def test_left_and_right_are_the_persons_own_sides() -> None:
    def mean_x(labels, cls):
        ys, xs = np.nonzero(labels[..., 0] == cls)
        return xs.mean() if xs.size else None

    checked = 0
    for idx in range(30):
        for view, left_on_image_right in (("front", True), ("back", False)):
            _, labels = _render(idx, view, True)
            for left, right in ((P.LEFT_SHOE, P.RIGHT_SHOE), (P.LEFT_LEG, P.RIGHT_LEG), (P.LEFT_ARM, P.RIGHT_ARM)):
                a, b = mean_x(labels, left), mean_x(labels, right)
                if a is not None and b is not None and abs(a - b) > 2:
                    assert (a > b) == left_on_image_right, (idx, view, left)
                    checked += 1
    assert checked > 50
    assert P.limb_side("side", 0, +1) == "left" and P.limb_side("side", 1, +1) == "right"
    assert P.limb_side("side", 0, -1) == "right"


@pytest.mark.parametrize(("layout", "reader", "classes"), [("lip", "lip", 20), ("lip-schp", "lip", 20),
                                                            ("pascal-person-part", "pascal-person-part", 7),
                                                            ("cihp", "cihp", 20)])
def test_generated_layouts_read_back_with_their_masks(tmp_path, layout, reader, classes) -> None:
    manifest = generate("synth-lip", tmp_path / layout, identities=24, layout=layout, progress=False)
    assert manifest["layout"] == reader and manifest["files"] == 48 and len(manifest["classes"]) == classes
    ds = read_dataset(reader, tmp_path / layout)
    assert ds.splits() == {"train": 18, "val": 6} and len(ds.class_names) == classes
    assert [r.pid for r in ds.records] == list(range(24))
    first = ds.records[0]
    mask = np.asarray(Image.open(first.mask_path))
    assert mask.shape == (128, 64) and mask.max() < classes and (mask > 0).mean() > 0.1
    report = check_dataset(reader, tmp_path / layout)
    assert report.ok, report.problems


def test_the_pascal_masks_are_the_second_channel_of_the_same_drawing(tmp_path) -> None:
    generate("synth-lip", tmp_path / "a", identities=12, progress=False)
    lip = read_dataset("lip", tmp_path / "a")
    generate("synth-lip", tmp_path / "b", identities=12, layout="pascal-person-part", progress=False)
    pascal = read_dataset("pascal-person-part", tmp_path / "b")
    for a, b in zip(lip.records, pascal.records, strict=True):
        assert np.array_equal(np.asarray(Image.open(a.image_path)), np.asarray(Image.open(b.image_path)))
        la, lb = np.asarray(Image.open(a.mask_path)), np.asarray(Image.open(b.mask_path))
        assert ((la == 0) == (lb == 0)).all()  # the same person silhouette
        assert (lb[np.isin(la, [P.HAT, P.HAIR, P.FACE])] == P.P_HEAD).all()


def test_lip_variants_official_doubled_and_humanbench(tmp_path) -> None:
    src = tmp_path / "src"
    generate("synth-lip", src, identities=8, progress=False)
    doubled = tmp_path / "doubled"
    shutil.copytree(src / "TrainVal_images", doubled / "TrainVal_images" / "TrainVal_images")
    shutil.copytree(src / "TrainVal_parsing_annotations", doubled / "TrainVal_parsing_annotations")
    ds = read_dataset("lip", doubled)
    assert ds.options["variant"] == "official" and len(ds) == 8
    hb = tmp_path / "hb"
    (hb / "data").mkdir(parents=True)
    for s in ("train", "val"):
        shutil.copytree(src / "TrainVal_images" / f"{s}_images", hb / "data" / f"{s}_images")
        shutil.copy(src / "TrainVal_images" / f"{s}_id.txt", hb / "data" / f"{s}_id.txt")
    shutil.copytree(src / "TrainVal_parsing_annotations", hb / "TrainVal_parsing_annotations")
    assert read_dataset("lip", hb).options["variant"] == "humanbench"
    # the fingerprint covers the label maps: the same images with other masks are another dataset
    other = read_dataset("lip", src)
    assert dataset_fingerprint(other) == dataset_fingerprint(read_dataset("lip", src))
    moved = [r.__class__(r.image_path, r.pid, r.camid, r.split, mask_path=r.image_path) for r in other.records]
    assert dataset_fingerprint(other) != dataset_fingerprint(other.__class__(
        name=other.name, layout=other.layout, root=other.root, records=moved, options=other.options))


def test_bad_parsing_copies_are_clear_errors(tmp_path) -> None:
    root = tmp_path / "lip"
    generate("synth-lip", root, identities=8, progress=False)
    masks = root / "TrainVal_parsing_annotations" / "train_segmentations"
    Image.fromarray(np.full((128, 64), 25, np.uint8)).save(masks / "000001.png")
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(masks / "000002.png")
    Image.fromarray(np.zeros((128, 64, 3), np.uint8)).save(masks / "000003.png")
    report = check_dataset("lip", root)
    why = dict((p.name, w) for p, w in report.bad_masks)
    assert "outside 0..19" in why["000001.png"] and "its image 64x128" in why["000002.png"]
    assert "mode RGB" in why["000003.png"] and not report.ok
    (masks / "000004.png").unlink()
    with pytest.raises(DataError, match="label map of id '000004'"):
        read_dataset("lip", root)
    (root / "TrainVal_images" / "train_id.txt").write_text("../../etc/passwd\n")
    with pytest.raises(DataError, match="not a bare file name"):
        read_dataset("lip", root)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="train_id.txt"):
        read_dataset("lip", tmp_path / "empty")

"""Human parsing datasets: LIP (official zip and SCHP's flattened layout), PASCAL-Person-Part, CIHP.

Each record is one image with its label map (:attr:`PersonRecord.mask_path`, an 8-bit PNG of class ids, 255 =
ignore); ``pid`` is the image's 0-based index (parsing has no identities) and the dataset's ``class_names`` are the
label set. Layouts (``../shared/reference/more-tasks.md`` §2.1):

- **LIP**, the official zip: ``TrainVal_images/{train_images,val_images}/<id>.jpg``,
  ``TrainVal_images/{train_id,val_id}.txt``, ``TrainVal_parsing_annotations/{train,val}_segmentations/<id>.png``
  (an unzip may double the top folder, ``TrainVal_images/TrainVal_images/...``: both are looked in). SCHP's
  flattened copy: ``<root>/{train,val}_images``, ``{train,val}_segmentations``, ``{train,val}_id.txt``.
  HumanBench's: ``data/{train,val}_images`` + ``data/{train,val}_id.txt`` with
  ``TrainVal_parsing_annotations/{train,val}_segmentations``. The reader finds whichever is there and records
  it (``options["variant"]``). LIP's test labels are not public, so only train and val are read.
- **PASCAL-Person-Part** has no single official folder layout (it is re-packaged from PASCAL-Part). plipbench
  reads the SCHP-style folders (``{train,val}_images``, ``{train,val}_segmentations``, ``{train,val}_id.txt``) with
  SCHP's 7 classes in SCHP's order (Background, Head, Torso, Upper Arms, Lower Arms, Upper Legs, Lower Legs);
  other packagings number the classes differently, so check a copy's order before using it.
- **CIHP**: ``instance-level_human_parsing/{Training,Validation}/{Images,Category_ids}`` with
  ``Training/train_id.txt`` and ``Validation/val_id.txt``; the 20 LIP classes. Only the semantic (category) maps
  are read.

Every listed id must have its image and label map; anything missing is a :class:`DataError` naming the file.
"""

from __future__ import annotations

from pathlib import Path

from plipbench.data.readers.base import ReaderInfo, SafeJoiner, locate_root, require_utf8, text_lines
from plipbench.data.records import PersonDataset, PersonRecord
from plipbench.errors import DataError

LIP_CLASSES = (
    "Background", "Hat", "Hair", "Glove", "Sunglasses", "Upper-clothes", "Dress", "Coat", "Socks", "Pants",
    "Jumpsuits", "Scarf", "Skirt", "Face", "Left-arm", "Right-arm", "Left-leg", "Right-leg", "Left-shoe",
    "Right-shoe",
)  # fmt: skip
LIP_FLIP_PAIRS = ((14, 15), (16, 17), (18, 19))
PASCAL_CLASSES = ("Background", "Head", "Torso", "Upper Arms", "Lower Arms", "Upper Legs", "Lower Legs")
SPLITS = ("train", "val")


def _ids(path: Path) -> list[str]:
    ids = []
    for lineno, line in text_lines(path):
        text = line.strip()
        if not text:
            continue
        require_utf8(path, text, f"line {lineno}: id")
        if "/" in text or "\\" in text or text.startswith("."):
            raise DataError(path, f"line {lineno}: id {text!r} is not a bare file name")
        ids.append(text)
    if not ids:
        raise DataError(path, "id list is empty")
    return ids


def _records(root: Path, listing: dict[str, tuple[Path, Path, Path]], suffix: str = ".jpg") -> list[PersonRecord]:
    """``listing[split] = (id file, image folder, label folder)``; every id needs its image and PNG."""
    records: list[PersonRecord] = []
    for split, (id_file, image_dir, mask_dir) in listing.items():
        images, masks = SafeJoiner(image_dir, id_file), SafeJoiner(mask_dir, id_file)
        for n, ident in enumerate(_ids(id_file)):
            image = images.join(ident + suffix, f"id {n + 1} ({ident})")
            mask = masks.join(ident + ".png", f"id {n + 1} ({ident})")
            if not image.is_file():
                raise DataError(image, f"image of id {ident!r} (listed in {id_file}) not found")
            if not mask.is_file():
                raise DataError(mask, f"label map of id {ident!r} (listed in {id_file}) not found")
            records.append(PersonRecord(image, len(records), -1, split, mask_path=mask))
    return records


# --------------------------------------------------------------------------------------------------
# LIP

LIP_CANDIDATES = ("LIP", "lip")


def _lip_variant(p: Path) -> tuple[str, dict[str, tuple[Path, Path, Path]]] | None:
    """The LIP variant found at ``p`` and its (id file, images, labels) per split, or None."""
    for top in (p / "TrainVal_images", p / "TrainVal_images" / "TrainVal_images"):
        ann = next((a for a in (p / "TrainVal_parsing_annotations",
                                p / "TrainVal_parsing_annotations" / "TrainVal_parsing_annotations")
                    if (a / "train_segmentations").is_dir()), None)
        if (top / "train_id.txt").is_file() and ann is not None:
            return "official", {s: (top / f"{s}_id.txt", top / f"{s}_images", ann / f"{s}_segmentations")
                                for s in SPLITS if (top / f"{s}_id.txt").is_file()}
    if (p / "train_id.txt").is_file() and (p / "train_segmentations").is_dir():
        return "schp", {s: (p / f"{s}_id.txt", p / f"{s}_images", p / f"{s}_segmentations")
                        for s in SPLITS if (p / f"{s}_id.txt").is_file()}
    data, ann = p / "data", p / "TrainVal_parsing_annotations"
    if (data / "train_id.txt").is_file() and (ann / "train_segmentations").is_dir():
        return "humanbench", {s: (data / f"{s}_id.txt", data / f"{s}_images", ann / f"{s}_segmentations")
                              for s in SPLITS if (data / f"{s}_id.txt").is_file()}
    return None


def read_lip(root: str | Path) -> PersonDataset:
    """LIP in its official, SCHP or HumanBench layout (train and val; 20 classes)."""
    where = locate_root("lip", root, LIP_CANDIDATES, lambda p: _lip_variant(p) is not None,
                        "TrainVal_images/train_id.txt with TrainVal_parsing_annotations/, or train_id.txt with "
                        "train_images/ and train_segmentations/ (SCHP)")
    variant, listing = _lip_variant(where)  # type: ignore[misc]
    return PersonDataset(name="LIP", layout="lip", root=where, records=_records(where, listing),
                         class_names=list(LIP_CLASSES), options={"variant": variant})


LIP_TREE = """
LIP/                                   (the official zip; SCHP's flattened copy and HumanBench's also read)
  TrainVal_images/train_images/<id>.jpg, val_images/<id>.jpg, train_id.txt, val_id.txt
  TrainVal_parsing_annotations/train_segmentations/<id>.png, val_segmentations/<id>.png   (0..19, 255 ignore)
"""

# --------------------------------------------------------------------------------------------------
# PASCAL-Person-Part

PASCAL_CANDIDATES = ("pascal-person-part", "PASCAL-Person-Part", "PascalPersonPart", "pascal_person_part")


def _pascal_listing(p: Path) -> dict[str, tuple[Path, Path, Path]] | None:
    if not ((p / "train_id.txt").is_file() and (p / "train_segmentations").is_dir()):
        return None
    return {s: (p / f"{s}_id.txt", p / f"{s}_images", p / f"{s}_segmentations") for s in SPLITS
            if (p / f"{s}_id.txt").is_file()}


def read_pascal_person_part(root: str | Path) -> PersonDataset:
    """PASCAL-Person-Part in SCHP-style folders (7 classes in SCHP's order; see the module docstring)."""
    where = locate_root("pascal-person-part", root, PASCAL_CANDIDATES, lambda p: _pascal_listing(p) is not None,
                        "train_id.txt with train_images/ and train_segmentations/")
    listing = _pascal_listing(where)
    assert listing is not None
    return PersonDataset(name="PASCAL-Person-Part", layout="pascal-person-part", root=where,
                         records=_records(where, listing), class_names=list(PASCAL_CLASSES),
                         options={"class_order": "schp"})


PASCAL_TREE = """
pascal-person-part/                    (SCHP-style folders; SCHP's class order)
  train_images/<id>.jpg, val_images/<id>.jpg, train_id.txt, val_id.txt
  train_segmentations/<id>.png, val_segmentations/<id>.png   (0..6, 255 ignore)
"""

# --------------------------------------------------------------------------------------------------
# CIHP

CIHP_CANDIDATES = ("instance-level_human_parsing", "CIHP", "cihp")
CIHP_FOLDERS = {"train": "Training", "val": "Validation"}


def _cihp_listing(p: Path) -> dict[str, tuple[Path, Path, Path]] | None:
    if not (p / "Training" / "train_id.txt").is_file():
        return None
    return {s: (p / f / f"{s}_id.txt", p / f / "Images", p / f / "Category_ids") for s, f in CIHP_FOLDERS.items()
            if (p / f / f"{s}_id.txt").is_file()}


def read_cihp(root: str | Path) -> PersonDataset:
    """CIHP's semantic part maps (``Category_ids``; 20 LIP classes), train and val."""
    where = locate_root("cihp", root, CIHP_CANDIDATES, lambda p: _cihp_listing(p) is not None,
                        "Training/train_id.txt with Training/Images/ and Training/Category_ids/")
    listing = _cihp_listing(where)
    assert listing is not None
    return PersonDataset(name="CIHP", layout="cihp", root=where, records=_records(where, listing),
                         class_names=list(LIP_CLASSES))


CIHP_TREE = """
instance-level_human_parsing/
  Training/Images/<id>.jpg, Training/Category_ids/<id>.png, Training/train_id.txt
  Validation/Images/<id>.jpg, Validation/Category_ids/<id>.png, Validation/val_id.txt
"""

INFOS = (
    ReaderInfo(
        name="lip",
        description="LIP single-person human parsing (20 classes; train / val, test labels are not public).",
        reader=read_lip,
        tree=LIP_TREE,
        split_sizes={"train": {"images": 30462}, "val": {"images": 10000}},
        folder_names=LIP_CANDIDATES,
        marker=lambda p: _lip_variant(p) is not None,
        kind="parsing",
        required_splits=("train", "val"),
    ),
    ReaderInfo(
        name="pascal-person-part",
        description="PASCAL-Person-Part human parsing (7 classes, SCHP's order; SCHP-style folders).",
        reader=read_pascal_person_part,
        tree=PASCAL_TREE,
        split_sizes={},  # the usual 1,716 / 1,817 split is unverified (more-tasks.md §2.1)
        folder_names=PASCAL_CANDIDATES,
        marker=lambda p: _pascal_listing(p) is not None,
        kind="parsing",
        required_splits=("train", "val"),
    ),
    ReaderInfo(
        name="cihp",
        description="CIHP multi-person human parsing, semantic part maps (20 LIP classes).",
        reader=read_cihp,
        tree=CIHP_TREE,
        split_sizes={"train": {"images": 28280}},
        folder_names=CIHP_CANDIDATES,
        marker=lambda p: _cihp_listing(p) is not None,
        kind="parsing",
        required_splits=("train", "val"),
    ),
)

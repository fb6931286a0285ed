"""Text-based person search datasets (CUHK-PEDES, ICFG-PEDES, RSTPReid) and SYNTH-PEDES.

Each is one JSON list of per-image records (IRRA is the reference loader):

* CUHK-PEDES ``reid_raw.json``: ``{"split", "captions", "file_path", "processed_tokens", "id"}``, images
  under ``imgs/<file_path>``; ids are **1-based** and kept raw (IRRA subtracts 1 only for training).
* ICFG-PEDES ``ICFG-PEDES.json`` (IRRA code) or ``ICFG_PEDES.json`` (IRRA README, SSAN, PLIP): same
  schema, one caption per image, only train / test.
* RSTPReid ``data_captions.json``: ``{"id", "img_path", "captions", "split"}`` (note ``img_path``).
* SYNTH-PEDES ``synthpedes_dataset.json``: ``{"id", "file_path", "attributes", "captions",
  "prompt_caption"}``, images at ``<root>/<file_path>``; no split key: every record is ``"train"``
  (pre-training set, no official test split). ``attributes`` is a one-element list holding six
  comma-separated phrases (gender, head, upper, lower, shoes, belongings), split into
  :attr:`PersonRecord.attribute_phrases`.

Split values: ``"train"`` and ``"test"`` are kept, ``"val"`` and any other value become ``"val"`` (as
IRRA does). Image paths must stay inside the image folder (see :class:`SafeJoiner`).
"""

from __future__ import annotations

from pathlib import Path

from plipbench.data.readers.base import (
    ReaderInfo,
    SafeJoiner,
    as_pid,
    as_strings,
    first_existing,
    json_records,
    load_json,
    locate_root,
    require_keys,
)
from plipbench.data.records import PersonDataset, PersonRecord
from plipbench.errors import DataError

ICFG_JSON = ("ICFG-PEDES.json", "ICFG_PEDES.json")
ATTRIBUTE_SLOTS = ("gender", "head", "upper", "lower", "shoes", "belongings")


def _split(value: object) -> str:
    return value if value in ("train", "test") else "val"


def _read_caption_json(path: Path, image_dir: Path, path_key: str) -> list[PersonRecord]:
    records = json_records(path, load_json(path))
    joiner = SafeJoiner(image_dir, path)
    out: list[PersonRecord] = []
    keys = ("id", path_key, "captions", "split")
    for i, rec in enumerate(records):
        require_keys(path, i, rec, keys)
        out.append(PersonRecord(
            image_path=joiner.join(rec[path_key], f"record {i}"),
            pid=as_pid(path, f"record {i} key 'id'", rec["id"]),
            split=_split(rec["split"]),
            captions=as_strings(path, f"record {i} key 'captions'", rec["captions"]),
        ))
    return out


def _json_marker(*names: str):
    return lambda p: any((p / n).is_file() for n in names)


CUHK_CANDIDATES = ("CUHK-PEDES", "cuhk-pedes", "CUHK_PEDES", "cuhk_pedes")
ICFG_CANDIDATES = ("ICFG-PEDES", "icfg-pedes", "ICFG_PEDES", "icfg_pedes")
RSTP_CANDIDATES = ("RSTPReid", "rstpreid", "RSTPReid-Dataset", "RSTPReid_dataset")
SYNTH_CANDIDATES = ("SYNTH-PEDES", "synth-pedes", "SYNTH_PEDES", "SynthPedes", "synthpedes")


def read_cuhk_pedes(root: str | Path) -> PersonDataset:
    """CUHK-PEDES from ``reid_raw.json`` (train / val / test, ids 1-based and kept raw)."""
    where = locate_root("cuhk-pedes", root, CUHK_CANDIDATES, _json_marker("reid_raw.json"), "reid_raw.json")
    records = _read_caption_json(where / "reid_raw.json", where / "imgs", "file_path")
    return PersonDataset(name="CUHK-PEDES", layout="cuhk-pedes", root=where, records=records)


def read_icfg_pedes(root: str | Path) -> PersonDataset:
    """ICFG-PEDES from ``ICFG-PEDES.json`` or ``ICFG_PEDES.json`` (first found; train / test)."""
    where = locate_root("icfg-pedes", root, ICFG_CANDIDATES, _json_marker(*ICFG_JSON), " or ".join(ICFG_JSON))
    path = first_existing([where / n for n in ICFG_JSON])
    assert path is not None
    records = _read_caption_json(path, where / "imgs", "file_path")
    return PersonDataset(name="ICFG-PEDES", layout="icfg-pedes", root=where, records=records,
                         options={"annotation": path.name})


def read_rstpreid(root: str | Path) -> PersonDataset:
    """RSTPReid from ``data_captions.json`` (image key ``img_path``; train / val / test)."""
    where = locate_root("rstpreid", root, RSTP_CANDIDATES, _json_marker("data_captions.json"), "data_captions.json")
    records = _read_caption_json(where / "data_captions.json", where / "imgs", "img_path")
    return PersonDataset(name="RSTPReid", layout="rstpreid", root=where, records=records)


def read_synth_pedes(root: str | Path) -> PersonDataset:
    """SYNTH-PEDES from ``synthpedes_dataset.json``; every record in split ``"train"``."""
    where = locate_root("synth-pedes", root, SYNTH_CANDIDATES, _json_marker("synthpedes_dataset.json"),
                        "synthpedes_dataset.json")
    path = where / "synthpedes_dataset.json"
    data = json_records(path, load_json(path))
    joiner = SafeJoiner(where, path)
    out: list[PersonRecord] = []
    for i, rec in enumerate(data):
        require_keys(path, i, rec, ("id", "file_path", "captions"))
        attrs = rec.get("attributes", [])
        if isinstance(attrs, str):
            attrs = [attrs]
        phrases = as_strings(path, f"record {i} key 'attributes'", attrs)
        if len(phrases) > 1:
            raise DataError(path, f"record {i} key 'attributes': expected a one-element list holding the six "
                                  f"comma-separated phrases, got {len(phrases)} elements")
        slots = tuple(p.strip() for p in phrases[0].split(",")) if phrases else ()
        if phrases and len(slots) != len(ATTRIBUTE_SLOTS):
            raise DataError(path, f"record {i} key 'attributes': expected {len(ATTRIBUTE_SLOTS)} comma-separated "
                                  f"phrases ({', '.join(ATTRIBUTE_SLOTS)}), got {len(slots)}: {phrases[0]!r}")
        prompts = rec.get("prompt_caption", [])
        if isinstance(prompts, str):
            prompts = [prompts]
        out.append(PersonRecord(
            image_path=joiner.join(rec["file_path"], f"record {i}"),
            pid=as_pid(path, f"record {i} key 'id'", rec["id"]),
            split="train",
            captions=as_strings(path, f"record {i} key 'captions'", rec["captions"]),
            prompt_captions=as_strings(path, f"record {i} key 'prompt_caption'", prompts),
            attribute_phrases=slots,
        ))
    return PersonDataset(name="SYNTH-PEDES", layout="synth-pedes", root=where, records=out)


CUHK_TREE = """\
CUHK-PEDES/
  reid_raw.json   [{"split": "train|val|test", "captions": [...], "file_path": "train_query/p11600_s14885.jpg",
                    "processed_tokens": [[...]], "id": 11003}, ...]   (ids 1-based, kept raw)
  imgs/  cam_a/ cam_b/ CUHK01/ CUHK03/ Market/ test_query/ train_query/
"""

ICFG_TREE = """\
ICFG-PEDES/
  ICFG-PEDES.json  (or ICFG_PEDES.json)  same record schema as reid_raw.json, one caption, train/test
  imgs/  train/...  test/...   (MSMT17 storage folders, not the split: the json decides)
"""

RSTP_TREE = """\
RSTPReid/
  data_captions.json  [{"id": 0, "img_path": "0000_c14_0031.jpg", "captions": [2 strings],
                        "split": "train|val|test"}, ...]
  imgs/  *.jpg
"""

SYNTH_TREE = """\
SYNTH-PEDES/
  synthpedes_dataset.json  [{"id": 7, "file_path": "Part1/7/1.jpg",
                             "attributes": ["man,black hair,black shirt,pink shorts,black shoes,unknown"],
                             "captions": [2-3 strings], "prompt_caption": [str]}, ...]
  Part1/ ... Part11/   (all records -> split "train"; no official test split)
"""

INFOS = (
    ReaderInfo(
        name="cuhk-pedes",
        description="CUHK-PEDES text-based person search (train / val / test, 1-based ids).",
        reader=read_cuhk_pedes,
        tree=CUHK_TREE,
        split_sizes={
            "train": {"images": 34054, "identities": 11003, "captions": 68126},
            "val": {"images": 3078, "identities": 1000, "captions": 6158},
            "test": {"images": 3074, "identities": 1000, "captions": 6156},
        },
        folder_names=CUHK_CANDIDATES,
        marker=_json_marker("reid_raw.json"),
        kind="text",
        required_splits=("train", "test"),
    ),
    ReaderInfo(
        name="icfg-pedes",
        description="ICFG-PEDES text-based person search (train / test, one caption per image).",
        reader=read_icfg_pedes,
        tree=ICFG_TREE,
        split_sizes={
            "train": {"images": 34674, "identities": 3102, "captions": 34674},
            "test": {"images": 19848, "identities": 1000, "captions": 19848},
        },
        folder_names=ICFG_CANDIDATES,
        marker=_json_marker(*ICFG_JSON),
        kind="text",
        required_splits=("train", "test"),
    ),
    ReaderInfo(
        name="rstpreid",
        description="RSTPReid text-based person search (train / val / test, two captions per image).",
        reader=read_rstpreid,
        tree=RSTP_TREE,
        # The train caption count is not pinned (2 x 18,505 = 37,010 expected, one loader reports 37,004).
        split_sizes={
            "train": {"images": 18505, "identities": 3701},
            "val": {"images": 1000, "identities": 200, "captions": 2000},
            "test": {"images": 1000, "identities": 200, "captions": 2000},
        },
        folder_names=RSTP_CANDIDATES,
        marker=_json_marker("data_captions.json"),
        kind="text",
        required_splits=("train", "test"),
    ),
    ReaderInfo(
        name="synth-pedes",
        description="SYNTH-PEDES (PLIP pre-training set; the paper reports 312,321 ids / 4,791,711 images / "
                    "12,138,157 captions, not verified against the release, so not checked).",
        reader=read_synth_pedes,
        tree=SYNTH_TREE,
        split_sizes={},
        folder_names=SYNTH_CANDIDATES,
        marker=_json_marker("synthpedes_dataset.json"),
        kind="text",
        required_splits=("train",),
    ),
)

"""The synthetic generator writes real layouts whose manifest matches a recount from the files."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

import pytest

from plipbench.data.synth import PRESETS, generate, parse_image_size
from plipbench.errors import ConfigError

TINY = {"identities": 8, "images_per_id": 3, "progress": False}
# person search presets write scene frames, not person crops: tests/data/test_synth_search.py
CASES = [(name, PRESETS[name].layout) for name in PRESETS if PRESETS[name].task != "person-search"] + [
    ("synth-cuhk", "rstpreid"),
    ("synth-icfg", "rstpreid"),
    ("synth-market", "msmt17"),
    ("synth-market", "cuhk03-np"),
    ("synth-duke", "msmt17"),
]


@pytest.fixture(scope="module")
def copies(tmp_path_factory) -> dict[tuple[str, str], Path]:
    out = {}
    for preset, layout in CASES:
        root = tmp_path_factory.mktemp(f"{preset}-{layout}")
        generate(preset, root, layout=layout, **TINY)
        out[(preset, layout)] = root
    return out


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _summary(rows: list[tuple[str, int, int, int]]) -> dict:
    """rows of (split, pid, camid, n_captions) -> the PersonDataset.summary() shape, recounted by hand."""
    out: dict = {}
    by = defaultdict(list)
    for row in rows:
        by[row[0]].append(row)
    for split, rs in by.items():
        out[split] = {"images": len(rs), "identities": len({r[1] for r in rs}), "captions": sum(r[3] for r in rs),
                      "cameras": len({r[2] for r in rs if r[2] >= 0})}  # fmt: skip
    return out


def _recount(root: Path, layout: str) -> tuple[dict, int]:
    """Recount splits from the written annotation files alone (json / scipy / file names)."""
    rows = []
    if layout == "msmt17":
        lists = {"list_train.txt": ("train", "train"), "list_val.txt": ("val", "train"),
                 "list_query.txt": ("query", "test"), "list_gallery.txt": ("gallery", "test")}
        for name, (split, folder) in lists.items():
            for line in (root / name).read_text().splitlines():
                rel, label = line.split()
                assert (root / folder / rel).is_file()
                rows.append((split, int(label), int(Path(rel).name.split("_")[2]) - 1, 0))
        return _summary(rows), sum(1 for p in root.rglob("*.jpg"))
    if layout in ("market1501", "dukemtmc", "cuhk03-np", "occluded-duke"):
        folders = {"bounding_box_train": "train", "query": "query", "bounding_box_test": "gallery"}
        files = 0
        base = root / "labeled" if layout == "cuhk03-np" else root
        for folder, split in folders.items():
            for p in sorted((base / folder).glob("*.png" if layout == "cuhk03-np" else "*.jpg")):
                files += 1
                pid, cam = (int(v) for v in re.match(r"([-\d]+)_c(\d)", p.name).groups())
                if pid != -1:
                    rows.append((split, pid, cam - 1, 0))
        return _summary(rows), files
    if layout in ("occluded-reid", "partial-reid"):  # test-only: query camera 0, gallery camera 1
        folders = {"occluded-reid": {"query": "query", "gallery": "gallery"},
                   "partial-reid": {"query": "partial_body_images", "gallery": "whole_body_images"}}[layout]
        for split, folder in folders.items():
            for p in sorted((root / folder).glob("*.jpg")):
                rows.append((split, int(p.name.split("_")[0]), 0 if split == "query" else 1, 0))
        return _summary(rows), len(rows)
    if layout in ("lip", "lip-schp", "pascal-person-part", "cihp"):
        from plipbench.data.synth.writers import PARSING_FOLDERS

        images = 0
        for split, (image_dir, mask_dir, id_file) in PARSING_FOLDERS[layout].items():
            for ident in (root / id_file).read_text().split():
                assert (root / image_dir / f"{ident}.jpg").is_file() and (root / mask_dir / f"{ident}.png").is_file()
                rows.append((split, images, -1, 0))
                images += 1
        return _summary(rows), 2 * images  # an image and its label map each
    if layout == "pa100k":
        import scipy.io

        mat = scipy.io.loadmat(root / "annotation.mat")
        assert [str(mat["attributes"][i][0][0]) for i in range(26)][:2] == ["Female", "AgeOver60"]
        index = 0
        for split in ("train", "val", "test"):
            names = [
                str(mat[f"{split}_images_name"][i][0][0]) for i in range(len(mat[f"{split}_images_name"]))
            ]
            assert mat[f"{split}_label"].shape == (len(names), 26)
            for name in names:
                assert (root / "data" / name).is_file()
                rows.append((split, index, -1, 0))
                index += 1
        return _summary(rows), index
    name = {"cuhk-pedes": "reid_raw.json", "icfg-pedes": "ICFG-PEDES.json", "rstpreid": "data_captions.json",
            "synth-pedes": "synthpedes_dataset.json"}[layout]  # fmt: skip
    recs = json.loads((root / name).read_text())
    for r in recs:
        rel = r.get("file_path", r.get("img_path"))
        assert (root / ("" if layout == "synth-pedes" else "imgs") / rel).is_file()
        split = r.get("split", "train")
        split = split if split in ("train", "test") else "val"
        rows.append((split, r["id"], -1, len(r["captions"])))
    return _summary(rows), len(recs)


@pytest.mark.parametrize(("preset", "layout"), CASES)
def test_manifest_matches_a_recount_of_the_written_files(copies, preset: str, layout: str) -> None:
    root = copies[(preset, layout)]
    manifest = json.loads((root / "plipbench_synth_manifest.json").read_text())
    splits, files = _recount(root, layout)
    assert manifest["splits"] == splits
    assert manifest["files"] == files == sum(1 for p in root.rglob("*") if p.suffix in (".jpg", ".png"))
    assert manifest["preset"] == preset and manifest["layout"] == layout and manifest["identities"] == 8
    sidecar = json.loads((root / manifest["sidecar"]).read_text())
    parsing = "classes" in manifest  # a parsing copy: one sidecar entry per image, files count the label maps too
    assert len(sidecar) == (files // 2 if parsing else files) and all((root / rel).is_file() for rel in sidecar)


@pytest.mark.parametrize(("preset", "layout"), CASES)
def test_reader_summary_equals_manifest(copies, preset: str, layout: str) -> None:
    readers = pytest.importorskip("plipbench.data.readers")
    root = copies[(preset, layout)]
    manifest = json.loads((root / "plipbench_synth_manifest.json").read_text())
    assert readers.read_dataset(layout, root).summary() == manifest["splits"]


def test_same_seed_is_byte_identical_and_other_seed_differs(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate("synth-market", a, seed=3, workers=1, **TINY)
    generate("synth-market", b, seed=3, workers=2, **TINY)  # worker count must not matter
    generate("synth-market", c, seed=4, workers=1, **TINY)
    fa, fb, fc = _files(a), _files(b), _files(c)
    assert fa == fb
    assert fa["plipbench_synth_manifest.json"] != fc["plipbench_synth_manifest.json"]
    assert {k for k in fa if k.endswith(".jpg")} != {k for k in fc if k.endswith(".jpg")} or any(
        fa[k] != fc[k] for k in fa if k in fc and k.endswith(".jpg")
    )


def test_pa100k_mat_is_byte_identical(tmp_path: Path) -> None:
    generate("synth-pa100k", tmp_path / "a", **TINY)
    generate("synth-pa100k", tmp_path / "b", **TINY)
    assert _files(tmp_path / "a") == _files(tmp_path / "b")


def _identities_by_split(root: Path) -> dict[str, set[str]]:
    sidecar = json.loads((root / "plipbench_synth_annotations.json").read_text())
    out: dict[str, set[str]] = defaultdict(set)
    for entry in sidecar.values():
        split = "test" if entry["split"] in ("query", "gallery") else entry["split"]
        out[split].add(json.dumps(entry["identity"], sort_keys=True))
    return out


def test_identities_are_disjoint_between_splits_and_presets(copies) -> None:
    pools = {}
    for (preset, layout), root in copies.items():
        if layout != PRESETS[preset].layout:
            continue
        by_split = _identities_by_split(root)
        names = list(by_split)
        for i, x in enumerate(names):
            for y in names[i + 1 :]:
                assert not by_split[x] & by_split[y], (preset, x, y)
        pools[preset] = set().union(*by_split.values())
    names = list(pools)
    for i, x in enumerate(names):
        for y in names[i + 1 :]:
            assert not pools[x] & pools[y], (x, y)


def test_market_file_names_query_and_distractors(copies) -> None:
    root = copies[("synth-market", "market1501")]
    names = [p.name for p in root.rglob("*.jpg")]
    pattern = re.compile(r"^(-1|\d{4})_c([1-6])s([1-6])_(\d{6})_(\d{2})\.jpg$")
    assert all(pattern.match(n) for n in names), [n for n in names if not pattern.match(n)]
    gallery = [p.name for p in (root / "bounding_box_test").glob("*.jpg")]
    assert any(n.startswith("-1_") for n in gallery) and any(n.startswith("0000_") for n in gallery)
    assert not any(n.startswith(("-1_", "0000_")) for n in names if n not in gallery)
    query = [re.match(r"(\d+)_c(\d)", p.name).groups() for p in (root / "query").glob("*.jpg")]
    assert len(query) == len(set(query))  # at most one query per (id, camera)
    good = {re.match(r"(\d+)_c(\d)", n).groups() for n in gallery if not n.startswith(("-1", "0000"))}
    for pid, cam in query:  # every query has a match in another camera
        assert any(g_pid == pid and g_cam != cam for g_pid, g_cam in good)
    train = {p.name[:4] for p in (root / "bounding_box_train").glob("*.jpg")}
    assert not train & {pid for pid, _ in query}


def test_duke_file_names(copies) -> None:
    root = copies[("synth-duke", "dukemtmc")]
    names = [p.name for p in root.rglob("*.jpg")]
    assert names and all(re.fullmatch(r"\d{4}_c[1-8]_f\d{7}\.jpg", n) for n in names)


def test_bad_inputs_raise_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown synthetic preset 'synth-nope'"):
        generate("synth-nope", tmp_path / "x", progress=False)
    with pytest.raises(ConfigError, match=r"'synth-market'.*'cuhk-pedes'"):
        generate("synth-market", tmp_path / "x", layout="cuhk-pedes", progress=False)
    with pytest.raises(ConfigError, match="cannot be generated"):
        generate("synth-cuhk", tmp_path / "x", layout="peta", progress=False)
    with pytest.raises(ConfigError, match="image-size"):
        generate("synth-cuhk", tmp_path / "x", image_size=(64, 128), progress=False)
    for text in ("128", "ax64", "128x64x3"):
        with pytest.raises(ConfigError, match="HxW"):
            parse_image_size(text)
    assert parse_image_size("256x128") == (256, 128)
    with pytest.raises(ConfigError, match="--identities 2"):
        generate("synth-cuhk", tmp_path / "x", identities=2, progress=False)
    with pytest.raises(ConfigError, match="--images-per-id 1"):
        generate("synth-market", tmp_path / "x", identities=4, images_per_id=1, progress=False)
    assert not (tmp_path / "x").exists()


def test_non_empty_out_is_refused_unless_same_arguments_or_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not empty"):
        generate("synth-cuhk", out, **TINY)
    generate("synth-cuhk", out, overwrite=True, **TINY)
    assert (out / "notes.txt").read_text() == "mine"  # foreign files are never removed
    generate("synth-cuhk", out, **TINY)  # same arguments: allowed, same content
    with pytest.raises(ConfigError, match="other arguments"):
        generate("synth-cuhk", out, seed=1, **TINY)
    generate("synth-cuhk", out, layout="rstpreid", overwrite=True, **TINY)
    assert not (out / "reid_raw.json").exists() and (out / "data_captions.json").is_file()
    foreign = tmp_path / "real"
    (foreign / "imgs").mkdir(parents=True)
    with pytest.raises(ConfigError, match="did not write"):
        generate("synth-cuhk", foreign, overwrite=True, **TINY)
    assert (foreign / "imgs").is_dir()

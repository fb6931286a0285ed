"""Write a generation plan in a real dataset's layout (the contract in the readers' docs).

For each layout this module decides the file names and the written ids, writes the annotation
file(s) and builds the :class:`~plipbench.data.records.PersonRecord` list a reader of that layout
returns, so the manifest's ``splits`` are computed with :meth:`PersonDataset.summary` from
exactly what was written.

Written ids: ``cuhk-pedes`` and ``synth-pedes`` 1-based, ``icfg-pedes`` and ``rstpreid``
0-based and contiguous from the first train identity; Market / Duke keep the raw pids drawn by
the generator (pid 0 = distractor, -1 = junk), and so do Occluded-Duke, Occluded-REID and
Partial-REID; PA-100K has no ids (the reader uses the image's 0-based index over train, val, test
in file order). ``peta-zs`` and ``rap-zs`` are the zero-shot attribute
pickles (``dataset_zs_run0.pkl``, an ``easydict.EasyDict`` as Rethinking_of_PAR writes it, with the 26 PA-100K
labels, no ``label_idx`` and a placeholder absolute ``root`` the reader must ignore) over ``images/`` or
``RAP_dataset/`` PNGs, indexed like PA-100K.

``cuhk03-np`` is written as its Market-style download (``labeled/{bounding_box_train,query,
bounding_box_test}/0001_c1_5.png``, the preset's raw pids and cameras). ``msmt17`` is written as
MSMT17_V1 (``train/``, ``test/`` and the four list files): labels are 0-based and contiguous over
train, then query + gallery (the release restarts them at 0 on the test side; continuing them keeps
the identities visibly disjoint, which ``data check`` verifies); every eighth identity's first train
image goes to ``list_val.txt``; a distractor gets a label of its own after the test identities
(MSMT17 has no pid-0 convention) and junk images are written but listed nowhere.
"""

from __future__ import annotations

import io
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from plipbench.data.records import PersonRecord
from plipbench.data.synth.captions import tokens
from plipbench.data.synth.vocab import PA100K_ATTRIBUTES
from plipbench.io import atomic_write_bytes, atomic_write_json

ANNOTATION_FILES = {
    "cuhk-pedes": "reid_raw.json",
    "icfg-pedes": "ICFG-PEDES.json",
    "rstpreid": "data_captions.json",
    "synth-pedes": "synthpedes_dataset.json",
    "pa100k": "annotation.mat",
}
MSMT17_LISTS = {"train": "list_train.txt", "val": "list_val.txt", "query": "list_query.txt",
                "gallery": "list_gallery.txt"}
# Top-level names a synth run may create; only these are ever removed by --overwrite.
GENERATED_NAMES = (
    "bounding_box_train", "bounding_box_test", "query", "imgs", "data", "labeled", "train", "test",
    *ANNOTATION_FILES.values(), *MSMT17_LISTS.values(),
    "TrainVal_images", "TrainVal_parsing_annotations", "train_images", "val_images", "train_segmentations",
    "val_segmentations", "train_id.txt", "val_id.txt", "Training", "Validation",
    "Image", "annotation", "frames", "annotations", "query_box", "frame_train.mat", "frame_test.mat",
    "ID_train.mat", "ID_test.mat", "query_info.txt",
    "plipbench_synth_manifest.json", "plipbench_synth_annotations.json", "preview.png",
    "Occluded_Duke", "DukeMTMC-reID", "images", "RAP_dataset", "dataset_zs_run0.pkl", "gallery",
    "occluded_body_images", "whole_body_images", "partial_body_images",
)  # fmt: skip


@dataclass
class ImageJob:
    """One image to render and write, with everything the annotation files need."""

    pool: str  # identity pool (preset name, or preset + "/distractor" / "/junk")
    index: int  # identity index in the pool
    k: int  # image number of the identity (0-based)
    ordinal: int  # position of the identity in the split-ordered identity list (-1 for extras)
    split: str  # record split: train / val / test / query / gallery
    camera: int  # 0-based camera, -1 when the layout has none
    view: str
    reid_pid: int = -2  # Market/Duke pid drawn by the generator
    junk: bool = False
    pid: int = -1  # the id as written (set by assign_paths)
    relpath: str = ""  # image path relative to the root (set by assign_paths)
    captions: list[str] = field(default_factory=list)
    spans: list[list[list]] = field(default_factory=list)
    prompt: str | None = None
    prompt_spans: list[list] | None = None
    attribute_string: str = ""
    labels: list[int] = field(default_factory=list)
    mask_relpath: str = ""  # parsing layouts: the label map (set by assign_paths)
    mask_channel: int = 0  # 0: LIP labels, 1: PASCAL-Person-Part labels
    occluded: bool = False  # drawn behind a heavy occluder (occluded-ReID presets)
    partial: bool = False  # only part of the body kept (partial-ReID presets)


def assign_paths(jobs: list[ImageJob], layout: str, *, suffix: str = ".jpg") -> None:
    """Set ``pid`` and ``relpath`` of every job for ``layout`` (deterministic, in job order)."""
    if layout in ("market1501", "dukemtmc", "occluded-duke", "occluded-duke-lists"):
        folders = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
        frame = {}
        for j in jobs:
            j.pid = j.reid_pid
            frame[j.camera] = frame.get(j.camera, 0) + 1 + (j.index * 7 + j.k * 3) % 11
            pid_txt = "-1" if j.pid == -1 else f"{j.pid:04d}"
            if layout == "market1501":
                seq = 1 + (frame[j.camera] // 5000) % 6
                name = f"{pid_txt}_c{j.camera + 1}s{seq}_{frame[j.camera]:06d}_{1 + j.k % 8:02d}{suffix}"
            else:
                name = f"{pid_txt}_c{j.camera + 1}_f{frame[j.camera]:07d}{suffix}"
            j.relpath = f"{folders[j.split]}/{name}"
            if layout == "occluded-duke-lists":  # the images in a Duke copy; some queries sit in its gallery folder
                folder = "bounding_box_test" if j.split == "query" and j.k % 2 else folders[j.split]
                j.relpath = f"DukeMTMC-reID/{folder}/{name}"
    elif layout in ("occluded-reid", "occluded-reid-raw", "partial-reid"):  # flat folders, or per-id .tif (raw)
        raw = layout == "occluded-reid-raw"
        folders = {"occluded-reid": {"query": "query", "gallery": "gallery"},
                   "occluded-reid-raw": {"query": "occluded_body_images", "gallery": "whole_body_images"},
                   "partial-reid": {"query": "partial_body_images", "gallery": "whole_body_images"}}[layout]
        number: dict[tuple[int, str], int] = {}
        for j in jobs:
            j.pid = j.reid_pid
            n = number[(j.pid, j.split)] = number.get((j.pid, j.split), 0) + 1
            name = f"{j.pid:03d}_{n:02d}"
            j.relpath = f"{folders[j.split]}/{j.pid:03d}/{name}.tif" if raw else f"{folders[j.split]}/{name}{suffix}"
    elif layout == "cuhk03-np":
        folders = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
        for n, j in enumerate(jobs):
            j.pid = j.reid_pid
            pid_txt = "-1" if j.pid == -1 else f"{j.pid:04d}"
            j.relpath = f"labeled/{folders[j.split]}/{pid_txt}_c{j.camera + 1}_{n + 1}.png"
    elif layout == "msmt17":
        _assign_msmt17(jobs, suffix)
    elif layout == "cuhk-pedes":
        for j in jobs:
            j.pid = j.ordinal + 1
            folder = "train_query" if j.split == "train" else "test_query"
            j.relpath = f"imgs/{folder}/p{j.pid}_s{j.k + 1}{suffix}"
    elif layout == "icfg-pedes":
        for j in jobs:
            j.pid = j.ordinal
            j.relpath = (
                f"imgs/{j.split}/{j.pid:04d}/{j.pid:04d}_c{max(j.camera, 0) + 1:02d}_{j.k:03d}{suffix}"
            )
    elif layout == "rstpreid":
        for j in jobs:
            j.pid = j.ordinal
            j.relpath = f"imgs/{j.pid:04d}_c{max(j.camera, 0) + 1:02d}_{j.k:04d}{suffix}"
    elif layout == "synth-pedes":
        for j in jobs:
            j.pid = j.ordinal + 1
            j.relpath = f"Part{1 + j.ordinal // 1000}/{j.pid}/{j.k + 1}{suffix}"
    elif layout in ("lip", "lip-schp", "pascal-person-part", "cihp"):
        _assign_parsing(jobs, layout, suffix)
    elif layout in ("pa100k", "peta-zs", "rap-zs"):
        order = {"train": 0, "val": 1, "test": 2}
        ranked = sorted(range(len(jobs)), key=lambda n: (order[jobs[n].split], n))
        for pos, n in enumerate(ranked):
            jobs[n].pid = pos
            jobs[n].relpath = {"pa100k": f"data/{pos + 1:06d}{suffix}", "peta-zs": f"images/{pos + 1:05d}.png",
                               "rap-zs": f"RAP_dataset/{pos + 1:06d}.png"}[layout]
        jobs.sort(key=lambda j: j.pid)
    else:  # pragma: no cover - guarded by generate()
        raise ValueError(layout)


PARSING_FOLDERS = {  # layout -> split -> (image folder, label folder, id file)
    "lip": {s: (f"TrainVal_images/{s}_images", f"TrainVal_parsing_annotations/{s}_segmentations",
                f"TrainVal_images/{s}_id.txt") for s in ("train", "val")},
    "lip-schp": {s: (f"{s}_images", f"{s}_segmentations", f"{s}_id.txt") for s in ("train", "val")},
    "pascal-person-part": {s: (f"{s}_images", f"{s}_segmentations", f"{s}_id.txt") for s in ("train", "val")},
    "cihp": {s: (f"{f}/Images", f"{f}/Category_ids", f"{f}/{s}_id.txt")
             for s, f in (("train", "Training"), ("val", "Validation"))},
}


def _parsing_id(job: ImageJob) -> str:
    return f"{job.pid:06d}"


def _assign_parsing(jobs: list[ImageJob], layout: str, suffix: str) -> None:
    """Human parsing: ids 0-based over train then val (file order), an image and a PNG label map each."""
    order = {"train": 0, "val": 1}
    jobs.sort(key=lambda j: (order[j.split], j.ordinal, j.k))
    for pos, j in enumerate(jobs):
        j.pid = pos
        images, masks, _ = PARSING_FOLDERS[layout][j.split]
        j.relpath = f"{images}/{_parsing_id(j)}{suffix}"
        j.mask_relpath = f"{masks}/{_parsing_id(j)}.png"
        j.mask_channel = 1 if layout == "pascal-person-part" else 0


def _assign_msmt17(jobs: list[ImageJob], suffix: str) -> None:
    labels: dict[int, int] = {}
    for j in sorted(jobs, key=lambda j: j.split != "train"):  # train identities first, then test ones
        if j.reid_pid > 0:
            j.pid = labels.setdefault(j.reid_pid, len(labels))
    extra = len(labels)
    for n, j in enumerate(jobs):
        if j.reid_pid == 0:  # distractor: a gallery identity of its own
            j.pid, extra = extra, extra + 1
        elif j.reid_pid < 0:
            j.pid = -1
        if j.split == "train" and j.k == 0 and j.ordinal % 8 == 7:
            j.split = "val"
        folder = "train" if j.split in ("train", "val") else "test"
        sub = "junk" if j.junk else f"{j.pid:04d}"
        j.relpath = f"{folder}/{sub}/{j.pid:04d}_{n % 1000:03d}_{j.camera + 1:02d}_0303morning_{n:04d}_0{suffix}"


def _msmt17_lists(jobs: list[ImageJob]) -> dict[str, bytes]:
    lines: dict[str, list[str]] = {name: [] for name in MSMT17_LISTS.values()}
    for j in jobs:
        if not j.junk:
            lines[MSMT17_LISTS[j.split]].append(f"{j.relpath.split('/', 1)[1]} {j.pid}\n")
    return {name: "".join(rows).encode("utf-8") for name, rows in lines.items()}


def _json_records(jobs: list[ImageJob], layout: str) -> list[dict]:
    out = []
    for j in jobs:
        rel = j.relpath.removeprefix("imgs/")
        if layout == "rstpreid":
            out.append({"id": j.pid, "img_path": rel, "captions": j.captions, "split": j.split})
        elif layout == "synth-pedes":
            out.append(
                {"id": j.pid, "file_path": j.relpath, "attributes": [j.attribute_string], "captions": j.captions,
                 "prompt_caption": [j.prompt]}
            )  # fmt: skip
        else:
            out.append(
                {"split": j.split, "captions": j.captions, "file_path": rel,
                 "processed_tokens": [tokens(c) for c in j.captions], "id": j.pid}
            )  # fmt: skip
    return out


def _mat_bytes(jobs: list[ImageJob]) -> bytes:
    """PA-100K ``annotation.mat`` bytes, with a fixed header (scipy writes a timestamp there)."""
    import scipy.io

    def cell(names: list[str]) -> np.ndarray:
        arr = np.empty((len(names), 1), dtype=object)
        for n, name in enumerate(names):
            arr[n, 0] = np.array([name])
        return arr

    content: dict[str, np.ndarray] = {"attributes": cell(list(PA100K_ATTRIBUTES))}
    for split in ("train", "val", "test"):
        sel = [j for j in jobs if j.split == split]
        content[f"{split}_images_name"] = cell([Path(j.relpath).name for j in sel])
        content[f"{split}_label"] = np.asarray([j.labels for j in sel], dtype=np.uint8).reshape(len(sel), 26)
    buf = io.BytesIO()
    scipy.io.savemat(buf, content, format="5", do_compression=False)
    data = bytearray(buf.getvalue())
    header = b"MATLAB 5.0 MAT-file, written by plipbench data synth"
    data[:116] = header.ljust(116, b" ")
    return bytes(data)


ZS_PICKLE = "dataset_zs_run0.pkl"


class _EasyDictPickler(pickle._Pickler):  # the pure-Python pickler, whose save_global can be overridden
    """Pickles :class:`~plipbench.data.readers.safe_pickle.AttrDict` as the global ``easydict.EasyDict`` (what the
    real files name), without easydict installed."""

    def save_global(self, obj, name=None):  # type: ignore[no-untyped-def]
        from plipbench.data.readers.safe_pickle import AttrDict

        if obj is AttrDict:
            self.write(pickle.GLOBAL + b"easydict\nEasyDict\n")
            self.memoize(obj)
            return
        super().save_global(obj, name)


def _easydict(**items: object) -> object:
    from plipbench.data.readers.safe_pickle import AttrDict

    d = AttrDict(items)
    d.__dict__.update(items)  # EasyDict mirrors its keys as attributes, so its pickle carries that state too
    return d


def _zs_pickle_bytes(jobs: list[ImageJob], layout: str) -> bytes:
    """The zero-shot split pickle (protocol 4, Python >= 3.8's default) for the jobs in file (pid) order."""
    labels = np.asarray([j.labels for j in jobs], dtype=np.uint8).reshape(len(jobs), len(PA100K_ATTRIBUTES))
    index = {s: np.asarray([j.pid for j in jobs if j.split == s], dtype=np.int64) for s in ("train", "val", "test")}
    trainval = np.concatenate([index["train"], index["val"]])
    folder = "PETA/images" if layout == "peta-zs" else "RAP2/RAP_dataset"

    def positive_rate(idx: np.ndarray) -> list:
        return [labels[idx].mean(axis=0).astype(np.float32) if idx.size else np.zeros(labels.shape[1], np.float32)]

    info = _easydict(
        description="peta" if layout == "peta-zs" else "rap2", reorder="group_order",
        root=f"/nonexistent/plipbench-synth/{folder}",  # the authors' absolute path in the real files: ignored
        image_name=[Path(j.relpath).name for j in jobs], label=labels,
        attr_name=[np.str_(a) for a in PA100K_ATTRIBUTES],
        partition=_easydict(train=index["train"], val=index["val"], trainval=trainval, test=index["test"]),
        weight_train=positive_rate(index["train"]), weight_trainval=positive_rate(trainval),
    )  # fmt: skip
    buf = io.BytesIO()
    _EasyDictPickler(buf, protocol=4).dump(info)
    return buf.getvalue()


OCC_DUKE_LISTS = {"train": "train.list", "query": "query.list", "gallery": "gallery.list"}


def write_annotations(root: Path, jobs: list[ImageJob], layout: str) -> None:
    """Write the layout's annotation file (Market / Duke have none: the file names are the labels)."""
    if layout == "occluded-duke-lists":
        for split, list_name in OCC_DUKE_LISTS.items():
            names = "".join(f"{Path(j.relpath).name}\n" for j in jobs if j.split == split and not j.junk)
            atomic_write_bytes(root / "Occluded_Duke" / list_name, names.encode("utf-8"))
        return
    if layout in ("peta-zs", "rap-zs"):
        atomic_write_bytes(root / ZS_PICKLE, _zs_pickle_bytes(jobs, layout))
        return
    if layout == "msmt17":
        for list_name, data in _msmt17_lists(jobs).items():
            atomic_write_bytes(root / list_name, data)
        return
    if layout in PARSING_FOLDERS:
        for split, (_, _, id_file) in PARSING_FOLDERS[layout].items():
            ids = "".join(f"{_parsing_id(j)}\n" for j in jobs if j.split == split)
            atomic_write_bytes(root / id_file, ids.encode("utf-8"))
        return
    name = ANNOTATION_FILES.get(layout)
    if name is None:
        return
    if layout == "pa100k":
        atomic_write_bytes(root / name, _mat_bytes(jobs))
    else:
        atomic_write_json(root / name, _json_records(jobs, layout))


def to_records(root: Path, jobs: list[ImageJob], layout: str) -> list[PersonRecord]:
    """The records a reader of ``layout`` returns for what was written (junk dropped)."""
    recs = []
    for j in jobs:
        if j.junk:
            continue
        path = root / j.relpath
        if layout in ("market1501", "dukemtmc", "cuhk03-np", "msmt17", "occluded-duke", "occluded-duke-lists",
                      "occluded-reid", "occluded-reid-raw", "partial-reid"):
            recs.append(PersonRecord(path, j.pid, j.camera, j.split))
        elif layout in ("pa100k", "peta-zs", "rap-zs"):
            recs.append(PersonRecord(path, j.pid, -1, j.split, attributes=tuple(j.labels)))
        elif layout in PARSING_FOLDERS:
            recs.append(PersonRecord(path, j.pid, -1, j.split, mask_path=root / j.mask_relpath))
        elif layout == "synth-pedes":
            recs.append(
                PersonRecord(path, j.pid, -1, "train", tuple(j.captions), prompt_captions=(j.prompt or "",),
                             attribute_phrases=tuple(j.attribute_string.split(",")))
            )  # fmt: skip
        else:
            split = j.split if j.split in ("train", "test") else "val"
            recs.append(PersonRecord(path, j.pid, -1, split, tuple(j.captions)))
    return recs

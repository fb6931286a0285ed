"""Person-search scenes: multi-person frames composed from rendered identities, in the CUHK-SYSU or PRW layout.

A frame is a scene background (:func:`~plipbench.data.synth.scenes.render_background`) with several persons
pasted on it, each a :func:`~plipbench.data.synth.render.render_person` crop of the exact size of its box (so
the box ``[x, y, w, h]`` is exact). What the frames hold (``../shared/reference/more-tasks.md`` §7.3):

- labelled identities that recur: every identity appears in 2..``images_per_id`` frames of its split
  (train and test identities are disjoint, and so are train and test frames); with cameras (PRW: 6), a
  frame's camera fixes its look (scene, palette, lighting), so an identity is seen under several looks;
- unlabelled walkers (a fresh person each, no identity: CUHK-SYSU boxes matching no protocol entry, PRW
  id -2), about ``walkers_per_frame`` per frame, as gallery negatives;
- small persons (``small_fraction`` of the boxes, w <= 19 px at the default size) for SeqNet's adaptive
  IoU threshold;
- queries: CUHK-SYSU one per test identity (its first frame), PRW one per test identity per camera it
  appears in (the PRW readme's rule); the gallery frames that do not hold a query's person are the
  "target absent" frames (CUHK-SYSU ``TestG*`` entries with an empty ``idlocate``).

CUHK-SYSU is written as ``Image/SSM/s{n}.jpg``, ``annotation/Images.mat``, ``pool.mat``, ``Person.mat``,
``test/train_test/Train.mat`` and ``TestG{size}.mat`` for each of the preset's gallery sizes (targets first,
then distractor test frames drawn once per query, so a smaller gallery's entries are a prefix of a larger
one's). PRW as ``frames/c{k}s1_{n:06d}.jpg``, ``annotations/<frame>.jpg.mat`` (``box_new``),
``frame_train.mat``, ``frame_test.mat``, ``ID_train.mat``, ``ID_test.mat`` (key ``ID_test2``),
``query_box/<pid>_<frame>.jpg`` and ``query_info.txt`` with CRLF lines. The ``.mat`` files are written with
``scipy.io.savemat`` as structs and cells (the real files' nesting) and a fixed header, so the copy is
byte-identical for a seed.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from plipbench.data.synth.identity import derive_rng, identity_for
from plipbench.data.synth.presets import SynthPreset, split_sizes

FRAME_SIZE = (192, 384)  # (H, W) of a frame at the default person size 128 x 64
LABELLED_PER_FRAME = 2.5  # average labelled persons per frame (sets the number of frames)
MAX_LABELLED = 4
MAX_OVERLAP = 0.3  # IoU allowed between two persons of one frame
JPEG_QUALITY = 92
MAT_HEADER = b"MATLAB 5.0 MAT-file, written by plipbench data synth"


@dataclass
class Person:
    """One box of a frame: ``pid`` is the 1-based written identity (0 for an unlabelled walker)."""

    pool: str
    index: int
    pid: int
    view: str
    xywh: tuple[int, int, int, int] = (0, 0, 0, 0)


@dataclass
class Frame:
    split: str  # "train" | "test"
    number: int  # position in the split
    camera: int  # 0-based; -1 without cameras
    persons: list[Person] = field(default_factory=list)
    name: str = ""


def _views(rng: np.random.Generator, p: SynthPreset) -> str:
    return ("front", "side", "back")[int(rng.choice(3, p=np.asarray(p.views)))]


def _iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / float(a[2] * a[3] + b[2] * b[3] - inter)


def frame_size(person_size: tuple[int, int]) -> tuple[int, int]:
    s = person_size[0] / 128
    return int(round(FRAME_SIZE[0] * s)), int(round(FRAME_SIZE[1] * s))


def _place(frame: Frame, rng: np.random.Generator, p: SynthPreset, person_size: tuple[int, int]) -> None:
    """Boxes for the frame's persons: sizes, then positions overlapping the others by IoU <= 0.3."""
    fh, fw = frame_size(person_size)
    hmax = person_size[0]
    placed: list[tuple[int, int, int, int]] = []
    for person in frame.persons:
        small = rng.random() < p.small_fraction
        h = int(rng.integers(round(0.22 * hmax), round(0.3 * hmax) + 1)) if small \
            else int(rng.integers(round(0.4 * hmax), hmax + 1))
        w = max(8, h // 2)
        box = (0, 0, w, h)
        for _ in range(40):
            x = int(rng.integers(0, fw - w + 1))
            y = int(rng.integers(max(0, int(0.35 * fh) - h // 2), fh - h + 1))
            box = (x, y, w, h)
            if all(_iou(box, other) <= MAX_OVERLAP for other in placed):
                break
        placed.append(box)
        person.xywh = box


def plan_search(p: SynthPreset, layout: str, n: int, k: int, seed: int,
                person_size: tuple[int, int] = (128, 64)) -> list[Frame]:
    """Every frame of the copy, its persons and their boxes, names set for ``layout`` (deterministic)."""
    frames: list[Frame] = []
    pid = walker = 0
    min_test = max(p.gallery_sizes, default=0) + 1
    for split, count in split_sizes(n, p.splits):
        rng = derive_rng("search-plan", p.name, seed, split)
        pids = list(range(pid + 1, pid + count + 1))
        pid += count
        appearances = {q: int(rng.integers(2, k + 1)) for q in pids}
        n_frames = max(math.ceil(sum(appearances.values()) / LABELLED_PER_FRAME),
                       max(appearances.values()), min_test if split == "test" else 1)
        cams = rng.permutation(np.arange(n_frames) % p.cameras) if p.cameras else np.full(n_frames, -1)
        split_frames = [Frame(split, i, int(cams[i])) for i in range(n_frames)]
        load = np.zeros(n_frames)
        for q in rng.permutation(pids).tolist():
            room = np.maximum(0.0, MAX_LABELLED - load) + 1e-3  # (nearly) full frames are rarely chosen
            chosen = rng.choice(n_frames, size=appearances[q], replace=False, p=room / room.sum())
            for f in sorted(chosen.tolist()):
                split_frames[f].persons.append(Person(p.name, q - 1, q, _views(rng, p)))
                load[f] += 1
        for f in split_frames:
            walkers = int(rng.poisson(p.walkers_per_frame)) + (0 if f.persons else 1)
            for _ in range(walkers):
                f.persons.append(Person(f"{p.name}/walker", walker, 0, _views(rng, p)))
                walker += 1
            order = rng.permutation(len(f.persons))
            f.persons = [f.persons[i] for i in order]
            _place(f, derive_rng("search-place", p.name, seed, split, f.number), p, person_size)
            f.persons.sort(key=lambda x: x.xywh[1] + x.xywh[3])  # painter's order: farther (higher) first
        frames.extend(split_frames)
    _name_frames(frames, layout, seed, p)
    return frames


def _name_frames(frames: list[Frame], layout: str, seed: int, p: SynthPreset) -> None:
    if layout == "cuhk-sysu":  # one numbering over both splits, interleaved as in the real Image/SSM
        for number, i in enumerate(derive_rng("search-names", p.name, seed).permutation(len(frames)).tolist()):
            frames[i].name = f"s{number + 1}.jpg"
    else:
        counter: dict[int, int] = {}
        for f in frames:
            counter[f.camera] = counter.get(f.camera, 0) + 1 + (f.number * 7) % 13
            f.name = f"c{f.camera + 1}s1_{counter[f.camera] * 25:06d}.jpg"


def render_frame(frame: Frame, p: SynthPreset, seed: int, person_size: tuple[int, int]) -> np.ndarray:
    """The frame's pixels: its background, then its persons in painter's order."""
    from plipbench.data.synth.render import render_person
    from plipbench.data.synth.scenes import render_background, sample_look

    rng = derive_rng("search-render", p.name, seed, frame.split, frame.number)
    if frame.camera >= 0:
        look = sample_look(derive_rng("camera", p.name, seed, frame.camera), p.scenes, harsh=p.harsh)
    else:
        look = sample_look(rng, p.scenes, harsh=p.harsh)
    fh, fw = frame_size(person_size)
    img = render_background(look, rng, fh, fw)
    for person in frame.persons:
        x, y, w, h = person.xywh
        crop = render_person(identity_for(person.pool, seed, person.index), person.view, rng, (h, w), look=look)
        img[y:y + h, x:x + w] = crop
    return np.clip(img, 0, 255).astype(np.uint8)


def _jpeg(arr: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()


def mat_bytes(content: dict) -> bytes:
    """``scipy.io.savemat`` bytes with a fixed header (scipy writes a timestamp there)."""
    import scipy.io

    buf = io.BytesIO()
    scipy.io.savemat(buf, content, format="5", do_compression=False)
    data = bytearray(buf.getvalue())
    data[:116] = MAT_HEADER.ljust(116, b" ")
    return bytes(data)


def struct(fields: list[str], rows: list[tuple]) -> np.ndarray:
    """A MATLAB 1 x N struct array."""
    out = np.empty((1, len(rows)), dtype=[(f, "O") for f in fields])
    for i, row in enumerate(rows):
        for f, value in zip(fields, row, strict=True):
            out[0, i][f] = value
    return out


def cell(items: list) -> np.ndarray:
    """A MATLAB N x 1 cell array."""
    out = np.empty((len(items), 1), dtype=object)
    for i, item in enumerate(items):
        out[i, 0] = item
    return out


def _box(xywh: tuple[int, ...] | None) -> np.ndarray:
    return np.array([xywh], dtype=np.float64) if xywh else np.zeros((0, 0))


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _occurrences(frames: list[Frame], split: str) -> dict[int, list[tuple[Frame, Person]]]:
    out: dict[int, list[tuple[Frame, Person]]] = {}
    for f in frames:
        if f.split == split:
            for person in f.persons:
                if person.pid:
                    out.setdefault(person.pid, []).append((f, person))
    return out


def _write_cuhk_sysu(root: Path, frames: list[Frame], p: SynthPreset, seed: int) -> dict:
    ordered = sorted(frames, key=lambda f: int(f.name[1:-4]))
    images = [(f.name, _box((len(f.persons),)),
               struct(["idlocate", "ishard"], [(_box(x.xywh), _box((0,))) for x in f.persons])) for f in ordered]
    ann = root / "annotation"
    _write(ann / "Images.mat", mat_bytes({"Img": struct(["imname", "nAppear", "box"], images)}))
    test = [f for f in ordered if f.split == "test"]
    _write(ann / "pool.mat", mat_bytes({"pool": cell([f.name for f in test])}))

    def scenes(occ: list[tuple[Frame, Person]]) -> np.ndarray:
        return struct(["imname", "idlocate", "ishard"], [(f.name, _box(x.xywh), _box((0,))) for f, x in occ])

    train_occ, test_occ = _occurrences(frames, "train"), _occurrences(frames, "test")
    people = [(f"p{q:05d}", _box((len(occ),)), scenes(occ)) for q, occ in sorted({**train_occ, **test_occ}.items())]
    _write(ann / "Person.mat", mat_bytes({"Person": struct(["idname", "nAppear", "scene"], people)}))
    train = cell([struct(["idname", "nAppear", "scene"], [(f"p{q:05d}", _box((len(occ),)), scenes(occ))])
                  for q, occ in sorted(train_occ.items())])
    proto = ann / "test" / "train_test"
    _write(proto / "Train.mat", mat_bytes({"Train": train}))
    rng = derive_rng("search-galleries", p.name, seed)
    queries = []
    for _, occ in sorted(test_occ.items()):
        (qf, qp), rest = occ[0], occ[1:]
        holding = {f.name for f, _ in occ}
        others = [f.name for f in test if f.name not in holding]
        queries.append((qf, qp, rest, [others[i] for i in rng.permutation(len(others)).tolist()]))
    for size in p.gallery_sizes:
        rows = []
        for qf, qp, rest, distractors in queries:
            query = struct(["imname", "idlocate", "ishard", "idname"],
                           [(qf.name, _box(qp.xywh), _box((0,)), f"p{qp.pid:05d}")])
            entries = [(f.name, _box(x.xywh), _box((0,))) for f, x in rest]
            entries += [(name, _box(None), _box((0,))) for name in distractors[:size - len(rest)]]
            rows.append((query, struct(["imname", "idlocate", "ishard"], entries)))
        _write(proto / f"TestG{size}.mat", mat_bytes({f"TestG{size}": struct(["Query", "Gallery"], rows)}))
    return {"folder": "Image/SSM", "queries": len(queries), "gallery_sizes": list(p.gallery_sizes), "crops": 0}


def _write_prw(root: Path, frames: list[Frame], arrays: dict[str, np.ndarray]) -> dict:
    for f in frames:
        rows = np.array([[x.pid if x.pid else -2, *x.xywh] for x in f.persons], dtype=np.float64).reshape(-1, 5)
        _write(root / "annotations" / f"{f.name}.mat", mat_bytes({"box_new": rows}))
    for split, file, key in (("train", "frame_train.mat", "img_index_train"), ("test", "frame_test.mat",
                                                                              "img_index_test")):
        _write(root / file, mat_bytes({key: cell([f.name[:-4] for f in frames if f.split == split])}))
    for split, file, key in (("train", "ID_train.mat", "ID_train"), ("test", "ID_test.mat", "ID_test2")):
        ids = sorted(_occurrences(frames, split))
        _write(root / file, mat_bytes({key: np.array([ids], dtype=np.float64)}))
    lines, crops = [], 0
    for q, occ in sorted(_occurrences(frames, "test").items()):
        seen: set[int] = set()
        for f, x in occ:  # one query per identity per camera: the identity's first frame in that camera
            if f.camera in seen:
                continue
            seen.add(f.camera)
            bx, by, bw, bh = x.xywh
            lines.append(f"{q} {bx} {by} {bw} {bh} {f.name[:-4]}\r\n")
            _write(root / "query_box" / f"{q}_{f.name}", _jpeg(arrays[f.name][by:by + bh, bx:bx + bw]))
            crops += 1
    _write(root / "query_info.txt", "".join(lines).encode("ascii"))
    return {"folder": "frames", "queries": len(lines), "cameras": 6, "crops": crops}


def write_search_copy(root: Path, p: SynthPreset, layout: str, n: int, k: int, seed: int,
                      person_size: tuple[int, int]) -> tuple[dict, int, dict]:
    """Render and write the copy; returns (the reader's summary of it, image files written, details)."""
    frames = plan_search(p, layout, n, k, seed, person_size)
    folder = root / ("Image/SSM" if layout == "cuhk-sysu" else "frames")
    keep = layout == "prw"  # PRW's query crops are cut from the frames
    arrays: dict[str, np.ndarray] = {}
    for f in frames:
        arr = render_frame(f, p, seed, person_size)
        _write(folder / f.name, _jpeg(arr))
        if keep:
            arrays[f.name] = arr
    extra = _write_cuhk_sysu(root, frames, p, seed) if layout == "cuhk-sysu" else _write_prw(root, frames, arrays)
    boxes = [x for f in frames for x in f.persons]
    summary = {}
    for split, name in (("train", "train"), ("test", "gallery")):
        sel = [f for f in frames if f.split == split]
        summary[name] = {"images": len(sel), "boxes": sum(len(f.persons) for f in sel),
                         "identities": len(_occurrences(frames, split))}
    test_ids = len(_occurrences(frames, "test"))
    summary["query"] = {"images": extra["queries"], "identities": test_ids}
    details = {
        "frame_size": list(frame_size(person_size)),
        "boxes": len(boxes),
        "unlabeled_boxes": sum(1 for x in boxes if not x.pid),
        "small_boxes": sum(1 for x in boxes if x.xywh[2] <= 20),
        "queries": extra["queries"],
        **({"gallery_sizes": extra["gallery_sizes"]} if "gallery_sizes" in extra else {}),
    }
    return summary, len(frames) + extra["crops"], details

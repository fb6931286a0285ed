"""CUHK-SYSU person search: scene images, their annotated boxes, train identities and the TestG protocols.

The layout and reading rules are SeqNet's (``datasets/cuhk_sysu.py``; ``../shared/reference/more-tasks.md``
§1.1)::

    CUHK-SYSU/
      Image/SSM/s1.jpg ...
      annotation/Images.mat       'Img': 1 x N struct (imname, nAppear, box); box: 1 x nAppear struct whose
                                  first field is idlocate [x, y, w, h]
      annotation/pool.mat         'pool': cell of the test (gallery) image names; train = Images - pool
      annotation/test/train_test/Train.mat     'Train': cell of 1 x 1 structs (idname, nAppear,
                                  scene: 1 x k struct (imname, idlocate, ishard))
      annotation/test/train_test/TestG50.mat   'TestG50': struct array (Query, Gallery); Query = (imname,
                                  idlocate, ishard, idname); Gallery = 1 x G struct (imname, idlocate, ishard),
                                  idlocate empty where the image does not hold the query person
      ... TestG100.mat, TestG500.mat, TestG1000.mat, TestG2000.mat, TestG4000.mat (key = file stem)

* Boxes with ``w <= 0`` or ``h <= 0`` are dropped; every image must keep one (SeqNet asserts it).
* Identities: a train box gets pid ``k`` (1-based position in ``Train.mat``) when its ``[x, y, w, h]`` equals
  a scene box of identity ``k`` exactly; a test box gets pid ``i`` when it equals query ``i``'s box in
  ``TestG50.mat`` (query or gallery). Every other box is :data:`UNLABELED`. SeqNet stops reading a gallery at
  its first empty ``idlocate`` (it assumes the target images come first); this reader reads every entry.
  Boxes named by the protocol but absent from ``Images.mat`` are counted in ``options['unmatched_boxes']``.
* Queries come from ``TestG50.mat`` for every gallery size; ``TestG{gallery_size}.mat`` must list the same
  queries in the same order (checked; SeqNet assumes it).
* ``gallery_size`` (option, default 100, the reported setting): 50, 100, 500, 1000, 2000, 4000 or -1 (the full
  set: ``TestG50``'s galleries plus every other test image, see :func:`plipbench.metrics.cuhk_sysu_galleries`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from plipbench.data.readers.base import (
    ReaderInfo,
    SafeJoiner,
    load_mat,
    locate_root,
    mat_require,
    mat_string,
    mat_strings,
    require_utf8,
)
from plipbench.data.readers.person_search import (
    UNLABELED,
    CuhkSysuProtocol,
    PersonSearchDataset,
    SceneImage,
    SearchQuery,
    mat_field,
    mat_xywh,
    struct_records,
    to_xyxy,
    valid_boxes,
)
from plipbench.errors import ConfigError, DataError

GALLERY_SIZES = (50, 100, 500, 1000, 2000, 4000, -1)
CANDIDATES = ("CUHK-SYSU", "cuhk_sysu", "cuhk-sysu", "cuhksysu", "sysu")
PROTOCOL_DIR = Path("annotation", "test", "train_test")


def _is_cuhk_sysu(path: Path) -> bool:
    return (path / "annotation" / "Images.mat").is_file()


def _name(path: Path, where: str, value) -> str:
    try:
        name = mat_string(value)
    except ValueError as err:
        raise DataError(path, f"{where}: expected an image name ({err})") from None
    if not name:
        raise DataError(path, f"{where}: empty image name")
    return require_utf8(path, name, f"{where}: image name")


def _read_images(path: Path) -> tuple[dict[str, np.ndarray], list[str], int]:
    """name -> its valid boxes [x, y, w, h] as stored, the names in file order, the number of boxes dropped."""
    mat = load_mat(path)
    mat_require(path, mat, ["Img"])
    boxes_of: dict[str, np.ndarray] = {}
    order: list[str] = []
    dropped = 0
    for n, rec in enumerate(struct_records(mat["Img"])):
        try:
            name = _name(path, f"Img({n + 1}).imname", mat_field(rec, "imname", 0))
            entries = struct_records(mat_field(rec, "box", 2))
        except KeyError:
            raise DataError(path, f"Img({n + 1}): expected a struct with fields imname, nAppear, box") from None
        boxes = []
        for k, b in enumerate(entries):
            try:
                first = b[0]  # idlocate is the first field of each box struct
            except (IndexError, TypeError, KeyError):
                raise DataError(path, f"Img({n + 1}).box({k + 1}): expected a struct whose first field is "
                                      f"idlocate [x, y, w, h]") from None
            boxes.append(mat_xywh(path, f"Img({n + 1}).box({k + 1}).idlocate", first))
        arr = np.array(boxes).reshape(-1, 4)
        keep = valid_boxes(arr)
        if not keep.any():
            raise DataError(path, f"image {name}: no box with positive width and height (expected at least one)")
        dropped += int((~keep).sum())
        if name in boxes_of:
            raise DataError(path, f"image {name} is listed twice in Img")
        boxes_of[name] = arr[keep]
        order.append(name)
    return boxes_of, order, dropped


def _set_pid(boxes: np.ndarray, pids: np.ndarray, box: np.ndarray, pid: int) -> bool:
    """Give ``pid`` to the first box exactly equal to ``box``; False when none is."""
    same = np.flatnonzero(np.all(boxes == box, axis=1))
    if len(same) == 0:
        return False
    pids[same[0]] = pid
    return True


def _protocol_records(root: Path, size: int) -> tuple[Path, np.ndarray]:
    key = f"TestG{size}"
    path = root / PROTOCOL_DIR / f"{key}.mat"
    mat = load_mat(path)
    mat_require(path, mat, [key])
    recs = struct_records(mat[key])
    names = getattr(recs.dtype, "names", None) or ()
    if not {"Query", "Gallery"} <= set(names):
        raise DataError(path, f"{key}: expected a struct array with fields Query and Gallery, found "
                              f"{', '.join(names) or 'no struct'}")
    return path, recs


def _query(path: Path, i: int, rec) -> tuple[str, np.ndarray]:
    q = rec["Query"]
    try:
        name = _name(path, f"Query({i + 1}).imname", mat_field(q, "imname", 0))
        box = mat_xywh(path, f"Query({i + 1}).idlocate", mat_field(q, "idlocate", 1))
    except KeyError:
        raise DataError(path, f"Query({i + 1}): expected a struct (imname, idlocate, ishard, idname)") from None
    return name, box


def _gallery(path: Path, i: int, rec) -> list[tuple[str, np.ndarray | None]]:
    out = []
    for g, entry in enumerate(struct_records(rec["Gallery"])):
        try:
            name = _name(path, f"Gallery({i + 1}, {g + 1}).imname", mat_field(entry, "imname", 0))
            box = mat_xywh(path, f"Gallery({i + 1}, {g + 1}).idlocate", mat_field(entry, "idlocate", 1),
                           allow_empty=True)
        except KeyError:
            raise DataError(path, f"Gallery({i + 1}, {g + 1}): expected a struct (imname, idlocate, ishard)") from None
        out.append((name, box))
    return out


def read_cuhk_sysu(root: str | Path, *, gallery_size: int = 100) -> PersonSearchDataset:
    """CUHK-SYSU train / gallery scenes, the 2,900 queries and the ``TestG{gallery_size}`` galleries."""
    if gallery_size not in GALLERY_SIZES:
        raise ConfigError(f"cuhk-sysu option gallery_size must be one of {', '.join(map(str, GALLERY_SIZES))}, "
                          f"got {gallery_size!r}")
    where = locate_root("cuhk-sysu", root, CANDIDATES, _is_cuhk_sysu, "annotation/Images.mat")
    images_path = where / "annotation" / "Images.mat"
    boxes_of, all_names, dropped = _read_images(images_path)
    pids_of = {name: np.full(len(b), UNLABELED, dtype=np.int64) for name, b in boxes_of.items()}
    unmatched = 0

    def label(path: Path, where_: str, name: str, box: np.ndarray, pid: int) -> None:
        nonlocal unmatched
        if name not in boxes_of:
            raise DataError(path, f"{where_}: image {name} is not in annotation/Images.mat")
        if not _set_pid(boxes_of[name], pids_of[name], box, pid):
            unmatched += 1

    pool_path = where / "annotation" / "pool.mat"
    pool_mat = load_mat(pool_path)
    mat_require(pool_path, pool_mat, ["pool"])
    pool = mat_strings(pool_path, "pool", pool_mat["pool"])
    for n, name in enumerate(pool):
        require_utf8(pool_path, name, f"pool({n + 1})")
        if name not in boxes_of:
            raise DataError(pool_path, f"pool({n + 1}): image {name} is not in annotation/Images.mat")
    if len(set(pool)) != len(pool):
        raise DataError(pool_path, "an image is listed twice in pool")
    gallery_pos = {name: i for i, name in enumerate(pool)}

    train_path = where / PROTOCOL_DIR / "Train.mat"
    train_mat = load_mat(train_path)
    mat_require(train_path, train_mat, ["Train"])
    for k, item in enumerate(struct_records(train_mat["Train"])):
        try:
            scenes = struct_records(mat_field(item, "scene", 2))
        except KeyError:
            raise DataError(train_path, f"Train({k + 1}): expected a struct (idname, nAppear, scene)") from None
        for s, scene in enumerate(scenes):
            try:
                name = _name(train_path, f"Train({k + 1}).scene({s + 1}).imname", mat_field(scene, "imname", 0))
                box = mat_xywh(train_path, f"Train({k + 1}).scene({s + 1}).idlocate", mat_field(scene, "idlocate", 1))
            except KeyError:
                raise DataError(train_path, f"Train({k + 1}).scene({s + 1}): expected a struct (imname, idlocate, "
                                            f"ishard)") from None
            label(train_path, f"Train({k + 1}).scene({s + 1})", name, box, k + 1)

    g50_path, g50 = _protocol_records(where, 50)
    queries_raw = [_query(g50_path, i, rec) for i, rec in enumerate(g50)]
    for i, rec in enumerate(g50):
        label(g50_path, f"Query({i + 1})", *queries_raw[i], i + 1)
        for g, (name, box) in enumerate(_gallery(g50_path, i, rec)):
            if box is not None:
                label(g50_path, f"Gallery({i + 1}, {g + 1})", name, box, i + 1)

    if gallery_size in (50, -1):
        proto_path, proto = g50_path, g50
    else:
        proto_path, proto = _protocol_records(where, gallery_size)
        if len(proto) != len(g50):
            raise DataError(proto_path, f"{len(proto)} queries, but TestG50.mat has {len(g50)} (expected the same "
                                        f"queries in the same order)")
    images, targets = [], []
    for i, rec in enumerate(proto):
        if proto is not g50:
            name, box = _query(proto_path, i, rec)
            if name != queries_raw[i][0] or not np.array_equal(box, queries_raw[i][1]):
                raise DataError(proto_path, f"Query({i + 1}) is {name} {box.tolist()}, but TestG50.mat's query "
                                            f"{i + 1} is {queries_raw[i][0]} {queries_raw[i][1].tolist()} (expected "
                                            f"the same queries in the same order)")
        entries = _gallery(proto_path, i, rec)
        idx = np.empty(len(entries), dtype=np.int64)
        tg: dict[int, np.ndarray] = {}
        for g, (name, box) in enumerate(entries):
            if name not in gallery_pos:
                raise DataError(proto_path, f"Gallery({i + 1}, {g + 1}): image {name} is not a test image "
                                            f"(annotation/pool.mat)")
            idx[g] = gallery_pos[name]
            if box is not None:
                tg[g] = to_xyxy(box)
        images.append(idx)
        targets.append(tg)

    joiner = SafeJoiner(where / "Image" / "SSM", images_path)

    def scene(name: str) -> SceneImage:
        return SceneImage(name=name, image_path=joiner.join(name, f"image {name}"), boxes=to_xyxy(boxes_of[name]),
                          pids=pids_of[name])

    pool_set = set(pool)
    train = [scene(n) for n in sorted(set(all_names) - pool_set)]
    gallery = [scene(n) for n in pool]
    queries = [SearchQuery(name=n, image_path=joiner.join(n, f"query image {n}"), box=to_xyxy(b), pid=i + 1,
                           gallery_index=gallery_pos.get(n, -1)) for i, (n, b) in enumerate(queries_raw)]
    protocol = CuhkSysuProtocol(gallery_size=gallery_size, source=proto_path, images=images, targets=targets)
    return PersonSearchDataset(name="CUHK-SYSU", layout="cuhk-sysu", root=where, train=train, gallery=gallery,
                               queries=queries, protocol=protocol, dropped_boxes=dropped,
                               options={"gallery_size": gallery_size, "unmatched_boxes": unmatched})


CUHK_SYSU_TREE = """
CUHK-SYSU/
  Image/SSM/s1.jpg ...                         scene images (train and test)
  annotation/Images.mat, pool.mat              every box [x, y, w, h] per image; the test (gallery) images
  annotation/test/train_test/Train.mat         train identities
  annotation/test/train_test/TestG50.mat ...   queries and per-query galleries (TestG50, 100, 500, ... 4000)
"""

INFOS = (
    ReaderInfo(
        name="cuhk-sysu",
        description="CUHK-SYSU person search: scene images with every person boxed, 2,900 queries, per-query "
                    "galleries of TestG{gallery_size}.mat (100 by default, the reported setting).",
        reader=read_cuhk_sysu,
        tree=CUHK_SYSU_TREE,
        split_sizes={"train": {"identities": 5532}, "query": {"images": 2900, "identities": 2900}},
        folder_names=CANDIDATES,
        marker=_is_cuhk_sysu,
        kind="person-search",
        required_splits=("train", "gallery", "query"),
        options={"gallery_size": 100},
    ),
)

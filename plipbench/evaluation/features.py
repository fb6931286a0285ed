"""Feature extraction for frozen backbones: batched, sharded across ranks, cached on disk.

Cache key: what the features depend on. For images: the backbone fingerprint (metadata and
weights), its code fingerprint (plipbench and torch versions, the source of the encoder's classes
and of the factory that built it: ``Backbone.code_fingerprint``), the precision, the image
transform, flip, and the exact list of images (path, size and modification time of each file).
For texts: the same backbone parts and the exact caption list. A rerun, or a second task or
protocol on the same images, reads the features back instead of recomputing them.

Cache files are safetensors, written atomically by rank 0 under a per-entry file lock: a second
process asking for the same entry waits for the first and reuses its file. Every load checks the
row count and dimension; a truncated, foreign or mismatched file is reported in one warning line
naming it, deleted and recomputed. Temporaries left by a writer killed mid-write (``.*.tmp``) are
swept once they are an hour old.

Images are decoded once per image list and size into the decoded-image cache
(:mod:`plipbench.data.decoded`), shared by every backbone with the same resize; batches are sliced
from it, so there is no per-item Python work and no ``DataLoader``.

Under ``torchrun`` the list is split into exact contiguous shards (rank r takes
``[r*n//w, (r+1)*n//w)``), so no item is padded or duplicated; the shards are gathered in rank
order, and every rank ends with the full matrix.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plipbench.data.images import open_rgb
from plipbench.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from plipbench.data.records import PersonRecord
    from plipbench.models.backbone import Backbone


def shard_bounds(n: int, rank: int, world_size: int) -> tuple[int, int]:
    """Exact contiguous shard of ``n`` items for ``rank``: sizes differ by at most one, nothing repeats."""
    return n * rank // world_size, n * (rank + 1) // world_size


def _dist() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _gather(part: torch.Tensor) -> torch.Tensor:
    import torch
    import torch.distributed as dist

    rank, world = _dist()
    if world == 1:
        return part
    parts: list[Any] = [None] * world
    dist.all_gather_object(parts, part.cpu())
    return torch.cat(parts)


def _broadcast(obj: Any, world: int) -> Any:
    if world == 1:
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


class RecordImages:
    """``torch.utils.data.Dataset`` of preprocessed images of records (optionally flipped), decoded per item.

    :class:`FeatureStore` reads the decoded-image cache instead; this stays for callers that want a Dataset.
    """

    def __init__(self, records: Sequence[PersonRecord], transform: Any, flip: bool = False) -> None:
        self.records, self.transform, self.flip = list(records), transform, flip

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> torch.Tensor:
        from PIL import UnidentifiedImageError

        path = self.records[index].image_path
        try:
            with open_rgb(path) as img:
                tensor = self.transform(img.convert("RGB"))
        except (OSError, UnidentifiedImageError) as err:
            raise DataError(path, f"cannot decode image ({err})") from err
        return tensor.flip(-1) if self.flip else tensor


class _Path:
    """A bare image path where :meth:`FeatureStore._image_key` expects a record."""

    __slots__ = ("image_path",)

    def __init__(self, path: Any) -> None:
        self.image_path = path


def empty_stats() -> dict[str, Any]:
    """A :class:`FeatureStore`'s counters before any work."""
    return {"hits": 0, "misses": 0, "images_encoded": 0, "texts_encoded": 0, "seconds": 0.0, "encode_seconds": 0.0}


class FeatureStore:
    """Cached features of one frozen backbone."""

    def __init__(
        self,
        backbone: Backbone,
        *,
        cache_dir: str | Path | None = None,
        batch_size: int = 64,
        num_workers: int = 0,
        progress: bool = False,
    ) -> None:
        self.backbone = backbone
        self.cache_dir = Path(cache_dir) / backbone.fingerprint[:20] if cache_dir is not None else None
        # num_workers: kept for the API; images come from the decoded-image cache, sliced in batches
        self.batch_size, self.num_workers, self.progress = batch_size, num_workers, progress
        self._swept = False
        # seconds: computing cache misses; encode_seconds: every image encoding (cached or not)
        self.stats = empty_stats()

    # -- keys --------------------------------------------------------------------------------
    def _backbone_key(self) -> bytes:
        return f"{self.backbone.fingerprint}|{self.backbone.code_fingerprint}|{self.backbone.precision}\n".encode()

    def _image_key(self, records: Sequence[PersonRecord] | Sequence[_Path], flip: bool) -> str:
        h = hashlib.sha256(self._backbone_key())
        h.update(json.dumps(self.backbone.image_transform.model_dump(mode="json"), sort_keys=True).encode())
        h.update(b"flip" if flip else b"noflip")
        for r in records:
            path = r.image_path
            try:
                st = os.stat(path)
            except OSError as err:
                raise DataError(path, "image file not found") from err
            h.update(os.fsencode(str(path)) + f"|{st.st_size}|{st.st_mtime_ns}\n".encode())
        return h.hexdigest()

    def _text_key(self, captions: Sequence[str]) -> str:
        h = hashlib.sha256(self._backbone_key())
        for c in captions:
            h.update(c.encode("utf-8", "surrogateescape"))
            h.update(b"\x00")
        return h.hexdigest()

    def _load(self, path: Path, rows: int) -> torch.Tensor | None:
        """The cached ``(rows, D)`` features at ``path``; None (after a one-line warning and deleting the
        file) when it is truncated, foreign or of another shape."""
        from plipbench.cache_entries import discard_corrupt

        if not path.is_file():
            return None
        try:
            from safetensors.torch import load_file

            tensors = load_file(str(path))
            if "features" not in tensors:
                raise ValueError(f"no 'features' tensor (holds {sorted(tensors)[:5]})")
            features = tensors["features"]
            expected = (rows, self.backbone.embedding_dim)
            if features.ndim != 2 or tuple(features.shape) != expected or not features.is_floating_point():
                raise ValueError(f"features of shape {tuple(features.shape)} {features.dtype}, expected {expected} float")
        except Exception as err:  # SafetensorError (truncated), KeyError, shape: recompute, never a traceback
            discard_corrupt(path, f"{type(err).__name__}: {err}")
            return None
        return features

    def _check_computed(self, features: torch.Tensor, rows: int, kind: str) -> torch.Tensor:
        from plipbench.errors import PlipbenchError

        expected = (rows, self.backbone.embedding_dim)
        if tuple(features.shape) != expected:
            raise PlipbenchError(
                f"backbone {self.backbone.name}: the {kind} encoder returned features of shape "
                f"{tuple(features.shape)} for {rows} input(s), expected {expected} (embedding_dim "
                f"{self.backbone.embedding_dim} in its metadata)"
            )
        return features

    def _cached(self, kind: str, key: str, rows: int, compute: Any) -> torch.Tensor:
        import contextlib

        from safetensors.torch import save

        from plipbench.cache_entries import entry_lock, sweep_stale_temporaries
        from plipbench.io import atomic_write_bytes

        path = self.cache_dir / f"{kind}-{key[:32]}.safetensors" if self.cache_dir is not None else None
        rank, world = _dist()
        with contextlib.ExitStack() as stack:
            if path is not None and rank == 0:
                # a second process waits here for the first to write the entry, then reuses it
                stack.enter_context(entry_lock(path))
                if not self._swept:
                    sweep_stale_temporaries(self.cache_dir)
                    self._swept = True
            # rank 0 decides hit or miss for everyone: a miss runs collectives, so all ranks must agree
            loaded = self._load(path, rows) if path is not None and rank == 0 else None
            if _broadcast(loaded is not None, world):
                self.stats["hits"] += 1
                return _broadcast(loaded if rank == 0 else None, world)
            self.stats["misses"] += 1
            started = time.perf_counter()
            features = self._check_computed(compute(), rows, kind)
            self.stats["seconds"] += time.perf_counter() - started
            if path is not None and rank == 0:
                atomic_write_bytes(path, save({"features": features.contiguous()}))
            return features

    # -- public ------------------------------------------------------------------------------
    def image_features(self, records: Sequence[PersonRecord], *, flip: bool = False) -> torch.Tensor:
        """``(N, D)`` float32 features of the records' images, in record order."""
        return self._cached("image", self._image_key(records, flip), len(records),
                            lambda: self.encode_images_with(self.backbone, records, flip=flip))

    def dense_features(self, records: Sequence[PersonRecord], *, size: Sequence[int], layers: Sequence[int],
                       flip: bool = False) -> Any:
        """``(N, C, h, w)`` float16 dense maps of the records' images (:func:`plipbench.models.dense.encode_image_dense`
        at input ``size`` (H, W), stretched with the backbone's interpolation), in record order.

        Cached on disk (``<cache>/dense``) and returned memory-mapped, so a large split never sits in memory; the key
        is the image key of :meth:`image_features` plus the size, the layers and the dense code's hash. Without a
        cache folder the maps are kept in memory. Not sharded under torchrun (every rank computes them).
        """
        import numpy as np

        from plipbench.cache_entries import discard_corrupt, entry_lock
        from plipbench.data.decoded import Resize, decoded_images, to_model_input
        from plipbench.io import atomic_write
        from plipbench.models.dense import code_hash, encode_image_dense

        size = (int(size[0]), int(size[1]))
        key = hashlib.sha256(f"{self._image_key(records, flip)}|dense|{size}|{list(layers)}|{code_hash()}".encode())
        spec = self.backbone.image_transform
        resize = Resize("torchvision", size, spec.interpolation, "stretch", 1.0)

        def batches():
            pixels = decoded_images(records, resize)
            for start in range(0, len(pixels), self.batch_size):
                batch = to_model_input(pixels[start:start + self.batch_size], spec.mean, spec.std)
                maps = encode_image_dense(self.backbone, batch.flip(-1) if flip else batch, layers)
                self.stats["images_encoded"] += len(batch)
                yield maps.cpu().numpy().astype(np.float16)

        if self.cache_dir is None:
            return np.concatenate(list(batches()))
        path = self.cache_dir / "dense" / f"{key.hexdigest()[:32]}.npy"
        path.parent.mkdir(parents=True, exist_ok=True)

        def cached() -> Any:
            if not path.is_file():
                return None
            try:
                array = np.load(path, mmap_mode="r")
                if array.ndim != 4 or array.shape[0] != len(records) or array.dtype != np.float16:
                    raise ValueError(f"shape {array.shape} {array.dtype}, expected ({len(records)}, C, h, w) float16")
            except Exception as err:  # truncated or foreign: recompute
                discard_corrupt(path, f"{type(err).__name__}: {err}")
                return None
            return array

        with entry_lock(path):
            array = cached()
            if array is not None:
                self.stats["hits"] += 1
                return array
            self.stats["misses"] += 1
            started = time.perf_counter()
            stream = batches()
            first = next(stream)
            header = {"descr": "<f2", "fortran_order": False, "shape": (len(records), *first.shape[1:])}

            def write(fh: Any) -> None:
                np.lib.format.write_array_header_1_0(fh, header)
                fh.write(np.ascontiguousarray(first).tobytes())
                for maps in stream:
                    fh.write(np.ascontiguousarray(maps).tobytes())

            atomic_write(path, write)
            self.stats["seconds"] += time.perf_counter() - started
            self.stats["encode_seconds"] += time.perf_counter() - started
            return np.load(path, mmap_mode="r")

    def crop_features(self, crops: Sequence[tuple[Any, Any]]) -> torch.Tensor:
        """``(N, D)`` float32 features of image regions ``(image_path, [x1, y1, x2, y2])``, in order: each box is
        cut from its image (rounded to whole pixels, clipped to the image, at least 1 x 1) and preprocessed as a
        whole image would be (the backbone's resize, mean and std). Cached like :meth:`image_features`; the key
        adds every box."""
        import numpy as np

        paths = list(dict.fromkeys(str(p) for p, _ in crops))
        h = hashlib.sha256(self._image_key([_Path(p) for p in paths], False).encode())
        h.update(b"crops")
        for p, box in crops:
            h.update(os.fsencode(str(p)) + b"|")
            h.update(np.asarray(box, dtype=np.float64).reshape(4).tobytes())
        return self._cached("crops", h.hexdigest(), len(crops), lambda: self._encode_crops(crops))

    def _encode_crops(self, crops: Sequence[tuple[Any, Any]]) -> torch.Tensor:
        import numpy as np
        import torch

        from plipbench.data.decoded import to_model_input, transform_resize

        started = time.perf_counter()
        rank, world = _dist()
        lo, hi = shard_bounds(len(crops), rank, world)
        spec = self.backbone.image_transform
        resize = transform_resize(spec)
        opened: dict[str, Any] = {}
        chunks, pixels = [], []

        def flush() -> None:
            if pixels:
                batch = to_model_input(np.stack(pixels), spec.mean, spec.std)
                chunks.append(self.backbone.encode_image(batch).cpu())
                pixels.clear()

        for path, box in crops[lo:hi]:
            key = str(path)
            if key not in opened:
                opened.clear()  # crops come grouped by image: keep one decoded image at a time
                with open_rgb(path) as img:
                    opened[key] = img.convert("RGB")
            img = opened[key]
            x1, y1, x2, y2 = (float(v) for v in np.asarray(box, dtype=np.float64).reshape(4))
            left, top = min(max(0, round(x1)), img.width - 1), min(max(0, round(y1)), img.height - 1)
            right, bottom = max(left + 1, min(img.width, round(x2))), max(top + 1, min(img.height, round(y2)))
            pixels.append(np.asarray(resize.apply(img.crop((left, top, right, bottom))), dtype=np.uint8))
            if len(pixels) == self.batch_size:
                flush()
        flush()
        part = torch.cat(chunks) if chunks else torch.empty(0, self.backbone.embedding_dim)
        self.stats["images_encoded"] += hi - lo
        gathered = _gather(part)
        self.stats["encode_seconds"] += time.perf_counter() - started
        return gathered

    def text_features(self, captions: Sequence[str], *, task: str | None = None) -> torch.Tensor:
        """``(N, D)`` float32 features of the captions, in order (raises for image-only backbones)."""
        from plipbench.errors import PlipbenchError

        if not self.backbone.has_text:
            raise PlipbenchError(f"backbone {self.backbone.name} has no text encoder; task {task or '?'} needs one")
        return self._cached("text", self._text_key(captions), len(captions),
                            lambda: self._encode_texts(captions, task))

    def encode_images_with(self, backbone: Backbone, records: Sequence[PersonRecord], *, flip: bool = False) -> torch.Tensor:
        """Uncached, sharded extraction with ``backbone`` (e.g. after fine-tuning)."""
        import torch

        from plipbench.data.decoded import decoded_images, to_model_input, transform_resize

        started = time.perf_counter()
        rank, world = _dist()
        lo, hi = shard_bounds(len(records), rank, world)
        spec = backbone.image_transform
        pixels = decoded_images(records[lo:hi], transform_resize(spec))
        chunks = []
        for start in range(0, len(pixels), self.batch_size):
            batch = to_model_input(pixels[start:start + self.batch_size], spec.mean, spec.std)
            chunks.append(backbone.encode_image(batch.flip(-1) if flip else batch).cpu())
        part = torch.cat(chunks) if chunks else torch.empty(0, backbone.embedding_dim)
        self.stats["images_encoded"] += hi - lo
        gathered = _gather(part)
        self.stats["encode_seconds"] += time.perf_counter() - started
        return gathered

    def _encode_texts(self, captions: Sequence[str], task: str | None) -> torch.Tensor:
        import torch

        rank, world = _dist()
        lo, hi = shard_bounds(len(captions), rank, world)
        part = self.backbone.encode_texts(list(captions[lo:hi]), batch_size=max(self.batch_size, 128), task=task)
        self.stats["texts_encoded"] += hi - lo
        return _gather(part.cpu() if part.numel() else torch.empty(0, self.backbone.embedding_dim))

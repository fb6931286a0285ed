"""Feature extraction for frozen backbones: batched, sharded across ranks, cached on disk.

Cache key: (backbone fingerprint, image transform, flip, the exact list of images - path, size
and modification time of each file) for images; (backbone fingerprint, the exact caption list)
for texts. A rerun, or a second task or protocol on the same images, reads the features back
instead of recomputing them. Files are safetensors, written atomically by rank 0.

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
    """``torch.utils.data.Dataset`` of preprocessed images of records (optionally flipped)."""

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
        self.batch_size, self.num_workers, self.progress = batch_size, num_workers, progress
        # seconds: computing cache misses; encode_seconds: every image encoding (cached or not)
        self.stats = {"hits": 0, "misses": 0, "images_encoded": 0, "texts_encoded": 0, "seconds": 0.0,
                      "encode_seconds": 0.0}

    # -- keys --------------------------------------------------------------------------------
    def _image_key(self, records: Sequence[PersonRecord], flip: bool) -> str:
        h = hashlib.sha256()
        h.update(self.backbone.fingerprint.encode())
        h.update(json.dumps(self.backbone.image_transform.model_dump(mode="json"), sort_keys=True).encode())
        h.update(b"flip" if flip else b"noflip")
        for r in records:
            try:
                st = os.stat(r.image_path)
            except OSError as err:
                raise DataError(r.image_path, "image file not found") from err
            h.update(f"{r.image_path}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        return h.hexdigest()

    def _text_key(self, captions: Sequence[str]) -> str:
        h = hashlib.sha256(self.backbone.fingerprint.encode())
        for c in captions:
            h.update(c.encode())
            h.update(b"\x00")
        return h.hexdigest()

    def _cached(self, kind: str, key: str, compute: Any) -> torch.Tensor:
        from safetensors.torch import load_file, save_file

        from plipbench.io import atomic_write_bytes

        path = self.cache_dir / f"{kind}-{key[:32]}.safetensors" if self.cache_dir is not None else None
        rank, world = _dist()
        # rank 0 decides hit or miss for everyone: a miss runs collectives, so all ranks must agree
        hit = _broadcast(path is not None and path.is_file(), world)
        if hit:
            self.stats["hits"] += 1
            return _broadcast(load_file(str(path))["features"] if rank == 0 else None, world)
        self.stats["misses"] += 1
        started = time.perf_counter()
        features = compute()
        self.stats["seconds"] += time.perf_counter() - started
        if path is not None and rank == 0:
            import tempfile

            with tempfile.TemporaryDirectory() as tmp:
                save_file({"features": features.contiguous()}, f"{tmp}/f.safetensors")
                atomic_write_bytes(path, Path(f"{tmp}/f.safetensors").read_bytes())
        return features

    # -- public ------------------------------------------------------------------------------
    def image_features(self, records: Sequence[PersonRecord], *, flip: bool = False) -> torch.Tensor:
        """``(N, D)`` float32 features of the records' images, in record order."""
        return self._cached("image", self._image_key(records, flip),
                            lambda: self.encode_images_with(self.backbone, records, flip=flip))

    def text_features(self, captions: Sequence[str], *, task: str | None = None) -> torch.Tensor:
        """``(N, D)`` float32 features of the captions, in order (raises for image-only backbones)."""
        from plipbench.errors import PlipbenchError

        if not self.backbone.has_text:
            raise PlipbenchError(f"backbone {self.backbone.name} has no text encoder; task {task or '?'} needs one")
        return self._cached("text", self._text_key(captions), lambda: self._encode_texts(captions, task))

    def encode_images_with(self, backbone: Backbone, records: Sequence[PersonRecord], *, flip: bool = False) -> torch.Tensor:
        """Uncached, sharded extraction with ``backbone`` (e.g. after fine-tuning)."""
        import torch

        from plipbench.models.backbone import build_torchvision_transform

        started = time.perf_counter()
        rank, world = _dist()
        lo, hi = shard_bounds(len(records), rank, world)
        dataset = RecordImages(records[lo:hi], build_torchvision_transform(backbone.image_transform), flip)
        loader = torch.utils.data.DataLoader(dataset, batch_size=self.batch_size, num_workers=self.num_workers,
                                             shuffle=False)
        chunks = [backbone.encode_image(batch).cpu() for batch in loader]
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

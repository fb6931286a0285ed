"""Decoded-image cache: every image list is decoded once per target size into a memory-mapped uint8
array, shared by every backbone, every epoch, every protocol and every run.

``decoded_images(records, resize)`` returns :class:`DecodedImages`, an ``(N, H, W, 3)`` uint8 view of
``$PLIPBENCH_CACHE/decoded/<key>.npy`` (``np.load(mmap_mode="r")``: pages are read on demand, so a
large dataset costs disk, not memory). The key covers the exact image list (path, size and
modification time of each file, as the feature cache), the resize (``Resize``) and the versions of
the decoder (this module, Pillow, torchvision). A missing or corrupt file (truncated, foreign,
wrong shape) is rebuilt, the corrupt one with a one-line warning. The file is written atomically
under a per-entry lock, so two processes (or ``torchrun`` ranks) asking at once decode once.

Numerics: the cache stores exactly what the PIL stage of today's loaders produced, and
:func:`to_model_input` applies torchvision's ``ToTensor`` + ``Normalize`` arithmetic in the same order
(uint8 -> float32, ``/ 255``, ``- mean``, ``/ std``), so model inputs are bit-identical to the
per-item path; ``tests/data/test_decoded.py`` asserts it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from plipbench.errors import DataError, PlipbenchError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from plipbench.models.metadata import ImageTransform

DECODER_VERSION = 1  # bump when decode_image changes what it stores


@dataclass(frozen=True)
class Resize:
    """How a decoded RGB image becomes the cached ``size`` (H, W).

    ``kind="torchvision"`` reproduces the PIL stage of
    :func:`~plipbench.models.backbone.build_torchvision_transform` (``resize``, ``crop_pct`` as in
    :class:`~plipbench.models.metadata.ImageTransform`); ``kind="pil"`` the pre-training loader's
    ``Image.resize`` (skipped when the image already has the size).
    """

    kind: Literal["torchvision", "pil"]
    size: tuple[int, int]
    interpolation: str = "bicubic"
    resize: str = "stretch"
    crop_pct: float = 1.0

    def apply(self, image: Any) -> Any:
        if self.kind == "pil":
            from PIL import Image

            height, width = self.size
            if image.size != (width, height):
                image = image.resize((width, height), Image.Resampling[self.interpolation.upper()])
            return image
        from plipbench.models.backbone import build_resize_steps
        from plipbench.models.metadata import ImageTransform

        spec = ImageTransform(size=self.size, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0),
                              interpolation=self.interpolation, resize=self.resize, crop_pct=self.crop_pct)
        for step in build_resize_steps(spec):
            image = step(image)
        return image


def transform_resize(spec: ImageTransform) -> Resize:
    """The resize of a backbone's image transform (mean and std are applied later, on tensors)."""
    return Resize("torchvision", tuple(spec.size), spec.interpolation, spec.resize, float(spec.crop_pct))


def pretrain_resize(size: Sequence[int]) -> Resize:
    """The pre-training loader's bicubic stretch to ``size`` (H, W)."""
    return Resize("pil", (int(size[0]), int(size[1])), "bicubic")


def decode_image(path: str | Path, resize: Resize) -> np.ndarray:
    """One image: PIL decode, RGB, ``resize`` -> ``(H, W, 3)`` uint8; an undecodable file is a DataError."""
    from PIL import Image, UnidentifiedImageError

    from plipbench.data.images import open_rgb  # the pixel limit (decompression bombs) and one-line errors

    try:
        with open_rgb(path) as img:
            array = np.asarray(resize.apply(img.convert("RGB")), dtype=np.uint8)
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as err:
        raise DataError(path, f"cannot decode image ({err})") from err
    if array.shape != (*resize.size, 3):
        raise DataError(path, f"decoded to shape {array.shape}, expected {(*resize.size, 3)}")
    return array


def decoded_key(paths: Sequence[str | Path], resize: Resize) -> str:
    """sha256 over the decoder versions, ``resize`` and (path, size, mtime) of every image, in order."""
    import PIL

    h = hashlib.sha256()
    versions = {"decoder": DECODER_VERSION, "pillow": PIL.__version__}
    if resize.kind == "torchvision":  # its resize code runs; the "pil" kind never imports torchvision
        from importlib.metadata import version

        versions["torchvision"] = version("torchvision")
    h.update(json.dumps({**versions, **asdict(resize)}, sort_keys=True).encode())
    for path in paths:
        try:
            st = os.stat(path)
        except OSError as err:
            raise DataError(path, "image file not found") from err
        h.update(os.fsencode(str(path)) + f"|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


class DecodedImages:
    """``(N, H, W, 3)`` uint8 images backed by a cache file; pickles as its path (loader workers reopen it)."""

    def __init__(self, path: Path | None, array: np.ndarray) -> None:
        self.path, self._array = path, array
        self.shape = tuple(array.shape)

    @property
    def array(self) -> np.ndarray:
        if self._array is None:
            self._array = np.load(self.path, mmap_mode="r")
        return self._array

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: Any) -> np.ndarray:
        """A writable copy of ``array[index]`` (one image or a slice)."""
        return np.array(self.array[index])

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        if self.path is not None:
            state["_array"] = None
        return state


def _open_valid(path: Path, expected: tuple[int, ...], *, discard: bool) -> np.ndarray | None:
    """The memory-mapped entry if it is complete and has ``expected`` shape; a bad one is discarded."""
    from plipbench.cache_entries import discard_corrupt

    if not path.is_file():
        return None
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
        problem = None
        if not isinstance(array, np.memmap) or array.dtype != np.uint8 or tuple(array.shape) != expected:
            problem = f"holds {getattr(array, 'shape', '?')} {getattr(array, 'dtype', '?')}, expected {expected} uint8"
        elif path.stat().st_size != array.offset + array.nbytes:
            problem = f"{path.stat().st_size} bytes, expected {array.offset + array.nbytes}"
    except Exception as err:  # truncated header, not an .npy file, ...
        problem = f"{type(err).__name__}: {err}"
    if problem is None:
        return array
    if discard:
        discard_corrupt(path, problem)
    return None


def decoded_images(
    records: Sequence[Any], resize: Resize, *, cache_dir: str | Path | None = None
) -> DecodedImages:
    """The decoded images of ``records`` (objects with ``image_path``, or paths), from the cache or decoded now."""
    from plipbench.cache_entries import entry_lock, sweep_stale_temporaries
    from plipbench.environment import cache_root
    from plipbench.io import atomic_write

    paths = [getattr(r, "image_path", r) for r in records]
    expected = (len(paths), *resize.size, 3)
    if not paths:
        return DecodedImages(None, np.empty(expected, dtype=np.uint8))
    directory = Path(cache_dir) if cache_dir is not None else cache_root() / "decoded"
    path = directory / f"{decoded_key(paths, resize)[:32]}.npy"
    array = _open_valid(path, expected, discard=False)
    if array is not None:
        return DecodedImages(path, array)
    with entry_lock(path):  # a second process waits here, then reuses what the first wrote
        sweep_stale_temporaries(directory)
        array = _open_valid(path, expected, discard=True)
        if array is None:
            header = {"descr": "|u1", "fortran_order": False, "shape": expected}

            def write(fh: Any) -> None:
                np.lib.format.write_array_header_1_0(fh, header)
                for image_path in paths:  # one image in memory at a time
                    fh.write(decode_image(image_path, resize).tobytes())

            atomic_write(path, write)
            array = _open_valid(path, expected, discard=False)
            if array is None:  # pragma: no cover - the file we just wrote is unreadable
                raise PlipbenchError(f"{path}: the decoded-image cache just written cannot be read back")
    return DecodedImages(path, array)


def to_model_input(pixels: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """``(H, W, 3)`` or ``(B, H, W, 3)`` uint8 -> ``(3, H, W)`` / ``(B, 3, H, W)`` contiguous float tensor,
    with torchvision's ``ToTensor`` then ``Normalize`` arithmetic (bit-identical per element)."""
    import torch

    tensor = torch.from_numpy(np.array(pixels, dtype=np.uint8))
    tensor = tensor.permute(2, 0, 1) if tensor.ndim == 3 else tensor.permute(0, 3, 1, 2)
    tensor = tensor.contiguous().to(dtype=torch.get_default_dtype()).div(255)
    mean_t = torch.as_tensor(list(mean), dtype=tensor.dtype).view(-1, 1, 1)
    std_t = torch.as_tensor(list(std), dtype=tensor.dtype).view(-1, 1, 1)
    return tensor.sub_(mean_t).div_(std_t)

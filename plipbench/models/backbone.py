"""The ``Backbone`` contract every model on the leaderboard satisfies, and the image preprocessing.

A backbone maps a batch of preprocessed images ``(B, 3, H, W)`` to ``(B, D)`` float32 embeddings
and, for vision-language models, a list of captions to ``(B, D)`` embeddings in the same space.
Conventions shared by every implementation:

- inference runs under ``torch.inference_mode()`` with the module in eval mode (dropout off,
  BatchNorm running statistics); the output is always float32 on the CPU-or-device the backbone
  lives on, whatever precision the forward pass used;
- ``precision="bf16"`` wraps the forward pass in ``torch.autocast(dtype=torch.bfloat16)``;
- embeddings are *not* L2-normalised here: the evaluation protocol decides the similarity.

Subclasses implement ``_encode_image`` (and ``_encode_text`` for text models) and provide
``module`` (the ``nn.Module`` holding every parameter) and ``metadata``/``image_transform``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal

from plipbench.errors import ConfigError, PlipbenchError
from plipbench.models.metadata import BackboneMetadata, ImageTransform

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

Precision = Literal["fp32", "bf16"]


def build_resize_steps(spec: ImageTransform) -> list[Any]:
    """The PIL stage of :func:`build_torchvision_transform`: PIL RGB image -> PIL image of ``spec.size``.

    The decoded-image cache (:mod:`plipbench.data.decoded`) stores this stage's output as uint8.
    """
    from torchvision import transforms as T
    from torchvision.transforms import InterpolationMode

    interp = InterpolationMode(spec.interpolation)
    height, width = spec.size
    if spec.resize == "stretch":
        return [T.Resize((height, width), interpolation=interp)]
    shorter = int(round(min(height, width) / spec.crop_pct))
    return [T.Resize(shorter, interpolation=interp), T.CenterCrop((height, width))]


def build_torchvision_transform(spec: ImageTransform) -> Callable[[Any], torch.Tensor]:
    """The torchvision pipeline for ``spec``: PIL RGB image -> normalised ``(3, H, W)`` float tensor."""
    from torchvision import transforms as T

    steps = build_resize_steps(spec) + [T.ToTensor(), T.Normalize(mean=list(spec.mean), std=list(spec.std))]
    return T.Compose(steps)


def to_pil_rgb(image: Any) -> Any:
    """A PIL RGB image from a PIL image, a ``(H, W, 3)`` / ``(H, W)`` uint8 array or a uint8 ``(3, H, W)`` tensor."""
    import numpy as np
    from PIL import Image

    if isinstance(image, Image.Image):
        return image.convert("RGB")
    try:
        import torch

        if isinstance(image, torch.Tensor):
            if image.dtype != torch.uint8 or image.ndim != 3 or image.shape[0] not in (1, 3):
                raise ConfigError(
                    f"image tensor must be uint8 (C, H, W), got {tuple(image.shape)} {image.dtype}"
                )
            image = image.permute(1, 2, 0).cpu().numpy()
    except ImportError:  # pragma: no cover
        pass
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim not in (2, 3):
        raise ConfigError(f"image array must be uint8 (H, W) or (H, W, C), got {array.shape} {array.dtype}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    return Image.fromarray(array).convert("RGB")


def preprocess_image(image: Any, spec: ImageTransform) -> torch.Tensor:
    """Turn one PIL image / uint8 array into the model input ``(3, H, W)`` described by ``spec``."""
    return build_torchvision_transform(spec)(to_pil_rgb(image))


def _batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    if size <= 0:
        raise ConfigError(f"batch_size must be positive, got {size}")
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class Backbone:
    """Base class of every backbone (see the module docstring for the contract).

    Subclasses set ``self.module``, ``self.metadata`` and ``self.image_transform`` and implement
    :meth:`_encode_image`; text models also implement :meth:`_encode_text`.
    """

    module: nn.Module
    metadata: BackboneMetadata
    image_transform: ImageTransform
    precision: Precision = "fp32"
    _fingerprint: str | None = None

    # -- to implement -------------------------------------------------------------------
    def _encode_image(self, images: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _encode_text(self, texts: list[str]) -> torch.Tensor:
        raise NotImplementedError

    # -- device / precision --------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        import torch

        for tensor in self.module.parameters():
            return tensor.device
        return torch.device("cpu")

    def to(self, device: str | torch.device) -> Backbone:
        """Move the module to ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...) and return self."""
        import torch

        device = torch.device(device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(f"device {device} requested but CUDA is not available on this machine")
        self.module.to(device)
        return self

    def set_precision(self, precision: Precision) -> Backbone:
        """Use ``"bf16"`` autocast or plain ``"fp32"`` for the forward pass (outputs stay float32)."""
        if precision not in ("fp32", "bf16"):
            raise ConfigError(f"precision must be 'fp32' or 'bf16', got {precision!r}")
        self.precision = precision
        return self

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        import torch

        if self.precision == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # -- public API ------------------------------------------------------------------------
    @property
    def has_text(self) -> bool:
        """True when :meth:`encode_text` is available (the metadata lists the text modality)."""
        return "text" in self.metadata.modalities

    def _no_text_message(self, task: str | None) -> str:
        needs = f"task {task} needs one" if task else "text tasks need one"
        return f"backbone {self.metadata.name} has no text encoder; {needs}"

    @property
    def embedding_dim(self) -> int:
        return self.metadata.embedding_dim

    @property
    def name(self) -> str:
        return self.metadata.name

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` preprocessed images -> ``(B, D)`` float32 embeddings."""
        import torch

        if not isinstance(images, torch.Tensor) or images.ndim != 4:
            shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise ConfigError(f"encode_image expects a (B, 3, H, W) tensor, got {shape}")
        self.module.eval()
        with torch.inference_mode(), self._autocast(), self._refuse_exit("image"):
            out = self._encode_image(images.to(self.device, dtype=torch.float32))
        return self._checked(out, len(images), "image").float()

    def forward_image(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` preprocessed images -> ``(B, D)`` float32 embeddings, differentiable: the training
        forward of the fine-tune protocols (no inference mode, the module's own train/eval mode kept)."""
        return self._encode_image(images).float()

    def encode_text(self, texts: Sequence[str], *, task: str | None = None) -> torch.Tensor:
        """A list of captions -> ``(B, D)`` float32 embeddings; raises for image-only backbones."""
        import torch

        if not self.has_text:
            raise PlipbenchError(self._no_text_message(task))
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise ConfigError("encode_text expects a list of strings")
        self.module.eval()
        with torch.inference_mode(), self._autocast(), self._refuse_exit("text"):
            out = self._encode_text(list(texts))
        return self._checked(out, len(texts), "text").float()

    @contextlib.contextmanager
    def _refuse_exit(self, what: str) -> Iterator[None]:
        """A ``sys.exit()`` inside a user's encoder must not end the run with status 0 (a false pass)."""
        try:
            yield
        except SystemExit as err:
            raise PlipbenchError(f"backbone {self.name}: the {what} encoder called sys.exit({err.code!r})") from None

    def _checked(self, out: Any, batch: int, what: str) -> torch.Tensor:
        """Every batch's output must be ``(batch, embedding_dim)``: an embedding of another size than the
        metadata declares would be cached, scored and saved under the wrong contract."""
        import torch

        if not isinstance(out, torch.Tensor):
            raise PlipbenchError(f"backbone {self.name}: the {what} encoder returned {type(out).__name__}, "
                                 "expected a tensor")
        expected = (batch, self.metadata.embedding_dim)
        if tuple(out.shape) != expected:
            dim = f"{out.shape[1]}-d embeddings" if out.ndim == 2 else f"shape {tuple(out.shape)}"
            raise PlipbenchError(
                f"backbone {self.name}: the {what} encoder returned {dim} for a batch of {batch}, but the "
                f"metadata declares embedding_dim {self.metadata.embedding_dim}: expected {expected}"
            )
        return out

    def encode_images(self, images: Iterable[Any], batch_size: int = 64) -> torch.Tensor:
        """Encode raw images (PIL / uint8 arrays) or preprocessed ``(3, H, W)`` float tensors in batches."""
        import torch

        transform = build_torchvision_transform(self.image_transform)

        def prepare(item: Any) -> torch.Tensor:
            if isinstance(item, torch.Tensor) and item.is_floating_point():
                return item
            return transform(to_pil_rgb(item))

        chunks = [
            self.encode_image(torch.stack([prepare(x) for x in batch]))
            for batch in _batched(images, batch_size)
        ]
        if not chunks:
            return torch.empty(0, self.embedding_dim)
        return torch.cat(chunks)

    def encode_texts(
        self, texts: Iterable[str], batch_size: int = 256, *, task: str | None = None
    ) -> torch.Tensor:
        """Encode captions in batches; same contract as :meth:`encode_text`."""
        import torch

        chunks = [self.encode_text(batch, task=task) for batch in _batched(texts, batch_size)]
        if not chunks:
            if not self.has_text:
                return self.encode_text([], task=task)
            return torch.empty(0, self.embedding_dim)
        return torch.cat(chunks)

    @property
    def fingerprint(self) -> str:
        """sha256 over the metadata and the weights: the checkpoint hash when known, else the parameter bytes.

        Stable across processes and machines for the same weights; a feature cache keys on it.
        """
        if self._fingerprint is None:
            digest = hashlib.sha256()
            meta = self.metadata.model_dump(mode="json")
            meta["image_transform"] = self.image_transform.model_dump(mode="json")
            digest.update(json.dumps(meta, sort_keys=True).encode())
            if self.metadata.checkpoint_sha256:
                digest.update(self.metadata.checkpoint_sha256.encode())
            else:
                digest.update(state_dict_sha256(self.module).encode())
            self._fingerprint = digest.hexdigest()
        return self._fingerprint

    # files holding code that computes this backbone's outputs beyond its classes (the factory that built
    # it: a family adapter, a user's file.py / module); set by create_backbone and create_from_baseline
    code_sources: tuple[str, ...] = ()

    def source_files(self) -> list[str]:
        """The source files whose code computes the embeddings: this class's module, the module of every
        ``nn.Module`` class in ``module`` (torch's own excepted: the torch version stands for them), the
        encoding functions of a :class:`ModuleBackbone`, and :attr:`code_sources`."""
        import torch

        torch_dir = os.path.dirname(torch.__file__) + os.sep
        files = set(self.code_sources)
        classes = {type(self)} | {type(m) for m in self.module.modules()}
        for cls in classes:
            path = getattr(sys.modules.get(cls.__module__), "__file__", None)
            if path:
                files.add(path)
        for fn in (getattr(self, "_image_fn", None), getattr(self, "_text_fn", None)):
            code = getattr(fn, "__code__", None)
            if code is not None and os.path.isfile(code.co_filename):
                files.add(code.co_filename)
        return sorted(f for f in files if not os.path.abspath(f).startswith(torch_dir))

    @property
    def code_fingerprint(self) -> str:
        """sha256 over the plipbench and torch versions and the content of :meth:`source_files`.

        The feature cache keys on it (with :attr:`fingerprint`), so that fixing an encoder's code while
        keeping its weights, or upgrading plipbench, recomputes the features. It is kept out of
        :attr:`fingerprint`, which names the weights (result staleness, pre-training caches).
        """
        return code_fingerprint_of(self.source_files())

    def __repr__(self) -> str:
        meta = self.metadata
        return f"{type(self).__name__}(name={meta.name!r}, family={meta.family!r}, dim={meta.embedding_dim})"


def code_fingerprint_of(files: Iterable[str]) -> str:
    """:attr:`Backbone.code_fingerprint` of a backbone whose :meth:`~Backbone.source_files` are ``files``: sha256
    over the plipbench and torch versions and the files' current content (a missing file hashes as missing)."""
    import torch

    from plipbench import __version__

    digest = hashlib.sha256(f"plipbench {__version__}|torch {torch.__version__}\n".encode())
    for content in sorted(_file_sha256(path) for path in files):
        digest.update(content.encode())
    return digest.hexdigest()


def _file_sha256(path: str) -> str:
    try:
        st = os.stat(path)
    except OSError:
        return hashlib.sha256(f"missing:{path}".encode()).hexdigest()
    return _file_sha256_cached(path, st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=1024)
def _file_sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def record_code_source(backbone: Backbone, source: Any) -> Backbone:
    """Add the file of ``source`` (a path, or a function / module) to ``backbone.code_sources``."""
    import inspect

    if isinstance(source, (str, os.PathLike)):
        path: str | None = os.path.abspath(source)
    else:
        try:
            path = inspect.getsourcefile(source)
        except TypeError:
            path = None
    if path and os.path.isfile(path):
        backbone.code_sources = tuple(sorted({*backbone.code_sources, path}))
    return backbone


def state_dict_sha256(module: nn.Module) -> str:
    """sha256 over the names, dtypes, shapes and bytes of every tensor in ``module.state_dict()`` (sorted by name)."""
    import torch

    digest = hashlib.sha256()
    state = module.state_dict()
    for key in sorted(state):
        tensor = state[key].detach().cpu().contiguous()
        digest.update(f"{key}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        if tensor.numel():
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


class ModuleBackbone(Backbone):
    """Wrap any ``nn.Module`` as a :class:`Backbone`.

    ``image_fn(module, images)`` computes the image embedding (default: ``module.encode_image``
    when it exists, else ``module(images)``); ``text_fn(module, texts)`` computes the text
    embedding from raw strings (default: ``module.encode_text`` when the metadata lists the text
    modality). The module is put in eval mode and on ``device``.
    """

    def __init__(
        self,
        module: nn.Module,
        metadata: BackboneMetadata,
        image_transform: ImageTransform,
        *,
        image_fn: Callable[[Any, torch.Tensor], torch.Tensor] | None = None,
        text_fn: Callable[[Any, list[str]], torch.Tensor] | None = None,
        device: str = "cpu",
        precision: Precision = "fp32",
    ) -> None:
        self.module = module
        self.metadata = metadata
        self.image_transform = image_transform
        if image_fn is None:
            image_fn = (
                (lambda m, x: m.encode_image(x)) if hasattr(module, "encode_image") else (lambda m, x: m(x))
            )
        if text_fn is None and "text" in metadata.modalities:
            if not hasattr(module, "encode_text"):
                raise ConfigError(
                    f"backbone {metadata.name} declares the text modality but its module has no encode_text(list[str])"
                )
            text_fn = lambda m, texts: m.encode_text(texts)  # noqa: E731
        self._image_fn = image_fn
        self._text_fn = text_fn
        self.module.eval()
        self.to(device)
        self.set_precision(precision)

    def _encode_image(self, images: torch.Tensor) -> torch.Tensor:
        return _as_tensor(self._image_fn(self.module, images), self.metadata.name, "image")

    def _encode_text(self, texts: list[str]) -> torch.Tensor:
        assert self._text_fn is not None
        return _as_tensor(self._text_fn(self.module, texts), self.metadata.name, "text")


def _as_tensor(out: Any, name: str, what: str) -> torch.Tensor:
    import torch

    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        out = out[0]
    if not isinstance(out, torch.Tensor):
        raise PlipbenchError(
            f"backbone {name}: the {what} encoder returned {type(out).__name__}, expected a tensor"
        )
    if out.ndim == 4 and out.shape[2:] == (1, 1):
        out = out.flatten(1)
    if out.ndim != 2:
        raise PlipbenchError(
            f"backbone {name}: the {what} encoder returned shape {tuple(out.shape)}, expected (B, D)"
        )
    return out

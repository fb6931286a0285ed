"""Fast fine-tunes on one GPU: mixed precision, channels_last, ``torch.compile`` and the loader's workers, as one
:class:`Acceleration` resolved from the protocol options and the device.

Protocol choices (every one is written into the result, :meth:`Acceleration.details`):

- ``autocast`` (default ``"fp32"``; ``"recipe"`` in the recipe fine-tunes): ``"fp32"`` runs as before, bit for bit. ``"bf16"``: ``torch.autocast``
  with bfloat16 around each training step (forward and losses); on CUDA the device must support bf16, on CPU it
  runs when asked (never chosen automatically). ``"fp16"``: autocast float16 plus a
  :class:`torch.amp.GradScaler` (scaled backward, gradients unscaled before clipping, steps with inf/NaN
  gradients skipped); CUDA only. ``"auto"``: bf16 on a CUDA device that supports it, else fp16 on CUDA, fp32 on
  CPU. ``"recipe"``: the recipe's own ``precision`` field: ``amp`` (TransReID's ``torch.cuda.amp``) and
  ``fp16-weights`` (IRRA's CLIP-style fp16 weights, approximated by autocast with fp32 master weights) resolve
  as ``"auto"`` on CUDA and fp32 on CPU; ``fp32`` stays fp32. Weights, optimizer state and the test features stay
  fp32 in every mode.
- ``channels_last`` (default ``"auto"``): the NHWC memory format for CNN backbones' weights and, through a
  pre-hook on the first convolution, their input images. ``"auto"``: on for a CNN on CUDA, off otherwise (so CPU
  numbers do not move); ``true`` forces it (CNN backbones only), ``false`` turns it off.
- ``compile`` (default ``false``): the training step (forward and losses) through ``torch.compile``.
- loader: ``num_workers`` (the protocols' existing option), ``pin_memory`` on CUDA, ``persistent_workers`` when
  there are workers. With persistent workers a worker keeps its copy of the dataset across epochs, so
  :func:`accelerated_loader` tags every index with the epoch the main process set (:class:`EpochTagged`): the
  augmentations stay those of ``(seed, epoch, index)``, whatever the number of workers.

CPU runs stay deterministic: on CPU the defaults (and ``"auto"``) are plain fp32, no channels_last, no compile,
so a CPU result equals one without acceleration.

The recipe fine-tunes (image ReID, text ReID, attributes) take these options (``recipe_run.RUN_OPTIONS``) with
``autocast: recipe`` by default: the reference's own precision on CUDA (TransReID's AMP, IRRA's fp16 weights as
autocast), fp32 on CPU. The option is called ``autocast`` so that it does not shadow the recipe's ``precision``
field, which stays a recipe override. Each builds its training loader with :func:`accelerated_loader`, passes
``accel=`` to :func:`~plipbench.evaluation.protocols.loop.fine_tune_loop` and records
``details["acceleration"]`` (:meth:`Acceleration.details`).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from plipbench.errors import ConfigError

#: the acceleration options of a fine-tune protocol and their defaults (``num_workers`` is the loader's own)
ACCEL_OPTIONS: dict[str, Any] = {"autocast": "fp32", "channels_last": "auto", "compile": False}
PRECISIONS = ("fp32", "bf16", "fp16", "auto", "recipe")
CHANNELS_LAST = ("auto", True, False)


@dataclasses.dataclass(frozen=True)
class Acceleration:
    """How a fine-tune runs on its device (see the module docstring). Build it with :func:`resolve_acceleration`;
    the fields are public so a test or a benchmark can set one directly."""

    device_type: str = "cpu"  # "cpu" or "cuda"
    precision: str = "fp32"  # resolved: "fp32", "bf16" or "fp16"
    requested: str = "fp32"  # the option as given
    grad_scaler: bool = False  # a GradScaler around backward and step (fp16)
    channels_last: bool = False
    compile: bool = False
    compile_backend: Any = "inductor"  # a torch.compile backend (a name or a callable)
    num_workers: int = 0
    pin_memory: bool = False
    persistent_workers: bool = False

    @property
    def autocast_dtype(self) -> Any:
        import torch

        return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[self.precision]

    @property
    def is_default(self) -> bool:
        """Nothing differs from a run without acceleration (fp32, no channels_last, no compile, no scaler)."""
        return self.precision == "fp32" and not (self.grad_scaler or self.channels_last or self.compile)

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """The context a training step runs in: ``torch.autocast`` for bf16/fp16, nothing for fp32."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        import torch

        return torch.autocast(device_type=self.device_type, dtype=self.autocast_dtype)

    def scaler(self) -> Any:
        """A fresh :class:`torch.amp.GradScaler` when ``grad_scaler`` is on, else None."""
        if not self.grad_scaler:
            return None
        import torch

        return torch.amp.GradScaler(self.device_type)

    def prepare(self, *modules: Any) -> Acceleration:
        """channels_last on ``modules`` (in place): their 4-D weights in NHWC and a pre-hook on each one's first
        convolution that converts its input. Returns ``self``."""
        if not self.channels_last:
            return self
        import torch

        for module in modules:
            module.to(memory_format=torch.channels_last)
            first = next((m for m in module.modules() if isinstance(m, torch.nn.Conv2d)), None)
            if first is not None and not getattr(first, "_plipbench_channels_last", False):
                first.register_forward_pre_hook(_channels_last_input)
                first._plipbench_channels_last = True
        return self

    def prepare_input(self, images: Any) -> Any:
        """``images`` in channels_last when it is on and they are a 4-D tensor, else unchanged."""
        import torch

        if self.channels_last and torch.is_tensor(images) and images.dim() == 4:
            return images.contiguous(memory_format=torch.channels_last)
        return images

    def compiled(self, step: Callable[..., Any]) -> Callable[..., Any]:
        """``step`` through ``torch.compile`` when ``compile`` is on, else ``step`` itself."""
        if not self.compile:
            return step
        import torch

        return torch.compile(step, backend=self.compile_backend)

    def loader_kwargs(self) -> dict[str, Any]:
        """The DataLoader keywords: workers, pinned memory, persistent workers."""
        kwargs: dict[str, Any] = {"num_workers": self.num_workers, "pin_memory": self.pin_memory}
        if self.num_workers > 0:
            kwargs["persistent_workers"] = self.persistent_workers
        return kwargs

    def details(self) -> dict[str, Any]:
        """The choices, for a result's ``details["acceleration"]``."""
        return {"precision": self.precision, "precision_requested": self.requested,
                "autocast_dtype": None if self.precision == "fp32" else str(self.autocast_dtype).removeprefix(
                    "torch."), "grad_scaler": self.grad_scaler, "channels_last": self.channels_last,
                "compile": str(self.compile_backend) if self.compile else False, "device_type": self.device_type,
                "num_workers": self.num_workers, "pin_memory": self.pin_memory,
                "persistent_workers": self.persistent_workers}


def _channels_last_input(module: Any, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
    import torch

    if args and torch.is_tensor(args[0]) and args[0].dim() == 4:
        return (args[0].contiguous(memory_format=torch.channels_last), *args[1:])
    return None


def _bf16_supported(device: str) -> bool:
    import torch

    if not torch.cuda.is_available():
        return False
    with torch.cuda.device(torch.device(device)):
        return bool(torch.cuda.is_bf16_supported())


def resolve_acceleration(options: Mapping[str, Any], device: str, *, architecture: str | None = None,
                         recipe_precision: str | None = None, where: str = "fine-tune") -> Acceleration:
    """The :class:`Acceleration` of ``options`` (``autocast``, ``channels_last``, ``compile``, ``num_workers``;
    missing ones take :data:`ACCEL_OPTIONS`' defaults) on ``device``. ``architecture`` ("cnn", "vit", "swin")
    decides channels_last; ``recipe_precision`` is the recipe's field, for ``autocast: recipe``. A bad value:
    a one-line :class:`ConfigError` naming the allowed ones."""
    merged = {**ACCEL_OPTIONS, "num_workers": 0, **{k: v for k, v in options.items()
                                                    if k in (*ACCEL_OPTIONS, "num_workers")}}
    device_type = "cuda" if str(device).startswith("cuda") else "cpu"
    if device_type == "cpu" and str(device) != "cpu":
        raise ConfigError(f"{where}: acceleration supports the devices cpu and cuda[:N], not {device!r}")
    requested = merged["autocast"]
    if requested not in PRECISIONS:
        raise ConfigError(f"{where}: option 'autocast' expects one of {', '.join(map(repr, PRECISIONS))}, "
                          f"got {requested!r}")
    precision = requested
    if precision == "recipe":
        if recipe_precision is None:
            raise ConfigError(f"{where}: option 'autocast': 'recipe' needs a recipe; use one of 'fp32', 'bf16', "
                              "'fp16', 'auto'")
        precision = "fp32" if recipe_precision == "fp32" else "auto"
    if precision == "auto":
        precision = "fp32" if device_type == "cpu" else ("bf16" if _bf16_supported(device) else "fp16")
    if precision == "fp16" and device_type == "cpu":
        raise ConfigError(f"{where}: option 'autocast': fp16 needs a CUDA device (fp16 autocast with a gradient "
                          f"scaler); on {device} use 'fp32' or 'bf16'")
    if precision == "bf16" and device_type == "cuda" and not _bf16_supported(device):
        raise ConfigError(f"{where}: option 'autocast': {device} does not support bf16; use 'fp16' or 'auto'")
    layout = merged["channels_last"]
    if layout not in CHANNELS_LAST or not isinstance(layout, (str, bool)):
        raise ConfigError(f"{where}: option 'channels_last' expects one of 'auto', true, false, got {layout!r}")
    if layout is True and architecture not in (None, "cnn"):
        raise ConfigError(f"{where}: option 'channels_last' applies to CNN backbones, not to a {architecture}; "
                          "use 'auto' or false")
    channels_last = layout is True or (layout == "auto" and architecture == "cnn" and device_type == "cuda")
    if not isinstance(merged["compile"], bool):
        raise ConfigError(f"{where}: option 'compile' expects true or false, got {merged['compile']!r}")
    workers = merged["num_workers"]
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise ConfigError(f"{where}: option 'num_workers' expects an integer >= 0, got {workers!r}")
    return Acceleration(device_type=device_type, precision=precision, requested=str(requested),
                        grad_scaler=precision == "fp16", channels_last=channels_last, compile=merged["compile"],
                        num_workers=workers, pin_memory=device_type == "cuda", persistent_workers=workers > 0)


# -- the training loader ----------------------------------------------------------------------------------
class EpochTagged:
    """A dataset whose items are asked for as ``(epoch, index)``: a persistent worker sets its copy's epoch
    before reading, so augmentations follow the main process's ``set_epoch``. Lengths and attributes pass through."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> Any:
        epoch, index = key
        if self.dataset.epoch != epoch:
            self.dataset.set_epoch(epoch)
        return self.dataset[index]


class EpochBatches:
    """The batch sampler's batches with every index tagged by the main process's current epoch of ``dataset``."""

    def __init__(self, sampler: Any, dataset: Any) -> None:
        self.sampler, self.dataset = sampler, dataset

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        epoch = int(self.dataset.epoch)
        for batch in self.sampler:
            yield [(epoch, int(i)) for i in batch]

    def __len__(self) -> int:
        return len(self.sampler)


def accelerated_loader(dataset: Any, sampler: Any, accel: Acceleration | None = None,
                       collate_fn: Callable[[list[Any]], Any] | None = None) -> Any:
    """The training DataLoader of a fine-tune: ``sampler`` gives the batches, ``accel`` the workers, pinned
    memory and persistent workers. Without workers it is the plain loader of ``training_loader`` (same
    generator, same batches); with workers the indices carry the epoch (:class:`EpochTagged`)."""
    import torch

    from plipbench.evaluation.protocols._training import _collate

    accel = accel or Acceleration()
    kwargs = accel.loader_kwargs()
    if accel.num_workers > 0:
        dataset, sampler = EpochTagged(dataset), EpochBatches(sampler, dataset)
    # its own generator: creating an iterator must not draw from (and so depend on) torch's global RNG
    return torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_fn or _collate,
                                       generator=torch.Generator().manual_seed(0), **kwargs)

"""Helpers shared by the protocols: option checking, seeding, training data and a trainable backbone copy.

Determinism: every random choice is derived from ``ctx.seed``. Parameter initialisation runs inside
:func:`seeded` (a forked torch RNG, so the caller's global RNG state is untouched), P x K batches come
from :class:`~plipbench.pretrain.sampler.IdentityBatchSampler` seeded with ``(seed, epoch)``, and the
flip / caption choice of a training sample is drawn from a generator seeded by ``(seed, epoch, index)``,
so a run gives the same batches whatever the number of loader workers.

Distributed runs: under torchrun :func:`fine_tune_loop` (:mod:`plipbench.evaluation.protocols.loop`) is
real DistributedDataParallel, each rank on its shard of every global batch; feature extraction is sharded by
the :class:`FeatureStore`. The probes that train on cached features (linear probes) run the same copy on
every rank.
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from plipbench.data.images import open_rgb
from plipbench.errors import ConfigError, DataError, PlipbenchError
from plipbench.evaluation.protocols.loop import FineTuneRecord, fine_tune_loop  # noqa: F401 (the protocols' import)
from plipbench.evaluation.protocols.options import ProtocolOptions, validate_options

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from plipbench.data.records import PersonRecord
    from plipbench.evaluation.protocols.base import ProtocolContext
    from plipbench.models.backbone import Backbone
    from plipbench.models.metadata import ImageTransform


# -- options ---------------------------------------------------------------------------------
def _where(ctx: ProtocolContext) -> str:
    return f"task {ctx.task.name}, protocol {ctx.protocol.name} ({ctx.task.kind} {ctx.protocol.base})"


def resolve_options(ctx: ProtocolContext, model: type[ProtocolOptions]) -> dict[str, Any]:
    """``ctx.options`` checked against the protocol's options model (:mod:`~plipbench.evaluation.protocols.options`)
    and completed with its defaults, as recorded in the result; a bad option is a one-line ConfigError."""
    return validate_options(model, ctx.options, _where(ctx))


def resolve_metric_options(ctx: ProtocolContext, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """``defaults`` updated with ``ctx.task.metric_options``; unknown keys are rejected."""
    given = dict(ctx.task.metric_options)
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ConfigError(
            f"task {ctx.task.name}: unknown metric option {unknown[0]!r} for a {ctx.task.kind} task; "
            f"known: {', '.join(sorted(defaults))}"
        )
    return {**copy.deepcopy(dict(defaults)), **given}


def option_error(ctx: ProtocolContext, key: str, expected: str, value: Any) -> ConfigError:
    return ConfigError(f"{_where(ctx)}: option {key!r} expects {expected}, got {value!r}")


def check_float(ctx: ProtocolContext, options: dict[str, Any], key: str, minimum: float = 0.0,
                strict: bool = False) -> None:
    value = options[key]
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        value = float(value)
        ok = value > minimum if strict else value >= minimum
    if not ok:
        raise option_error(ctx, key, f"a number {'>' if strict else '>='} {minimum}", options[key])
    options[key] = float(options[key])


def check_bool(ctx: ProtocolContext, options: dict[str, Any], key: str) -> None:
    if not isinstance(options[key], bool):
        raise option_error(ctx, key, "true or false", options[key])


# -- seeding / devices -------------------------------------------------------------------------
@contextlib.contextmanager
def seeded(seed: int, device: str = "cpu") -> Iterator[None]:
    """Run the block with torch's RNG seeded to ``seed``; the caller's RNG state is restored afterwards."""
    import torch

    devices = []
    if str(device).startswith("cuda") and torch.cuda.is_available():
        devices = [torch.device(device).index or 0]
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(int(seed))
        yield


class Stopwatch:
    """Accumulates named wall-clock timings (seconds) for ``ProtocolOutput.timings``."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - started


# -- records ---------------------------------------------------------------------------------
def require_records(ctx: ProtocolContext, records: Sequence[PersonRecord], role: str) -> None:
    if not records:
        raise DataError(None, f"{_where(ctx)}: the {role} split is empty (check the task's splits)")


def require_text(ctx: ProtocolContext) -> None:
    """The clear error for an image-only backbone on a protocol that needs a text encoder."""
    if not ctx.backbone.has_text:
        raise PlipbenchError(f"backbone {ctx.backbone.name} has no text encoder; task {ctx.task.name} needs one")


def caption_pairs(records: Sequence[PersonRecord]) -> tuple[list[str], list[int], list[int]]:
    """Every caption of every record: ``(captions, record index of each caption, pid of each caption)``."""
    captions, owners, pids = [], [], []
    for index, record in enumerate(records):
        for caption in record.captions:
            captions.append(caption)
            owners.append(index)
            pids.append(record.pid)
    return captions, owners, pids


def relabel(pids: Sequence[int]) -> tuple[list[int], int]:
    """Map ids to ``0..n-1`` in order of first appearance (classifier labels)."""
    mapping: dict[int, int] = {}
    labels = [mapping.setdefault(int(p), len(mapping)) for p in pids]
    return labels, len(mapping)


# -- training data -----------------------------------------------------------------------------
class TrainingImages:
    """``torch.utils.data.Dataset`` of training images with horizontal-flip augmentation.

    Item ``i`` is ``(image, caption, label, i)``: the image preprocessed with the backbone's transform
    and mirrored with probability ``flip_probability``; ``caption`` one of the record's captions drawn
    uniformly ("" for records without captions); ``label`` the relabelled identity. Random choices use
    a generator seeded by ``(seed, epoch, i)`` (call :meth:`set_epoch`).

    ``transform`` is the backbone's ``ImageTransform`` (images decoded once into the decoded-image
    cache, :mod:`plipbench.data.decoded`, instead of once per epoch) or any callable on a PIL image.
    """

    def __init__(self, records: Sequence[PersonRecord], transform: ImageTransform | Callable[[Any], torch.Tensor],
                 labels: Sequence[int], *, flip_probability: float = 0.5, seed: int = 0) -> None:
        from plipbench.models.metadata import ImageTransform

        self.records, self.transform, self.labels = list(records), transform, list(labels)
        self.flip_probability, self.seed, self.epoch = flip_probability, int(seed), 0
        self._pixels = None
        if isinstance(transform, ImageTransform):
            from plipbench.data.decoded import decoded_images, transform_resize

            self._pixels = decoded_images(self.records, transform_resize(transform))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.records)

    def _input(self, index: int) -> torch.Tensor:
        """Item ``index``'s image as the model input, before the flip."""
        from PIL import UnidentifiedImageError

        if self._pixels is not None:
            from plipbench.data.decoded import to_model_input

            return to_model_input(self._pixels[index], self.transform.mean, self.transform.std)
        path = self.records[index].image_path
        try:
            with open_rgb(path) as img:
                return self.transform(img.convert("RGB"))
        except (OSError, UnidentifiedImageError) as err:
            raise DataError(path, f"cannot decode image ({err})") from err

    def __getitem__(self, index: int) -> tuple[torch.Tensor, str, int, int]:
        import numpy as np

        record = self.records[index]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        tensor = self._input(index)
        if rng.random() < self.flip_probability:
            tensor = tensor.flip(-1)
        caption = record.captions[int(rng.integers(len(record.captions)))] if record.captions else ""
        return tensor, caption, self.labels[index], index


def _collate(batch: list[tuple[Any, str, int, int]]) -> tuple[torch.Tensor, list[str], torch.Tensor]:
    import torch

    images, captions, labels, _ = zip(*batch, strict=True)
    return torch.stack(images), list(captions), torch.tensor(labels, dtype=torch.long)


def pk_sampler(pids: Sequence[int], identities_per_batch: int, images_per_identity: int, seed: int) -> tuple[Any, int]:
    """An :class:`IdentityBatchSampler`; P is lowered to fit at least one batch (few-shot subsets).

    Returns ``(sampler, effective P)``.
    """
    from plipbench.pretrain.sampler import IdentityBatchSampler

    counts: dict[int, int] = {}
    for p in pids:
        counts[int(p)] = counts.get(int(p), 0) + 1
    if not counts:
        raise DataError(None, "no training samples")
    groups = sum(max(1, -(-n // images_per_identity)) for n in counts.values())
    p_eff = max(1, min(identities_per_batch, groups))
    return IdentityBatchSampler(pids, identities_per_batch=p_eff, images_per_identity=images_per_identity,
                                seed=seed), p_eff


def sync_batchnorm(ctx: ProtocolContext, options: Mapping[str, Any], *modules: Any) -> tuple[Any, ...]:
    """The ``sync_bn`` option: ``modules`` with every BatchNorm made a :class:`torch.nn.SyncBatchNorm`.

    Off (the default): the modules unchanged. On: torch's SyncBatchNorm runs on CUDA (nccl) only, so on another
    device the option is refused with a :class:`ConfigError` (also in one process, so that a config that cannot
    run under torchrun fails at once); in one CUDA process statistics are already those of the whole batch and
    the modules are left unchanged. A module that is itself a BatchNorm is replaced (use the returned ones);
    nested ones are replaced in place, sharing the parameters and running statistics.
    """
    if not options["sync_bn"]:
        return modules
    import torch

    if not str(ctx.device).startswith("cuda"):
        raise option_error(ctx, "sync_bn", f"false on device {ctx.device} (torch.nn.SyncBatchNorm runs on CUDA "
                                           "with nccl only, not on CPU or gloo)", True)
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return modules
    return tuple(torch.nn.SyncBatchNorm.convert_sync_batchnorm(m) for m in modules)


def training_loader(dataset: TrainingImages, sampler: Any, num_workers: int = 0) -> Any:
    import torch

    # its own generator: creating an iterator must not draw from (and so depend on) torch's global RNG
    return torch.utils.data.DataLoader(dataset, batch_sampler=sampler, num_workers=num_workers,
                                       collate_fn=_collate, generator=torch.Generator().manual_seed(0))


def training_copy(backbone: Backbone, device: str) -> Backbone:
    """A deep copy of ``backbone`` with every parameter trainable; ``backbone`` itself is never modified."""
    trainable = copy.deepcopy(backbone)
    trainable._fingerprint = None
    trainable.to(device)
    for parameter in trainable.module.parameters():
        parameter.requires_grad_(True)
    return trainable


def warmup_scheduler(optimizer: Any, warmup_steps: int) -> Any:
    """Linear warm-up from ``1/(warmup_steps+1)`` of the learning rate to all of it, then constant."""
    import torch

    def factor(step: int) -> float:
        return min(1.0, (step + 1) / (warmup_steps + 1)) if warmup_steps > 0 else 1.0

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def state_copy(module: Any) -> dict[str, Any]:
    """A detached CPU copy of ``module.state_dict()`` (for keeping the selected epoch)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}


def l2_normalize(features: torch.Tensor) -> torch.Tensor:
    import torch.nn.functional as F

    return F.normalize(features.float(), dim=1)

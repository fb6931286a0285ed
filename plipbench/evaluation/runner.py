"""The task runner behind ``plipbench eval`` and :func:`plipbench.evaluate`.

For each (task, protocol): resolve the datasets (synthetic twins are generated into the cache on
first use), build the split roles, run the protocol with a shared :class:`FeatureStore`, and write
one result JSON (atomically, rank 0 only). A result already present is read back instead of
recomputed when the same backbone (weights fingerprint) made it on the same task spec, unless
``overwrite``; otherwise it is recomputed and replaced. Features are cached across tasks, protocols
and runs.

A real task whose data is absent is *skipped* in a suite, with a one-line reason; asked for by
name it is an error (exit 2 from the CLI).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plipbench.errors import ConfigError, DataError, PlipbenchError
from plipbench.evaluation.tasks import DatasetRef, ProtocolSpec, TaskRegistry, TaskSpec, resolve_dataset

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from plipbench.data.records import PersonDataset, PersonRecord
    from plipbench.evaluation.protocols.base import TaskData
    from plipbench.models.backbone import Backbone
    from plipbench.models.identity import BackboneIdentity

DEFAULT_OUT = Path("results") / "eval"


def _still_valid(result: Any, backbone: Backbone | BackboneIdentity, task_hash: str, data: TaskData) -> bool:
    """A stored result is reused only if the same backbone (weights fingerprint, and the code that computes its
    features) made it on the same task spec and the same data (the target's and the training source's dataset
    fingerprints).

    Anything else (a re-trained checkpoint under the same name, an edited task file, deleted or replaced images,
    ``PLIPBENCH_DATA`` pointing at another copy) is recomputed and the file is replaced, so a results folder never
    mixes old and new numbers silently.
    """
    stored = (result.provenance.backbone or {}).get("fingerprint")
    code = (result.provenance.backbone or {}).get("code_fingerprint")
    source = (result.provenance.protocol_options or {}).get("source_dataset_fingerprint")
    return (stored == backbone.fingerprint and code == backbone.code_fingerprint and result.provenance.task_spec_hash == task_hash
            and result.provenance.dataset_fingerprint == data.target_fingerprint
            and source == data.source_fingerprint)


def is_stochastic(protocol: ProtocolSpec) -> bool:
    """Whether a protocol's number depends on a seed: everything that trains (probes, fine-tunes) or draws a
    few-shot subset; a zero-shot protocol (or person search's ``gt-boxes``) on all the data is deterministic given
    the weights."""
    from plipbench.evaluation.tasks import DETERMINISTIC_PROTOCOLS

    return protocol.base not in DETERMINISTIC_PROTOCOLS or protocol.train_fraction < 1.0


def resolve_seeds(seed: int, seeds: int | None) -> list[int]:
    """``--seed S --seeds N`` -> ``[S, ..., S+N-1]``; refuses N < 1."""
    if seeds is None:
        return [int(seed)]
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ConfigError(f"--seeds must be a whole number >= 1, got {seeds!r}")
    return [int(seed) + i for i in range(seeds)]


def _result_lock(path: Path, world_size: int) -> Any:
    """A file lock per result (under the cache), so a second process on the same output waits, then reuses.

    Under torchrun every rank takes part in computing a result, so ranks do not lock (one job owns its folder).
    """
    import contextlib

    if world_size > 1:
        return contextlib.nullcontext()
    from filelock import FileLock

    from plipbench.environment import cache_root

    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:24]
    lock_dir = cache_root() / "locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    return FileLock(str(lock_dir / f"result-{digest}.lock"))


class BackboneHandle:
    """The backbone of one :func:`evaluate` call, built only when a result has to be computed.

    For a spec whose identity (name, text encoder, weights and code fingerprints) is remembered and unchanged
    (:mod:`plipbench.models.identity`), the reuse checks run on the remembered identity and a rerun whose results
    are all valid never builds the backbone. Once built, the real identity must equal the remembered one.
    """

    def __init__(self, model: str | Backbone, *, device: str, store: Any) -> None:
        from plipbench.models import identity as memo

        self._spec = model if isinstance(model, str) else None
        self._device = device
        self._make_store = store
        self._backbone: Backbone | None = None if isinstance(model, str) else model
        self._store: Any = None
        recalled = memo.recall(model, device) if isinstance(model, str) else None
        if recalled is not None:
            self.identity = recalled
        else:
            self.identity = self._build()

    def _build(self) -> BackboneIdentity:
        from plipbench.models import create_backbone
        from plipbench.models import identity as memo

        if self._spec is None:
            return memo.BackboneIdentity.of(self._backbone)
        self._backbone = create_backbone(self._spec, device=self._device)
        return memo.remember(self._spec, self._device, self._backbone)

    @property
    def built(self) -> bool:
        return self._backbone is not None

    def get(self) -> Backbone:
        if self._backbone is None:
            real = self._build()
            if real != self.identity:
                raise PlipbenchError(
                    f"backbone {self._spec}: its identity changed while this run was using the remembered one "
                    f"(remembered {self.identity}, built {real}); rerun to recompute with the new one"
                )
        return self._backbone

    def store(self) -> Any:
        if self._store is None:
            self._store = self._make_store(self.get())
        return self._store

    def feature_stats(self) -> dict[str, Any]:
        from plipbench.evaluation.features import empty_stats

        return dict(self._store.stats) if self._store is not None else empty_stats()


@dataclass
class RunRecord:
    backbone: str
    task: str
    protocol: str
    status: str  # "done" | "cached" | "skipped"
    main_score: str | None = None
    score: float | None = None
    scores: dict[str, float] | None = None
    path: str | None = None
    reason: str | None = None
    seconds: float = 0.0
    seed: int | None = None


def dataset_fingerprint(dataset: PersonDataset) -> str:
    """sha256 over every record (path relative to the root, pid, camera, split, captions, labels)
    and the reader options; for a synthetic copy, also its manifest's generation hash."""
    import json

    h = hashlib.sha256(f"{dataset.layout}|{json.dumps(dataset.options, sort_keys=True, default=str)}".encode())
    manifest = Path(dataset.root) / "plipbench_synth_manifest.json"
    if manifest.is_file():
        h.update(json.loads(manifest.read_text()).get("config_hash", "").encode())
    root = Path(dataset.root)
    if not hasattr(dataset, "records"):  # person search: every scene's boxes and identities, and the queries
        _hash_scenes(h, dataset, root)
        return h.hexdigest()
    for r in dataset.records:
        try:
            rel = Path(r.image_path).relative_to(root).as_posix()
        except ValueError:
            rel = Path(r.image_path).as_posix()
        line = f"{rel}|{r.pid}|{r.camid}|{r.split}|{'|'.join(r.captions)}|{r.attributes}"
        if r.mask_path is not None:  # parsing: the label map too (other records hash as before)
            try:
                line += "|" + Path(r.mask_path).relative_to(root).as_posix()
            except ValueError:
                line += "|" + Path(r.mask_path).as_posix()
        h.update(f"{line}\n".encode())
    return h.hexdigest()


def _relative(path: Any, root: Path) -> str:
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return Path(path).as_posix()


def _hash_scenes(h: Any, dataset: Any, root: Path) -> None:
    import numpy as np

    for split, scenes in (("train", dataset.train), ("gallery", dataset.gallery)):
        for s in scenes:
            h.update(f"{split}|{_relative(s.image_path, root)}|{s.camid}|".encode())
            h.update(np.ascontiguousarray(s.boxes, dtype=np.float64).tobytes())
            h.update(np.ascontiguousarray(s.pids, dtype=np.int64).tobytes() + b"\n")
    for q in dataset.queries:
        h.update(f"query|{_relative(q.image_path, root)}|{q.pid}|{q.camid}|{q.gallery_index}|".encode())
        h.update(np.ascontiguousarray(q.box, dtype=np.float64).tobytes() + b"\n")
    if dataset.protocol is not None:
        for images, targets in zip(dataset.protocol.images, dataset.protocol.targets, strict=True):
            h.update(np.ascontiguousarray(images, dtype=np.int64).tobytes())
            for g in sorted(targets):
                h.update(f"|{g}|".encode() + np.ascontiguousarray(targets[g], dtype=np.float64).tobytes())
            h.update(b"\n")


def _subset_identities(records: list[PersonRecord], fraction: float, seed: int) -> list[PersonRecord]:
    """Few-shot: keep a seeded ``fraction`` of the training identities (at least 2), all their images."""
    if fraction >= 1.0:
        return records
    import numpy as np

    pids = sorted({r.pid for r in records})
    keep_n = max(2, int(round(fraction * len(pids))))
    keep = set(np.random.default_rng([seed, 7]).choice(pids, size=min(keep_n, len(pids)), replace=False).tolist())
    return [r for r in records if r.pid in keep]


class DatasetCache:
    """Read each dataset once per run (tasks and DG pairs share datasets)."""

    def __init__(self, progress: bool) -> None:
        self.progress = progress
        self._data: dict[str, tuple[PersonDataset, str]] = {}

    def get(self, ref: DatasetRef, ctx: Any) -> tuple[PersonDataset, str]:
        from plipbench.data.readers import read_dataset
        from plipbench.distributed import barrier

        key = ref.model_dump_json()
        if key not in self._data:
            if ctx.is_main:
                root = resolve_dataset(ref, generate=True, progress=self.progress)
            barrier(ctx)
            root = resolve_dataset(ref, generate=False)
            dataset = read_dataset(ref.layout, root, **ref.options)
            self._data[key] = (dataset, dataset_fingerprint(dataset))
        return self._data[key]


def build_task_data(task: TaskSpec, protocol: ProtocolSpec, datasets: DatasetCache, ctx: Any, seed: int) -> TaskData:
    from plipbench.evaluation.protocols.base import TaskData

    target, target_fp = datasets.get(task.dataset, ctx)
    if task.kind == "person-search":  # scenes, not person records: the protocol reads data.target itself
        if not target.gallery or not target.queries:
            raise DataError(target.root, f"task {task.name}: the {'gallery' if not target.gallery else 'query'} "
                                         f"split is empty")
        return TaskData(target=target, source=target, train_records=[], val_records=[], test_records=[],
                        query_records=[], gallery_records=[], attribute_names=None, target_fingerprint=target_fp,
                        source_fingerprint=target_fp)
    source, source_fp = datasets.get(task.train_dataset, ctx) if task.train_dataset else (target, target_fp)
    s = task.splits
    train = _subset_identities(source.split(s.train), protocol.train_fraction, seed)
    val = source.split(s.val) if s.val else []
    data = TaskData(
        target=target, source=source, train_records=train, val_records=val,
        test_records=target.split(s.test) if task.kind != "image-reid" else [],
        query_records=target.split(s.query) if task.kind == "image-reid" else [],
        gallery_records=target.split(s.gallery) if task.kind == "image-reid" else [],
        attribute_names=target.attribute_names, target_fingerprint=target_fp, source_fingerprint=source_fp,
    )  # fmt: skip
    needed = {"image-reid": ("query_records", "gallery_records"), "text-reid": ("test_records",),
              "attributes": ("test_records",), "parsing": ("train_records", "test_records")}[task.kind]
    for role in needed:
        if not getattr(data, role):
            raise DataError(target.root, f"task {task.name}: the {role.split('_')[0]} split is empty "
                                         f"(splits present: {sorted(target.splits())})")
    return data


def _hardware() -> dict[str, Any]:
    from plipbench.environment import hardware_info

    return hardware_info()


def evaluate(
    model: str | Backbone,
    tasks: str | list[str] | None = None,
    *,
    suite: str | None = None,
    protocols: list[str] | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    name: str | None = None,
    options: dict[str, Any] | None = None,
    seed: int = 0,
    seeds: int | None = None,
    backbone_seed: int | None = None,
    suite_tag: str | None = None,
    device: str = "cpu",
    batch_size: int = 64,
    num_workers: int = 0,
    cache_dir: str | Path | None = None,
    registry: TaskRegistry | None = None,
    dataset_cache: DatasetCache | None = None,
    backbone_info: dict[str, Any] | None = None,
    progress: bool = True,
    resume: bool = False,
) -> pd.DataFrame:
    """Evaluate ``model`` (a backbone spec or a Backbone) on tasks or a suite; returns one row per
    (task, protocol) with status ``done``, ``cached`` or ``skipped`` and the scores (fractions).

    Protocol options: the suite's ``protocol_options`` for the base protocol, then the task's, then
    ``options`` (later wins). ``backbone_info`` is merged into the recorded backbone metadata (for
    example ``pretraining_seconds``).

    Seeds: every protocol that trains runs once per seed ``seed, ..., seed + seeds - 1`` (one result file
    each); a zero-shot protocol runs once and its result has ``seed=None`` (deterministic). When the backbone
    itself was trained with a seed (``backbone_seed``; ``plipbench bench`` pre-trains model s with seed s),
    every protocol runs once with that seed and every result carries it.
    ``suite_tag`` records which ``plipbench bench`` suite produced the result (``details["suite"]``).
    ``dataset_cache`` (a :class:`DatasetCache`) shares the datasets read, and their fingerprints, between calls
    that run back to back on unchanged data (``plipbench bench`` evaluates every backbone with one).

    Fine-tunes keep a checkpoint after every epoch (:mod:`plipbench.evaluation.resume`), removed once the
    result is written. ``resume`` continues a killed fine-tune from its last checkpoint, exactly, if it was
    made with the same spec (else a :class:`ConfigError` names the differing keys); without it a stale
    checkpoint is ignored and overwritten.
    """
    import pandas as pd

    from plipbench.distributed import init_distributed, rank_device
    from plipbench.environment import cache_root, git_commit
    from plipbench.evaluation.features import FeatureStore

    if (tasks is None) == (suite is None):
        raise ConfigError("give either tasks or a suite")
    seed_list = resolve_seeds(seed, seeds)
    registry = registry or TaskRegistry()
    suite_options: dict[str, dict[str, Any]] = {}
    if suite is not None:
        runs = registry.suite_runs(suite)
        suite_options = registry.suite(suite).protocol_options
        skip_missing = True
    else:
        names = [t.strip() for t in (tasks.split(",") if isinstance(tasks, str) else tasks) if t.strip()]
        runs = [(registry.get(n), [p.name for p in registry.get(n).protocol_specs()]) for n in names]
        skip_missing = False
    if protocols:
        runs = [(t, [p for p in ps if p in protocols]) for t, ps in runs]
        if not any(ps for _, ps in runs):
            raise ConfigError(f"no selected task has protocol(s) {protocols}")
    _check_options(runs, suite_options, options)

    ctx = init_distributed()
    device = rank_device(device)
    backbone = BackboneHandle(
        model, device=device, store=lambda b: FeatureStore(
            b, cache_dir=Path(cache_dir) if cache_dir else cache_root() / "features",
            batch_size=batch_size, num_workers=num_workers, progress=progress,
        ),
    )  # fmt: skip
    display = name or backbone.identity.name
    out_dir = Path(out) if out is not None else DEFAULT_OUT
    datasets = dataset_cache if dataset_cache is not None else DatasetCache(progress and ctx.is_main)
    hardware = _hardware()
    commit = git_commit()
    rows: list[RunRecord] = []
    for task, protocol_names in runs:
        for pname in protocol_names:
            protocol = task.protocol(pname)
            if backbone_seed is not None:
                plan: list[tuple[int, int | None]] = [(backbone_seed, backbone_seed)]
            elif is_stochastic(protocol):
                plan = [(s, s) for s in seed_list]
            else:
                plan = [(seed_list[0], None)]  # deterministic: one run, no seed
            for run_seed, tag in plan:
                row = _run_one(task, protocol, pname, run_seed, tag, backbone_seed, display=display,
                               backbone=backbone, datasets=datasets, ctx=ctx, out_dir=out_dir,
                               overwrite=overwrite, skip_missing=skip_missing, suite_options=suite_options,
                               options=options, device=device, progress=progress, hardware=hardware, commit=commit,
                               backbone_info=backbone_info, suite_tag=suite_tag, resume=resume)
                rows.append(row)
                if row.status == "skipped":
                    break
    frame = pd.DataFrame([r.__dict__ for r in rows], columns=list(RunRecord.__dataclass_fields__))
    frame.attrs["feature_cache"] = backbone.feature_stats()
    return frame


def _merged_options(task: TaskSpec, protocol: ProtocolSpec, suite_options: dict[str, Any],
                    options: dict[str, Any] | None) -> dict[str, Any]:
    """The suite's options for the base protocol, then the task's, then the caller's (``--option``)."""
    return {**suite_options.get(protocol.base, {}), **protocol.options, **(options or {})}


def _check_options(runs: list[tuple[TaskSpec, list[str]]], suite_options: dict[str, Any],
                   options: dict[str, Any] | None) -> None:
    """Every run's options checked against its protocol's model before any data or backbone is loaded."""
    from plipbench.evaluation.protocols import protocol_entry

    for task, names in runs:
        for pname in names:
            protocol = task.protocol(pname)
            protocol_entry(task.kind, protocol.base).validate(
                _merged_options(task, protocol, suite_options, options),
                f"task {task.name}, protocol {pname} ({task.kind} {protocol.base})")


def _run_one(task: TaskSpec, protocol: ProtocolSpec, pname: str, seed: int, tag: int | None,
             backbone_seed: int | None, *, display: str, backbone: BackboneHandle, datasets: DatasetCache,
             ctx: Any, out_dir: Path, overwrite: bool, skip_missing: bool, suite_options: dict[str, Any],
             options: dict[str, Any] | None, device: str, progress: bool, hardware: dict[str, Any],
             commit: str | None, backbone_info: dict[str, Any] | None, suite_tag: str | None,
             resume: bool = False) -> RunRecord:
    """One (task, protocol, seed): reuse the stored result when still valid, else compute and save it."""
    from plipbench import __version__
    from plipbench.evaluation.protocols import protocol_entry
    from plipbench.evaluation.protocols.base import ProtocolContext
    from plipbench.evaluation.results import Provenance, TaskResult, encode_array
    from plipbench.evaluation.resume import FineTuneCheckpoint, checkpoint_folder, run_spec

    probe = TaskResult.model_construct(backbone=display, task=task.name, protocol=pname, seed=tag)
    path = out_dir / probe.file_name()
    started = time.perf_counter()
    try:
        data = build_task_data(task, protocol, datasets, ctx, seed)
    except DataError as err:
        if skip_missing and task.dataset.root is not None:
            return RunRecord(display, task.name, pname, "skipped", reason=str(err), seed=tag)
        raise
    if protocol_entry(task.kind, protocol.base).needs_text and not backbone.identity.has_text:
        reason = f"backbone {display} has no text encoder; task {task.name} ({pname}) needs one"
        if skip_missing:
            return RunRecord(display, task.name, pname, "skipped", reason=reason, seed=tag)
        raise PlipbenchError(reason)
    with _result_lock(path, ctx.world_size):
        if path.is_file() and not overwrite:
            try:
                done = TaskResult.load(path)
            except DataError:
                done = None  # unreadable or foreign: recomputed and replaced below
            if done is not None and _still_valid(done, backbone.identity, task.spec_hash(), data):
                return RunRecord(display, task.name, pname, "cached", done.main_score,
                                 done.scores.get(done.main_score), dict(done.scores), str(path), seed=tag)
        store = backbone.store()
        backbone = backbone.get()
        if task.kind == "parsing":
            from plipbench.models.dense import dense_support

            why = dense_support(backbone)
            if why is not None:
                reason = f"backbone {display} has no dense feature maps ({why}); task {task.name} needs them"
                if skip_missing:
                    return RunRecord(display, task.name, pname, "skipped", reason=reason, seed=tag)
                raise PlipbenchError(reason)
        before = dict(store.stats)
        merged = _merged_options(task, protocol, suite_options, options)
        checkpoint = FineTuneCheckpoint(checkpoint_folder(path), run_spec(
            backbone=display, backbone_fingerprint=backbone.fingerprint, code_fingerprint=backbone.code_fingerprint,
            task=task.name, task_spec_hash=task.spec_hash(), protocol=pname, base=protocol.base,
            train_fraction=protocol.train_fraction, options=merged, seed=seed,
            dataset_fingerprint=data.target_fingerprint, source_dataset_fingerprint=data.source_fingerprint,
            device=str(device).partition(":")[0], world_size=ctx.world_size,  # kind: ranks differ in GPU index
        ), resume=resume, writer=ctx.is_main)  # fmt: skip
        pctx = ProtocolContext(
            backbone=backbone, task=task, protocol=protocol, data=data, features=store, options=merged,
            seed=seed, device=device, progress=progress and ctx.is_main, is_main=ctx.is_main, checkpoint=checkpoint,
        )  # fmt: skip
        output = protocol_entry(task.kind, protocol.base).load()(pctx)
        total = time.perf_counter() - started
        feature_seconds = store.stats["seconds"] - before["seconds"]
        encoded = store.stats["images_encoded"] - before["images_encoded"]
        encode_seconds = store.stats["encode_seconds"] - before["encode_seconds"]
        timings = {"features_s": round(feature_seconds, 3), "total_s": round(total, 3),
                   **{k: round(v, 3) for k, v in output.timings.items()}}
        if encoded and encode_seconds > 0:
            timings["images_per_second"] = round(encoded * ctx.world_size / encode_seconds, 1)
        datasets_seen = [task.dataset.display_name()] + ([task.train_dataset.display_name()] if task.train_dataset else [])
        seeds_used = {"protocol": int(seed)} if tag is not None else {}
        if backbone_seed is not None:
            seeds_used["pretraining"] = int(backbone_seed)
        result = TaskResult(
            backbone=display, seed=tag, task=task.name, task_family=task.family, protocol=pname,
            dataset=task.dataset.display_name(), main_score=task.main_score,
            scores={k: float(v) for k, v in output.scores.items()}, zero_shot=output.zero_shot,
            saw_task_training_data=not backbone.metadata.is_zero_shot_on(datasets_seen),
            per_query={},
            details={**output.details, "paper_task": task.paper_task, "train_fraction": protocol.train_fraction,
                     "num_train_records": len(data.train_records)} | ({"suite": suite_tag} if suite_tag else {})
            | ({"resumed_after_epoch": checkpoint.resumed_after} if checkpoint.resumed_after else {}),
            provenance=Provenance(
                plipbench_version=__version__, git_commit=commit, task_spec_hash=task.spec_hash(),
                dataset_fingerprint=data.target_fingerprint,
                backbone=backbone.metadata.model_dump(mode="json") | {"fingerprint": backbone.fingerprint,
                                                                      "code_fingerprint": backbone.code_fingerprint}
                | {"parameter_count": backbone.metadata.num_parameters} | (backbone_info or {}),
                checkpoint_sha256=backbone.metadata.checkpoint_sha256,
                protocol_options=output.options | {"base": protocol.base, "train_fraction": protocol.train_fraction,
                                                   "source_dataset_fingerprint": data.source_fingerprint},
                metric_protocol=output.metric_protocol, seeds=seeds_used, selection_split=output.selection_split,
                timings=timings, hardware=hardware | {"world_size": ctx.world_size},
                created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            ),
        )  # fmt: skip
        result.per_query = {k: encode_array(v) for k, v in output.per_query.items()}
        if task.main_score not in result.scores:
            raise PlipbenchError(f"task {task.name}: protocol {pname} did not report the main score {task.main_score}")
        if ctx.is_main:
            result.save(out_dir)
            checkpoint.remove()  # the result is written: nothing left to resume
    return RunRecord(display, task.name, pname, "done", task.main_score, result.scores[task.main_score],
                     dict(result.scores), str(path), seconds=round(total, 2), seed=tag)

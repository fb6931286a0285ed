"""Task specs: one YAML per task under ``tasks/``, validated by a typed schema (unknown keys rejected).

A task is data; a task *kind* is code (``text-reid``, ``image-reid``, ``attributes``, ``parsing``,
``person-search``). A task names
the dataset it evaluates on (a reader layout and a root, or a synthetic preset generated on first
use into the cache), optionally a different dataset to train on (domain generalization), the
protocols it runs and their options, the metric options, and its main score.

Dataset roots may use environment variables with defaults, ``${PLIPBENCH_DATA:-~/datasets}/...``:
a real task whose data is absent is *skipped* in a suite with a one-line reason saying where to
put the data; ``plipbench eval --task`` on it alone exits 2 with that reason.

A task file may start from another task: ``extends: <task name>`` takes that task's spec (itself
resolved, recursively) and deep-merges this file's keys onto it: mappings merge key by key, lists and
scalars replace (a task's ``protocols`` list is always restated whole), ``null`` is a value like any
other (``splits: {val: null}`` means "no validation split"), and the tag ``!delete`` removes an
inherited key (in block style, ``flip: !delete``: in a flow mapping YAML reads a following comma as
part of the tag). The synthetic twins use it to state only what differs from their real task. Resolution
happens on the raw YAML trees, before validation, so the resolved spec is a plain task spec: its hash,
the result cache and ``tasks show`` see exactly what a file written in full would give.

Suites (``tasks/suites/*.yaml``) list tasks, optionally restricting each to some protocols.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from plipbench.errors import ConfigError, DataError, validate_model, yaml_error_line
from plipbench.evaluation.protocols.registry import bases, deterministic_bases, protocol_entry

TaskKind = Literal["text-reid", "image-reid", "attributes", "parsing", "person-search"]
TaskFamily = Literal["text-reid", "image-reid", "attributes", "domain-generalization", "parsing", "person-search"]

# base protocols that train nothing and use all the data: one deterministic run, no seed (from the registry)
DETERMINISTIC_PROTOCOLS = deterministic_bases()
TASKS_ENV = "PLIPBENCH_TASKS"
EXTENDS_KEY = "extends"
DELETE_TAG = "!delete"
_VAR = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


def expand_path(text: str) -> Path:
    """``${VAR:-default}`` / ``$VAR`` / ``~`` expansion; an unset variable without default is an error."""

    def sub(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        value = os.environ.get(name)
        if value is None:
            if default is None:
                raise ConfigError(f"{text!r}: environment variable {name} is not set and has no default")
            return default
        return value

    return Path(os.path.expanduser(os.path.expandvars(_VAR.sub(sub, text)))).expanduser()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SyntheticSource(_Strict):
    """A synthetic twin: generated with ``plipbench.data.synth`` into the cache on first use."""

    preset: str
    layout: str | None = None
    identities: int | None = Field(None, ge=1)
    images_per_id: int | None = Field(None, ge=1)
    seed: int = 0


class DatasetRef(_Strict):
    layout: str
    root: str | None = Field(None, description="path; may use ${PLIPBENCH_DATA:-~/datasets}")
    synthetic: SyntheticSource | None = None
    options: dict[str, Any] = Field(default_factory=dict, description="reader options (e.g. msmt17_train_with_val)")
    name: str | None = Field(None, description="dataset name used for zero-shot bookkeeping, e.g. CUHK-PEDES")

    @model_validator(mode="after")
    def _one_source(self) -> DatasetRef:
        if (self.root is None) == (self.synthetic is None):
            raise ValueError("a dataset needs exactly one of root (real data) or synthetic (a generator preset)")
        return self

    def display_name(self) -> str:
        if self.name:
            return self.name
        return self.synthetic.preset if self.synthetic else self.layout


class ProtocolSpec(_Strict):
    """One protocol run of the task: a base protocol of the kind, its options, and an optional identity fraction."""

    name: str
    base: str
    options: dict[str, Any] = Field(default_factory=dict)
    train_fraction: float = Field(1.0, gt=0.0, le=1.0, description="few-shot: share of training identities used")


class SplitNames(_Strict):
    """Which split of the dataset plays which role (names as the reader returns them)."""

    train: str = "train"
    val: str | None = "val"
    test: str = "test"
    query: str = "query"
    gallery: str = "gallery"


# The metric options each kind's metric accepts and the scores it reports (the protocols' *_METRIC_DEFAULTS
# and score keys; tests/evaluation/test_tasks.py keeps the two in step). Only TaskSpec's validator uses them.
_METRIC_OPTIONS: dict[str, frozenset[str]] = {
    "text-reid": frozenset({"ks"}),
    "image-reid": frozenset({"metric", "ap", "max_rank"}),
    "attributes": frozenset({"threshold", "convention", "threshold_rule"}),
    "parsing": frozenset({"ignore_index", "flip"}),
    "person-search": frozenset({"det_thresh", "ignore_cam_id", "cbgm"}),
}


def _reported_scores(kind: str, metric_options: dict[str, Any]) -> set[str] | None:
    """The score keys a task of ``kind`` reports; None when an option is malformed (the protocol says how)."""
    if kind == "attributes":
        return {"mA", "Acc", "Prec", "Rec", "F1"}
    if kind == "parsing":
        return {"mIoU", "pixel_accuracy", "mean_accuracy"}
    if kind == "person-search":
        return {"mAP", "R@1", "R@5", "R@10"}
    if kind == "image-reid":
        max_rank = metric_options.get("max_rank", 50)
        if isinstance(max_rank, bool) or not isinstance(max_rank, int):
            return None
        return {f"R@{k}" for k in (1, 5, 10) if k <= max_rank} | {"mAP", "mINP"}
    ks = metric_options.get("ks", [1, 5, 10])
    ks = [ks] if isinstance(ks, int) else ks
    if not isinstance(ks, list) or not all(isinstance(k, int) and not isinstance(k, bool) for k in ks):
        return None
    t2i = {f"R@{k}" for k in ks} | {"mAP", "mINP"}
    return t2i | {f"i2t_{s}" for s in t2i}


class TaskSpec(_Strict):
    name: str
    kind: TaskKind
    family: TaskFamily
    description: str = ""
    dataset: DatasetRef = Field(description="the dataset evaluated on (the target)")
    train_dataset: DatasetRef | None = Field(None, description="a different source dataset to train on (DG)")
    splits: SplitNames = Field(default_factory=SplitNames)
    protocols: list[ProtocolSpec | str]
    metric_options: dict[str, Any] = Field(default_factory=dict)
    main_score: str
    citation: str = ""
    paper_task: str | None = None
    synthetic: bool = False

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", value):
            raise ValueError(f"task name {value!r} must be lower-case letters, digits, '.', '_' or '-'")
        return value

    @model_validator(mode="after")
    def _protocols(self) -> TaskSpec:
        allowed = bases(self.kind)
        resolved: list[ProtocolSpec] = []
        for entry in self.protocols:
            spec = ProtocolSpec(name=entry, base=entry) if isinstance(entry, str) else entry
            if spec.base not in allowed:
                raise ValueError(f"protocol {spec.name!r}: base {spec.base!r} is not one of {allowed} for {self.kind}")
            # the task's own options are checked when it loads (suite and command-line ones when it runs)
            try:
                protocol_entry(self.kind, spec.base).validate(
                    spec.options, f"task {self.name}, protocol {spec.name} ({self.kind} {spec.base})")
            except ConfigError as err:  # a ValueError here, so that the error names the task file
                raise ValueError(str(err)) from None
            resolved.append(spec)
        names = [p.name for p in resolved]
        if len(set(names)) != len(names):
            raise ValueError(f"protocol names must be unique, got {names}")
        if self.family == "domain-generalization" and self.train_dataset is None:
            raise ValueError("a domain-generalization task needs train_dataset (the source)")
        self.protocols = resolved
        return self

    @model_validator(mode="after")
    def _metric_options_and_main_score(self) -> TaskSpec:
        """Refuse an unknown metric option or a main score the kind's metric does not report when the
        registry loads (``tasks list`` / ``tasks show``), not after the model has loaded."""
        known = _METRIC_OPTIONS[self.kind]
        unknown = sorted(set(self.metric_options) - known)
        if unknown:
            raise ValueError(f"unknown metric option {unknown[0]!r} for a {self.kind} task; known: {', '.join(sorted(known))}")
        scores = _reported_scores(self.kind, self.metric_options)
        if scores is not None and self.main_score not in scores:
            raise ValueError(f"main_score {self.main_score!r} is not a score of a {self.kind} task with these metric "
                             f"options; one of: {', '.join(sorted(scores))}")
        return self

    def protocol(self, name: str) -> ProtocolSpec:
        for p in self.protocols:
            assert isinstance(p, ProtocolSpec)
            if p.name == name:
                return p
        raise ConfigError(f"task {self.name} has no protocol {name!r}; it has {[p.name for p in self.protocols]}")

    def protocol_specs(self) -> list[ProtocolSpec]:
        return [p for p in self.protocols if isinstance(p, ProtocolSpec)]

    def spec_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()


class SuiteEntry(_Strict):
    task: str
    protocols: list[str] | None = None


class SuiteBackbone(_Strict):
    """A backbone that ``plipbench bench`` puts on the suite's leaderboard.

    Either ``pretrain`` (a named pre-training config, plus ``overrides``; pre-trained once and cached by
    config hash; ``max_steps: 0`` keeps the random initialisation, with the same tokenizer) or ``spec``
    (any backbone spec, e.g. ``random:plip-mini`` or ``plip:/path``).
    """

    name: str
    pretrain: str | None = None
    overrides: list[str] = Field(default_factory=list)
    max_steps: int | None = Field(None, ge=0)
    spec: str | None = None
    description: str = ""

    @model_validator(mode="after")
    def _one(self) -> SuiteBackbone:
        if (self.pretrain is None) == (self.spec is None):
            raise ValueError(f"backbone {self.name!r} needs exactly one of pretrain or spec")
        return self


class SuiteSpec(_Strict):
    name: str
    description: str = ""
    tasks: list[SuiteEntry | str]
    backbones: list[SuiteBackbone] = Field(default_factory=list, description="what `plipbench bench` compares")
    include_baselines: bool = Field(True, description="add every baselines/*.yaml whose weights are present")
    protocol_options: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="base protocol -> options applied to every task of the suite"
    )
    seeds: int = Field(1, ge=1, description="training seeds 0..seeds-1 of every trained artefact (`--seeds` overrides)")
    check: dict[str, float] = Field(
        default_factory=dict, description="statistics of `bench --check` (alpha, sd_floor; see "
        "plipbench.leaderboard.reproduction)"
    )

    @field_validator("check")
    @classmethod
    def _check_rule(cls, value: dict[str, float]) -> dict[str, float]:
        from plipbench.leaderboard.reproduction import CheckRule

        CheckRule(**value)  # unknown keys and out-of-range values are refused here, when the suite loads
        return value

    def entries(self) -> list[SuiteEntry]:
        return [SuiteEntry(task=t) if isinstance(t, str) else t for t in self.tasks]


def tasks_dir() -> Path:
    """``$PLIPBENCH_TASKS``, else the copy a wheel ships (``plipbench/_data/tasks``), else the
    ``tasks/`` folder of the checkout plipbench runs from."""
    env = os.environ.get(TASKS_ENV)
    if env:
        return Path(env).expanduser()
    checkout = Path(__file__).resolve().parents[2] / "tasks"
    packaged = Path(__file__).resolve().parents[1] / "_data" / "tasks"
    return packaged if packaged.is_dir() else checkout


class _Delete:
    """The value of a ``!delete`` key in a task file: the key is removed from the task it extends."""

    def __repr__(self) -> str:
        return DELETE_TAG


DELETE = _Delete()


class _TaskYamlLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` plus the ``!delete`` tag of task files (suites and recipes do not take it)."""


_TaskYamlLoader.add_constructor(DELETE_TAG, lambda loader, node: DELETE)


def _load_yaml(path: Path, loader: type[yaml.SafeLoader] = yaml.SafeLoader) -> dict[str, Any]:
    try:
        tree = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)  # a SafeLoader subclass: no code runs
    except FileNotFoundError as err:
        raise DataError(path, "task file not found") from err
    except yaml.YAMLError as err:
        raise DataError(path, f"not valid YAML ({yaml_error_line(err)})") from err
    if not isinstance(tree, dict):
        raise DataError(path, f"expected a mapping at the top level, got {type(tree).__name__}")
    return tree


def _validate(model: type[BaseModel], tree: dict[str, Any], path: Path) -> Any:
    return validate_model(model, tree, str(path))


def merge_task_trees(base: dict[str, Any], override: dict[str, Any], where: str = "") -> dict[str, Any]:
    """``override`` deep-merged onto ``base`` (neither is modified), as ``extends:`` does.

    Mappings merge key by key, recursively; any other value (a list, a scalar, ``None``) replaces the
    inherited one; :data:`DELETE` (``!delete`` in YAML) removes the inherited key, and is an error where
    there is nothing to remove or inside a list. ``where`` is the dotted path of ``override`` in the
    task, for the error message.

    >>> merge_task_trees({"a": {"x": 1, "y": [1, 2]}, "b": 1}, {"a": {"y": [3]}, "b": DELETE})
    {'a': {'x': 1, 'y': [3]}}
    """
    merged = copy.deepcopy(base)
    for key, value in override.items():
        at = f"{where}.{key}" if where else str(key)
        if value is DELETE:
            if key not in merged:
                raise ConfigError(f"{DELETE_TAG} of {at!r}: the task it extends has no such key")
            del merged[key]
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_task_trees(merged[key], value, at)
        else:
            merged[key] = _without_delete(value, at)
    return merged


def _without_delete(value: Any, where: str) -> Any:
    """A deep copy of a replacing value, refusing a ``!delete`` left inside it (nothing to delete there)."""
    if value is DELETE:
        raise ConfigError(f"{DELETE_TAG} at {where!r}: only a key of a mapping that the extended task has can be deleted")
    if isinstance(value, dict):
        return {k: _without_delete(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_without_delete(v, f"{where}[{i}]") for i, v in enumerate(value)]
    return copy.deepcopy(value)


class _TaskSources:
    """The raw trees of some task files, indexed by their ``name``, resolved through ``extends``.

    A task's parent is found by name among these files only. Resolving a task validates each task of its
    chain first, so that an error in a parent names the parent's file; an error in the merged spec names
    the file that extends.
    """

    def __init__(self, paths: list[Path]) -> None:
        self.trees: dict[Path, dict[str, Any]] = {}
        self.by_name: dict[str, Path] = {}
        for path in paths:
            tree = _load_yaml(path, _TaskYamlLoader)
            self.trees[path] = tree
            name = tree.get("name")
            if isinstance(name, str):
                if name in self.by_name:
                    raise ConfigError(f"{path}: task name {name!r} is also defined in {self.by_name[name]}")
                self.by_name[name] = path
        self._resolved: dict[Path, dict[str, Any]] = {}
        self._specs: dict[Path, TaskSpec] = {}

    def parent(self, path: Path) -> str | None:
        """The task name that ``path`` extends, or None."""
        value = self.trees[path].get(EXTENDS_KEY)
        return value if isinstance(value, str) else None

    def spec(self, path: Path) -> TaskSpec:
        if path not in self._specs:
            self._specs[path] = _validate(TaskSpec, self.resolved_tree(path), path)
        return self._specs[path]

    def resolved_tree(self, path: Path, chain: tuple[Path, ...] = ()) -> dict[str, Any]:
        """The task's raw tree with its ``extends`` chain merged in (without the ``extends`` key)."""
        if path in self._resolved:
            return self._resolved[path]
        tree = self.trees[path]
        own = {k: v for k, v in tree.items() if k != EXTENDS_KEY}
        if EXTENDS_KEY not in tree:
            base: dict[str, Any] = {}
        else:
            parent = tree[EXTENDS_KEY]
            if not isinstance(parent, str) or not parent:
                raise ConfigError(f"{path}: {EXTENDS_KEY} must be a task name, got {parent!r}")
            if "name" not in tree:
                raise ConfigError(f"{path}: a task that extends {parent!r} needs its own name")
            if parent not in self.by_name:
                raise ConfigError(f"{path}: {EXTENDS_KEY} unknown task {parent!r}; known tasks: "
                                  f"{', '.join(sorted(self.by_name))}")
            parent_path = self.by_name[parent]
            if parent_path == path or parent_path in chain:
                cycle = [*chain, path]
                cycle = cycle[cycle.index(parent_path):] + [parent_path]
                raise ConfigError(f"{path}: {EXTENDS_KEY} cycle: "
                                  f"{' -> '.join(str(self.trees[p].get('name', p)) for p in cycle)}")
            base = self.resolved_tree(parent_path, (*chain, path))
            self.spec(parent_path)  # a broken parent is reported against its own file
        try:
            merged = merge_task_trees(base, own)
        except ConfigError as err:
            if EXTENDS_KEY not in tree:
                raise ConfigError(f"{path}: {DELETE_TAG} in a task that extends none (no {EXTENDS_KEY} key)") from None
            raise ConfigError(f"{path}: {err}") from None
        self._resolved[path] = merged
        return merged


def load_task_file(path: str | Path, tasks_root: str | Path | None = None) -> TaskSpec:
    """One task file, validated; a file that ``extends`` another task finds it among the task files under
    ``tasks_root`` (default: :func:`tasks_dir` when the file lies in it, else the file's own folder)."""
    path = Path(path)
    if EXTENDS_KEY not in _load_yaml(path, _TaskYamlLoader):
        return _TaskSources([path]).spec(path)
    if tasks_root is None:
        default = tasks_dir()
        inside = default.is_dir() and path.resolve().is_relative_to(default.resolve())
        tasks_root = default if inside else path.parent
    paths = _task_files(Path(tasks_root))
    resolved = {p.resolve(): p for p in paths}
    sources = _TaskSources(paths if path.resolve() in resolved else [*paths, path])
    return sources.spec(resolved.get(path.resolve(), path))


def _task_files(root: Path) -> list[Path]:
    """Every task YAML under ``root`` (sorted), suites excluded."""
    return [p for p in sorted(root.rglob("*.yaml")) if "suites" not in p.relative_to(root).parts]


class TaskRegistry:
    """Every task and suite found by walking a tasks folder (default :func:`tasks_dir`)."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else tasks_dir()
        if not self.root.is_dir():
            raise DataError(self.root, f"tasks folder not found (set {TASKS_ENV} to a folder of task YAML files)")
        self.tasks: dict[str, TaskSpec] = {}
        self.files: dict[str, Path] = {}
        self.extends: dict[str, str] = {}  # task name -> the task its file extends
        sources = _TaskSources(_task_files(self.root))
        for path in sources.trees:
            spec = sources.spec(path)  # names are unique: _TaskSources checks them, and every file states its own
            self.tasks[spec.name] = spec
            self.files[spec.name] = path
            parent = sources.parent(path)
            if parent is not None:
                self.extends[spec.name] = parent
        self.suites: dict[str, SuiteSpec] = {}
        for path in sorted((self.root / "suites").glob("*.yaml")):
            suite = _validate(SuiteSpec, _load_yaml(path), path)
            for entry in suite.entries():
                task = self.get(entry.task, where=str(path))
                for proto in entry.protocols or []:
                    task.protocol(proto)
            self.suites[suite.name] = suite

    def extends_chain(self, name: str) -> list[str]:
        """The tasks ``name`` is resolved from, nearest first (empty for a task written in full)."""
        chain = []
        while name in self.extends:
            name = self.extends[name]
            chain.append(name)
        return chain

    def get(self, name: str, *, where: str | None = None) -> TaskSpec:
        if name not in self.tasks:
            prefix = f"{where}: " if where else ""
            raise ConfigError(f"{prefix}unknown task {name!r}; known tasks: {', '.join(sorted(self.tasks))}")
        return self.tasks[name]

    def suite(self, name: str) -> SuiteSpec:
        if name not in self.suites:
            raise ConfigError(f"unknown suite {name!r}; known suites: {', '.join(sorted(self.suites))}")
        return self.suites[name]

    def suite_runs(self, name: str) -> list[tuple[TaskSpec, list[str]]]:
        """``(task, protocol names)`` for every entry of the suite."""
        out = []
        for entry in self.suite(name).entries():
            task = self.get(entry.task)
            out.append((task, entry.protocols or [p.name for p in task.protocol_specs()]))
        return out


def resolve_dataset(ref: DatasetRef, *, generate: bool = True, progress: bool = False) -> Path:
    """The local root of a dataset reference; generates a synthetic twin into the cache if needed.

    A real dataset that is absent raises :class:`DataError` whose message says where to put it.
    """
    if ref.synthetic is not None:
        from plipbench.data.synthetic_cache import ensure_synthetic, synthetic_path

        s = ref.synthetic
        kwargs = {"layout": s.layout or ref.layout, "identities": s.identities, "images_per_id": s.images_per_id,
                  "seed": s.seed}
        return ensure_synthetic(s.preset, progress=progress, **kwargs) if generate else synthetic_path(s.preset, **kwargs)
    assert ref.root is not None
    root = expand_path(ref.root)
    if not root.exists():
        from plipbench.data.readers import get_reader

        info = get_reader(ref.layout)
        raise DataError(root, f"{info.name} data not found: download it and put it there (expected tree:"
                              f" {info.tree.strip().splitlines()[0]} ...), or set PLIPBENCH_DATA")
    return root

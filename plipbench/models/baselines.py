"""Named baselines: one YAML file per backbone in ``baselines/``, validated by :class:`BaselineSpec`.

Where baselines are found, in order: the directories in ``$PLIPBENCH_BASELINES`` (``os.pathsep``
separated), ``./baselines`` in the working directory, and the ``baselines/`` folder of the
plipbench source tree (in a wheel install: its packaged copy). The first ``<name>.yaml`` wins.

A wheel install has no checkout folder: the YAML files are then read from the copy packaged
under ``plipbench/_data/baselines`` (see :func:`packaged_data_dir`).

``weights.path`` says where plipbench looks (``${VAR:-default}`` and ``~`` are expanded, typically
under ``${PLIPBENCH_WEIGHTS:-~/.cache/plipbench/weights}``), ``weights.url`` where a human gets
them and ``weights.fetch`` where plipbench downloads them from (:mod:`plipbench.models.fetch`):
a baseline whose file is missing is fetched on first use, verified against ``weights.sha256``.
Without a fetch source a missing file fails with a message naming the URL and the path, unless
``weights.required`` is false (the adapter may then find the weights elsewhere, e.g. the Hugging
Face cache, and says where it looked if it cannot). ``create_backbone(NAME, weights=PATH)``
points any baseline at a file of one's own.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from plipbench.errors import ConfigError, PlipbenchError, validate_model, yaml_error_line
from plipbench.models.fetch import FetchSource
from plipbench.models.metadata import Modality
from plipbench.models.weights import expand_path

SOURCE_BASELINES = Path(__file__).resolve().parents[2] / "baselines"


def packaged_data_dir(kind: str) -> Path:
    """``plipbench/_data/<kind>``: the copy of ``tasks/`` or ``baselines/`` that a wheel ships."""
    return Path(__file__).resolve().parents[1] / "_data" / kind


class WeightsSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="where plipbench looks for the weights; ${VAR:-default} and ~ expand")
    url: str = Field(description="where a human downloads them (the official release)")
    argument: str = Field("weights", description="the factory keyword that receives the expanded path")
    sha256: str | None = Field(None, description="pinned sha256 of the file; null: recorded on first fetch")
    fetch: FetchSource | None = Field(None, description="where plipbench downloads the file from")
    required: bool = True
    instructions: str = ""

    def resolved(self) -> Path:
        return expand_path(self.path)


class BaselineSpec(BaseModel):
    """One named backbone: how to build it, where its weights are, what it was trained on."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    family: str
    model: str | None = Field(None, description="the target after 'family:' (e.g. resnet50); null for none")
    args: dict[str, Any] = Field(default_factory=dict)
    weights: WeightsSpec | None = None
    modalities: tuple[Modality, ...]
    embedding_dim: int = Field(gt=0)
    license: str
    training_data: tuple[str, ...] = ()
    revision: str | None = None
    citation: str | None = None
    parameters: int | None = Field(None, ge=0, description="parameter count of the built backbone")
    feature: str = Field(
        "", description="the embedding the backbone returns, as the reference code defines it"
    )

    def weights_present(self) -> bool | None:
        """True/False for a baseline with weights, None for one without (random init).

        False for a model listed without a loader (``fetch.kind: unsupported``) even when its file is there,
        so that ``bench`` does not add it."""
        if self.weights is None:
            return None
        if self.weights.fetch is not None and self.weights.fetch.kind == "unsupported":
            return False
        try:
            return self.weights.resolved().exists()
        except PlipbenchError:
            return False


def baseline_dirs() -> list[Path]:
    dirs = [Path(p).expanduser() for p in os.environ.get("PLIPBENCH_BASELINES", "").split(os.pathsep) if p]
    packaged = packaged_data_dir("baselines")
    dirs += [Path.cwd() / "baselines", packaged if packaged.is_dir() else SOURCE_BASELINES]
    unique: list[Path] = []
    for d in dirs:
        if d.is_dir() and d.resolve() not in [u.resolve() for u in unique]:
            unique.append(d)
    return unique


def looks_like_baseline_file(spec: str) -> bool:
    return spec.endswith((".yaml", ".yml")) and Path(spec).expanduser().is_file()


def find_baseline(name: str) -> Path | None:
    if "/" in name or ":" in name or not name:
        return None
    for d in baseline_dirs():
        for suffix in (".yaml", ".yml"):
            if (d / f"{name}{suffix}").is_file():
                return d / f"{name}{suffix}"
    return None


def baseline_names() -> list[str]:
    names = {p.stem for d in baseline_dirs() for p in [*d.glob("*.yaml"), *d.glob("*.yml")]}
    return sorted(names)


def load_baseline(spec: str | Path) -> BaselineSpec:
    """Read and validate a baseline by name or path; unknown keys are a ConfigError naming file and key."""
    import yaml

    path = Path(spec).expanduser() if str(spec).endswith((".yaml", ".yml")) else find_baseline(str(spec))
    if path is None or not path.is_file():
        raise ConfigError(f"no baseline {spec!r}; {close_names_hint(str(spec))}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: invalid YAML: {yaml_error_line(err)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return validate_model(BaselineSpec, data, str(path))


def close_names_hint(name: str) -> str:
    """``did you mean: a, b`` (difflib) or the full list of known baselines."""
    import difflib

    known = baseline_names()
    close = difflib.get_close_matches(name, known, n=5, cutoff=0.5)
    if close:
        return "did you mean: " + ", ".join(close)
    return "known: " + (", ".join(known) or "none")


def list_baselines() -> list[tuple[BaselineSpec | None, Path, str | None]]:
    """Every baseline file: ``(spec or None, path, error message or None)``."""
    out: list[tuple[BaselineSpec | None, Path, str | None]] = []
    for name in baseline_names():
        path = find_baseline(name)
        assert path is not None
        try:
            out.append((load_baseline(path), path, None))
        except PlipbenchError as err:
            out.append((None, path, str(err)))
    return out


def weights_hint(spec: BaselineSpec) -> str:
    if spec.weights is None:
        return "no weights needed (random initialisation)"
    try:
        where = str(spec.weights.resolved())
    except PlipbenchError as err:
        where = str(err)
    hint = f"download from {spec.weights.url} and put them at {where} (or set PLIPBENCH_WEIGHTS)"
    if spec.weights.fetch is not None and spec.weights.fetch.kind == "unsupported":
        return f"plipbench has no loader for it: {spec.weights.fetch.reason}"
    if spec.weights.fetch is None and not spec.weights.required:
        hint = (f"the {spec.family} library downloads them into its own cache on first use (offline: that cache "
                f"only), or put a copy at {where}")  # fmt: skip
    elif spec.weights.fetch is not None and spec.weights.fetch.kind not in ("gated", "unsupported"):
        hint = f"run `plipbench models fetch {spec.name}`, or " + hint
    return hint + (f"; {spec.weights.instructions}" if spec.weights.instructions else "")


def create_from_baseline(spec: str, *, device: str = "cpu", **overrides: Any) -> Any:
    """Build the backbone a baseline describes; metadata (name, license, training data) comes from the YAML."""
    from plipbench.models.fetch import expected_sha256, fetch_baseline
    from plipbench.models.registry import FAMILIES, as_backbone, call_factory, is_user_family

    baseline = load_baseline(spec)
    if (
        baseline.weights is not None
        and baseline.weights.fetch is not None
        and baseline.weights.fetch.kind == "unsupported"
    ):
        raise PlipbenchError(
            f"baseline {baseline.name}: plipbench has no loader for it: {baseline.weights.fetch.reason}"
        )
    own_file = None
    if baseline.weights is not None and "weights" in overrides and baseline.weights.argument != "weights":
        overrides[baseline.weights.argument] = overrides.pop("weights")
    if baseline.weights is not None and baseline.weights.argument in overrides:
        own_file = overrides[baseline.weights.argument]
        if own_file is not None and not Path(str(own_file)).expanduser().exists():
            raise PlipbenchError(f"baseline {baseline.name}: weights file not found: {own_file}")
    kwargs = {**baseline.args, **overrides}
    expected_sha = None
    random_init = overrides.get("pretrained") is False  # an explicit random initialisation: no weights at all
    if baseline.weights is not None and own_file is None and not random_init:
        path = baseline.weights.resolved()
        if not path.exists() and baseline.weights.required and baseline.weights.fetch is not None:
            fetch_baseline(baseline)  # first use: download, verify, place atomically
        if path.exists():
            kwargs[baseline.weights.argument] = str(path)
            expected_sha = expected_sha256(baseline.weights.sha256, path) if path.is_file() else None
        elif baseline.weights.required:
            raise PlipbenchError(
                f"weights for baseline {baseline.name} not found: looked at {path}; {weights_hint(baseline)}"
            )
    if baseline.family not in FAMILIES:
        raise ConfigError(f"baseline {baseline.name}: unknown family {baseline.family!r}")
    factory = FAMILIES.get(baseline.family)
    try:
        built = call_factory(
            spec,
            lambda: factory(baseline.model, device=device, **kwargs),
            user_code=is_user_family(baseline.family),
        )
        backbone = as_backbone(built, source=spec, device=device)
    except PlipbenchError as err:
        if (
            baseline.weights is not None
            and "weights" in str(err).lower()
            and baseline.weights.url not in str(err)
        ):
            raise PlipbenchError(f"{err}; {weights_hint(baseline)}") from err
        raise
    meta = backbone.metadata
    if expected_sha and meta.checkpoint_sha256 and expected_sha.lower() != meta.checkpoint_sha256:
        raise PlipbenchError(
            f"baseline {baseline.name}: weights sha256 {meta.checkpoint_sha256} does not match the expected "
            f"{expected_sha} ({meta.source}); {weights_hint(baseline)}"
        )
    if meta.embedding_dim != baseline.embedding_dim or set(meta.modalities) != set(baseline.modalities):
        raise PlipbenchError(
            f"baseline {baseline.name}: the built model has modalities {list(meta.modalities)} and embedding size "
            f"{meta.embedding_dim}, the YAML declares {list(baseline.modalities)} and {baseline.embedding_dim}"
        )
    if baseline.parameters is not None and meta.num_parameters != baseline.parameters:
        raise PlipbenchError(
            f"baseline {baseline.name}: the built model has {meta.num_parameters} parameters, the YAML declares "
            f"{baseline.parameters}"
        )
    update: dict[str, Any] = {
        "name": baseline.name,
        "license": baseline.license,
        "training_data": baseline.training_data,
    }
    if baseline.description:
        update["description"] = baseline.description
    if baseline.revision:
        update["revision"] = baseline.revision
    if baseline.weights is not None and own_file is None and not random_init:
        update["source"] = f"{meta.source} ({baseline.weights.url})" if meta.source else baseline.weights.url
    backbone.metadata = meta.model_copy(update=update)
    backbone._fingerprint = None
    from plipbench.models.backbone import record_code_source

    return record_code_source(backbone, factory)  # the family's adapter module (feature cache key)

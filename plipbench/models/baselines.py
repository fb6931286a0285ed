"""Named baselines: one YAML file per backbone in ``baselines/``, validated by :class:`BaselineSpec`.

Where baselines are found, in order: the directories in ``$PLIPBENCH_BASELINES`` (``os.pathsep``
separated), ``./baselines`` in the working directory, and the ``baselines/`` folder of the
plipbench source tree. The first file named ``<name>.yaml`` wins.

Weights are never downloaded: ``weights.path`` says where plipbench looks (``${VAR:-default}``
and ``~`` are expanded, typically under ``${PLIPBENCH_WEIGHTS:-~/.cache/plipbench/weights}``),
``weights.url`` where a human gets them. When the path is missing, building the baseline fails
with a message naming both, unless ``weights.required`` is false (the adapter may then find the
weights elsewhere, e.g. the Hugging Face cache, and says where it looked if it cannot).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from plipbench.errors import ConfigError, PlipbenchError, validate_model
from plipbench.models.metadata import Modality
from plipbench.models.weights import expand_path

SOURCE_BASELINES = Path(__file__).resolve().parents[2] / "baselines"


class WeightsSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="where plipbench looks for the weights; ${VAR:-default} and ~ expand")
    url: str = Field(description="where a human downloads them (the official release)")
    argument: str = Field("weights", description="the factory keyword that receives the expanded path")
    sha256: str | None = None
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

    def weights_present(self) -> bool | None:
        """True/False for a baseline with weights, None for one without (random init)."""
        if self.weights is None:
            return None
        try:
            return self.weights.resolved().exists()
        except PlipbenchError:
            return False


def baseline_dirs() -> list[Path]:
    dirs = [Path(p).expanduser() for p in os.environ.get("PLIPBENCH_BASELINES", "").split(os.pathsep) if p]
    dirs += [Path.cwd() / "baselines", SOURCE_BASELINES]
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
        raise ConfigError(f"no baseline {spec!r}; known: {', '.join(baseline_names()) or 'none'}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: invalid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return validate_model(BaselineSpec, data, str(path))


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
    return hint + (f"; {spec.weights.instructions}" if spec.weights.instructions else "")


def create_from_baseline(spec: str, *, device: str = "cpu", **overrides: Any) -> Any:
    """Build the backbone a baseline describes; metadata (name, license, training data) comes from the YAML."""
    from plipbench.models.registry import FAMILIES, as_backbone

    baseline = load_baseline(spec)
    kwargs = {**baseline.args, **overrides}
    if baseline.weights is not None and baseline.weights.argument not in overrides:
        path = baseline.weights.resolved()
        if path.exists():
            kwargs[baseline.weights.argument] = str(path)
        elif baseline.weights.required:
            raise PlipbenchError(
                f"weights for baseline {baseline.name} not found: looked at {path}; {weights_hint(baseline)}"
            )
    if baseline.family not in FAMILIES:
        raise ConfigError(f"baseline {baseline.name}: unknown family {baseline.family!r}")
    factory = FAMILIES.get(baseline.family)
    try:
        backbone = as_backbone(factory(baseline.model, device=device, **kwargs), source=spec, device=device)
    except PlipbenchError as err:
        if (
            baseline.weights is not None
            and "weights" in str(err).lower()
            and baseline.weights.url not in str(err)
        ):
            raise PlipbenchError(f"{err}; {weights_hint(baseline)}") from err
        raise
    meta = backbone.metadata
    expected_sha = baseline.weights.sha256 if baseline.weights is not None else None
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
    update: dict[str, Any] = {
        "name": baseline.name,
        "license": baseline.license,
        "training_data": baseline.training_data,
    }
    if baseline.description:
        update["description"] = baseline.description
    if baseline.revision:
        update["revision"] = baseline.revision
    if baseline.weights is not None:
        update["source"] = f"{meta.source} ({baseline.weights.url})" if meta.source else baseline.weights.url
    backbone.metadata = meta.model_copy(update=update)
    backbone._fingerprint = None
    from plipbench.models.backbone import record_code_source

    return record_code_source(backbone, factory)  # the family's adapter module (feature cache key)

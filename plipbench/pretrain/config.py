"""Pre-training configuration: typed (unknown keys rejected), loadable by name or from a YAML file,
with ``key.sub=value`` overrides from the command line.

Named configs live in ``plipbench/configs/pretrain/<name>.yaml``. The config hash (sha256 of the
canonical JSON of the validated config) identifies a run: a resume directory written by another
config is refused, naming the keys that differ.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from plipbench.errors import ConfigError, validate_model, yaml_error_line

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs" / "pretrain"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataConfig(_Strict):
    preset: str | None = Field("synth-pedes", description="synthetic preset generated into the cache when root is null")
    root: str | None = Field(None, description="a local SYNTH-PEDES copy (or any caption layout) instead of a preset")
    layout: str = "synth-pedes"
    identities: int | None = Field(None, ge=1)
    images_per_id: int | None = Field(None, ge=1)
    seed: int = 0
    flip: float = Field(0.5, ge=0.0, le=1.0, description="horizontal flip probability (paper: 0.5)")

    @model_validator(mode="after")
    def _source(self) -> DataConfig:
        if self.preset is None and self.root is None:
            raise ValueError("data needs either a preset or a root")
        return self


class ObjectiveWeights(_Strict):
    """Loss weights; 0 switches an objective off. Paper default: L = IVLC + 0.02 TIC + 0.1 IAP."""

    ivlc: float = Field(1.0, ge=0.0)
    tic: float = Field(0.02, ge=0.0)
    iap: float = Field(0.1, ge=0.0)
    clip: float = Field(0.0, ge=0.0, description="instance-level InfoNCE (the 'CLIP on the same data' baseline)")

    @model_validator(mode="after")
    def _any(self) -> ObjectiveWeights:
        if not any((self.ivlc, self.tic, self.iap, self.clip)):
            raise ValueError("at least one objective weight must be > 0")
        return self


class IvlcConfig(_Strict):
    logits: Literal["cmpm", "cosine"] = Field(
        "cmpm",
        description="cmpm: unnormalised image embedding x normalised text (CMPM, the paper's stated form); "
        "cosine: cosine similarity x a learned temperature (CLIP-style scale; does not saturate)",
    )
    init_temperature: float = Field(0.07, gt=0, description="initial temperature for logits=cosine")


class TicConfig(_Strict):
    neck_dim: int = Field(256, ge=4, description="FPN channels per level (paper 256 -> 1024 concatenated)")
    pooling: Literal["avg", "max"] = "avg"
    gate: Literal["sigmoid", "softmax"] = "sigmoid"
    distance: Literal["l2", "mse"] = Field(
        "l2", description="per-image Euclidean distance (PLIP's L_tic) or per-pixel mean squared error"
    )


class IapConfig(_Strict):
    low: float = Field(0.2, ge=0.0, le=1.0)
    high: float = Field(0.8, ge=0.0, le=1.0)
    schedule: Literal["sqrt", "linear", "square", "constant"] = "sqrt"
    fusion: Literal["concat", "sum"] = "concat"
    layers: int = Field(1, ge=1)
    heads: int = Field(8, ge=1)


class SamplerConfig(_Strict):
    identities_per_batch: int = Field(16, ge=1, description="P identities per batch and rank")
    images_per_identity: int = Field(4, ge=1, description="K images per identity")


class OptimConfig(_Strict):
    name: Literal["adan", "adamw"] = "adan"
    lr: float = Field(0.002, gt=0)
    text_lr_scale: float = Field(0.1, gt=0, description="text encoder LR = lr x this (paper: BERT at 0.1x)")
    weight_decay: float = Field(0.02, ge=0)
    warmup_epochs: float = Field(10, ge=0)
    milestones: list[float] = Field(default_factory=lambda: [30, 50], description="epochs where LR is x gamma")
    gamma: float = Field(0.1, gt=0)
    epochs: float = Field(70, gt=0)
    grad_accumulation: int = Field(1, ge=1)
    clip_grad_norm: float | None = Field(None, gt=0)


class TrainConfig(_Strict):
    seed: int = 0
    precision: Literal["auto", "fp32", "bf16"] = Field("auto", description="auto: bf16 autocast on CUDA when supported")
    checkpoint_every: int = Field(200, ge=1, description="steps between checkpoints")
    keep_checkpoints: int = Field(2, ge=1)
    log_every: int = Field(10, ge=1)
    num_workers: int = Field(0, ge=0)
    threads: int | None = Field(None, ge=1, description="torch threads on CPU (None: torch default)")


class PretrainConfig(_Strict):
    name: str = "custom"
    description: str = ""
    model: str | dict[str, Any] = Field("plip-mini", description="a named PlipConfig or a mapping of its fields")
    model_overrides: dict[str, Any] = Field(default_factory=dict)
    data: DataConfig = Field(default_factory=DataConfig)
    objectives: ObjectiveWeights = Field(default_factory=ObjectiveWeights)
    ivlc: IvlcConfig = Field(default_factory=IvlcConfig)
    tic: TicConfig = Field(default_factory=TicConfig)
    iap: IapConfig = Field(default_factory=IapConfig)
    sampler: SamplerConfig = Field(default_factory=SamplerConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)

    def config_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()

    def flat(self) -> dict[str, Any]:
        return _flatten(self.model_dump(mode="json"))


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def named_configs() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any, source: str) -> None:
    keys = dotted.split(".")
    node = tree
    for key in keys[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{source}: cannot set {dotted!r}: {key!r} is not a section")
        node = child
    node[keys[-1]] = value


def parse_overrides(items: list[str]) -> list[tuple[str, Any]]:
    """``["optim.lr=0.001", "objectives.tic=0"]`` -> ``[("optim.lr", 0.001), ...]`` (values parsed as YAML)."""
    parsed = []
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r} is not of the form key=value (e.g. optim.lr=0.001)")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as err:
            raise ConfigError(f"override {item!r}: value is not valid YAML ({yaml_error_line(err)})") from err
        parsed.append((key.strip(), value))
    return parsed


def load_config(name_or_path: str | Path, overrides: list[str] | None = None) -> PretrainConfig:
    """A named config (``mini``, ``rn50-paper``, ...) or a YAML file, with ``key=value`` overrides applied."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml") or not path.exists():
        named = CONFIG_DIR / f"{name_or_path}.yaml"
        if not named.exists():
            if path.suffix in (".yaml", ".yml"):
                raise ConfigError(f"{path}: config file not found")
            raise ConfigError(f"unknown pre-training config {str(name_or_path)!r}; named configs: {named_configs()}")
        path = named
    try:
        tree = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({yaml_error_line(err)})") from err
    if not isinstance(tree, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(tree).__name__}")
    tree.setdefault("name", path.stem)
    for key, value in parse_overrides(overrides or []):
        _set_dotted(tree, key, value, str(path))
    return validate_config(tree, source=str(path))


def validate_config(tree: dict[str, Any], *, source: str = "config") -> PretrainConfig:
    return validate_model(PretrainConfig, tree, source)


def config_differences(a: PretrainConfig | dict[str, Any], b: PretrainConfig | dict[str, Any]) -> list[str]:
    """Dotted keys whose values differ between two configs (the run ``name`` is ignored)."""
    fa = a.flat() if isinstance(a, PretrainConfig) else _flatten(a)
    fb = b.flat() if isinstance(b, PretrainConfig) else _flatten(b)
    keys = sorted(set(fa) | set(fb))
    return [k for k in keys if k != "name" and fa.get(k) != fb.get(k)]

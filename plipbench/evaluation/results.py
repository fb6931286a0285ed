"""The result file: one JSON per (backbone, task, protocol), written atomically.

Scores are fractions in [0, 1]. ``per_query`` holds the arrays needed for confidence intervals and
paired comparisons, compressed (zlib + base64 of ``.npy`` bytes):

* text and image ReID: ``AP``, ``INP`` (per valid query), ``first_hit_rank`` (0-based rank of the
  first correct gallery item, -1 when none) - the per-query ``R@k`` indicator is
  ``0 <= first_hit_rank < k`` and the per-query score of ``mAP`` is ``AP``;
* attributes: ``probs`` and ``labels`` (N x L) - metrics are recomputed on bootstrap resamples.

Seeds: ``seed`` is the training seed of the run that made the number - the pre-training seed of the
backbone (``plipbench bench``: pre-training seed s gives model s, whose protocols run with seed s) and/or
the protocol's own seed (initialisation, batch order, few-shot subset). ``None`` means nothing in the result
depends on a seed: fixed weights and an untrained (zero-shot) protocol. One file per seed:
``<backbone>__<task>__<protocol>__seed<s>.json`` (no suffix for ``seed=None``).

``provenance`` says exactly how the number was made (version, commit, spec hash, dataset
fingerprint, backbone metadata and checkpoint hash, protocol options, seeds, the split used for
model selection, timings, hardware).
"""

from __future__ import annotations

import base64
import io
import json
import math
import zlib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from plipbench.errors import DataError
from plipbench.io import atomic_write_text

SCHEMA_VERSION = 2
SUPPORTED_SCHEMA_VERSIONS = (1, 2)  # 1: before seeds (read as seed None)


def encode_array(array: Any) -> str:
    """numpy array -> compressed base64 text (lossless, dtype and shape kept)."""
    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    return base64.b64encode(zlib.compress(buffer.getvalue(), 6)).decode("ascii")


def decode_array(text: str) -> Any:
    import numpy as np

    return np.load(io.BytesIO(zlib.decompress(base64.b64decode(text))), allow_pickle=False)


class Provenance(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plipbench_version: str
    git_commit: str | None = None
    task_spec_hash: str
    dataset_fingerprint: str
    backbone: dict[str, Any] = Field(description="backbone metadata (name, family, params, source, ...)")
    checkpoint_sha256: str | None = None
    protocol_options: dict[str, Any] = Field(default_factory=dict)
    metric_protocol: dict[str, Any] = Field(default_factory=dict, description="options of the metric functions")
    seeds: dict[str, int] = Field(default_factory=dict)
    selection_split: str | None = Field(None, description="split used for model selection; 'test' only in the "
                                        "opt-in paper-compatible mode (selection: test), which the leaderboard marks")
    timings: dict[str, float] = Field(default_factory=dict, description="seconds: features, training, metrics, total")
    hardware: dict[str, Any] = Field(default_factory=dict)
    created: str = Field(description="ISO 8601 UTC time the result was written")


class TaskResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: int = SCHEMA_VERSION
    backbone: str
    seed: int | None = Field(None, description="training seed of this run; None: nothing depends on a seed")
    task: str
    task_family: str = Field(description="text-reid | image-reid | attributes | domain-generalization | parsing | "
                                         "person-search")
    protocol: str = Field(description="zero-shot | linear-probe | fine-tune | few-shot-... ")
    dataset: str
    main_score: str = Field(description="key of `scores` that ranks backbones on this task, e.g. 'R@1' or 'mA'")
    scores: dict[str, float]
    zero_shot: bool = Field(description="the backbone was not trained on this task's data in this run")
    saw_task_training_data: bool = Field(
        False, description="the backbone's own pre-training included this task's training data"
    )
    per_query: dict[str, str] = Field(default_factory=dict, description="name -> encode_array(...)")
    details: dict[str, Any] = Field(default_factory=dict, description="e.g. per-attribute table; a fine-tune's per-epoch "
                                    "curve (details.curve: loss parts, lr, val score per epoch)")
    provenance: Provenance
    _source_path: str | None = PrivateAttr(None)

    @property
    def source_path(self) -> str | None:
        """The file this result was read from (None for a result built in memory)."""
        return self._source_path

    @field_validator("schema_version")
    @classmethod
    def _known_schema(cls, value: int) -> int:
        if value not in SUPPORTED_SCHEMA_VERSIONS:
            raise ValueError(f"schema_version {value} is not one this plipbench reads "
                             f"({', '.join(map(str, SUPPORTED_SCHEMA_VERSIONS))}); upgrade plipbench")
        return value

    @field_validator("scores")
    @classmethod
    def _fractions(cls, scores: dict[str, float]) -> dict[str, float]:
        for name, value in scores.items():
            if not math.isfinite(value) or not 0.0 <= value <= 1.0:
                raise ValueError(f"score {name} = {value} is not a fraction in [0, 1]")
        return scores

    def per_query_arrays(self) -> dict[str, Any]:
        return {name: decode_array(blob) for name, blob in self.per_query.items()}

    def file_name(self) -> str:
        stem = f"{self.backbone}__{self.task}__{self.protocol}"
        if self.seed is not None:
            stem += f"__seed{self.seed}"
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem)
        return f"{safe}.json"

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / self.file_name()
        atomic_write_text(path, self.model_dump_json(indent=1) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> TaskResult:
        return cls.from_raw(_read_json(path), path)

    @classmethod
    def from_raw(cls, raw: Any, path: str | Path) -> TaskResult:
        try:
            result = cls.model_validate(raw)
        except Exception as err:  # pydantic.ValidationError: name the file, keep it to one line
            lines = [line.strip() for line in str(err).splitlines()[1:] if line.strip()]
            raise DataError(path, f"not a plipbench result ({'; '.join(lines[:4])})") from err
        result._source_path = str(path)
        return result


RESULT_KEYS = frozenset({"backbone", "task", "provenance"})


def _read_json(path: str | Path) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise DataError(path, "result file not found") from err
    except UnicodeDecodeError as err:
        raise DataError(path, f"not UTF-8 text ({err.reason} at byte {err.start})") from err
    except json.JSONDecodeError as err:
        raise DataError(path, f"not valid JSON ({err.msg} at line {err.lineno} column {err.colno})") from err


def looks_like_result(path: str | Path) -> bool:
    """Whether ``path`` is a JSON object with the keys every result has (it may still fail validation)."""
    try:
        raw = _read_json(path)
    except DataError:
        return False
    return isinstance(raw, dict) and set(raw) >= RESULT_KEYS


def load_results(directory: str | Path, *, ignored: list[Path] | None = None) -> list[TaskResult]:
    """Every ``*.json`` result under ``directory`` (recursively), sorted by (backbone, task, protocol, seed).

    JSON files that are not results (not an object with the keys ``backbone``, ``task`` and ``provenance``:
    a leaderboard written with ``--format json --out``, a user's notes) are skipped and appended to
    ``ignored``; a file that is not JSON, or has those keys but does not validate, is a :class:`DataError`
    naming it.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(directory, "results directory not found")
    results = []
    for path in sorted(directory.rglob("*.json")):
        raw = _read_json(path)  # a *.json that is not JSON at all (a truncated copy?) is reported, naming it
        if not (isinstance(raw, dict) and set(raw) >= RESULT_KEYS):
            if ignored is not None:
                ignored.append(path)
            continue
        results.append(TaskResult.from_raw(raw, path))
    return sorted(results, key=result_sort_key)


def result_sort_key(r: TaskResult) -> tuple:
    return r.backbone, r.task, r.protocol, -1 if r.seed is None else r.seed

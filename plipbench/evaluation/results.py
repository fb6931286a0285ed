"""The result file: one JSON per (backbone, task, protocol), written atomically.

Scores are fractions in [0, 1]. ``per_query`` holds the arrays needed for confidence intervals and
paired comparisons, compressed (zlib + base64 of ``.npy`` bytes):

* text and image ReID: ``AP``, ``INP`` (per valid query), ``first_hit_rank`` (0-based rank of the
  first correct gallery item, -1 when none) - the per-query ``R@k`` indicator is
  ``0 <= first_hit_rank < k`` and the per-query score of ``mAP`` is ``AP``;
* attributes: ``probs`` and ``labels`` (N x L) - metrics are recomputed on bootstrap resamples.

``provenance`` says exactly how the number was made (version, commit, spec hash, dataset
fingerprint, backbone metadata and checkpoint hash, protocol options, seeds, the split used for
model selection, timings, hardware).
"""

from __future__ import annotations

import base64
import io
import json
import zlib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from plipbench.errors import DataError
from plipbench.io import atomic_write_text

SCHEMA_VERSION = 1


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
    selection_split: str | None = Field(None, description="split used for model selection; never a test split")
    timings: dict[str, float] = Field(default_factory=dict, description="seconds: features, training, metrics, total")
    hardware: dict[str, Any] = Field(default_factory=dict)
    created: str = Field(description="ISO 8601 UTC time the result was written")


class TaskResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: int = SCHEMA_VERSION
    backbone: str
    task: str
    task_family: str = Field(description="text-reid | image-reid | attributes | domain-generalization")
    protocol: str = Field(description="zero-shot | linear-probe | fine-tune | few-shot-... ")
    dataset: str
    main_score: str = Field(description="key of `scores` that ranks backbones on this task, e.g. 'R@1' or 'mA'")
    scores: dict[str, float]
    zero_shot: bool = Field(description="the backbone was not trained on this task's data in this run")
    saw_task_training_data: bool = Field(
        False, description="the backbone's own pre-training included this task's training data"
    )
    per_query: dict[str, str] = Field(default_factory=dict, description="name -> encode_array(...)")
    details: dict[str, Any] = Field(default_factory=dict, description="e.g. per-attribute table")
    provenance: Provenance

    def per_query_arrays(self) -> dict[str, Any]:
        return {name: decode_array(blob) for name, blob in self.per_query.items()}

    def file_name(self) -> str:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{self.backbone}__{self.task}__{self.protocol}")
        return f"{safe}.json"

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / self.file_name()
        atomic_write_text(path, self.model_dump_json(indent=1) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> TaskResult:
        path = Path(path)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as err:
            raise DataError(path, "result file not found") from err
        except json.JSONDecodeError as err:
            raise DataError(path, f"not valid JSON ({err.msg} at line {err.lineno} column {err.colno})") from err
        try:
            return cls.model_validate(raw)
        except Exception as err:  # pydantic.ValidationError: name the file, keep it to one line
            first = str(err).splitlines()
            raise DataError(path, f"not a plipbench result ({' '.join(first[:3])})") from err


def load_results(directory: str | Path) -> list[TaskResult]:
    """Every ``*.json`` result under ``directory`` (recursively), sorted by (backbone, task, protocol)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(directory, "results directory not found")
    results = [TaskResult.load(p) for p in sorted(directory.rglob("*.json"))]
    return sorted(results, key=lambda r: (r.backbone, r.task, r.protocol))

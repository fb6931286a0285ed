"""Resumable fine-tunes: a checkpoint after every epoch, under the cache, keyed by the result it becomes.

Where: ``$PLIPBENCH_CACHE/checkpoints/<digest of the result file's path>/`` (the result's identity: backbone
name, task, protocol, seed and output folder). It holds ``state.json`` (the run's spec, the loop state, the
optimizer's and scheduler's non-tensor state, numpy's and Python's RNG states, and the name and sha256 of the
tensor file) and ``epoch-<k>.safetensors`` (module, optimizer, best-epoch and torch RNG tensors). The tensor
file is written first, then ``state.json`` replaces the previous one, both atomically
(:func:`plipbench.io.atomic_write`): a kill at any moment leaves the last complete checkpoint readable.
Nothing is pickled: tensors are safetensors, the rest JSON.

The spec (:func:`run_spec`) is everything that makes the numbers: the backbone's name, weights and code
fingerprints, the task and its spec hash, the protocol, its base, train fraction and merged options, the seed,
the datasets' fingerprints, the device kind (cpu, cuda) and the world size. ``--resume`` continues from the
stored epoch only if the stored spec equals this run's; otherwise it is refused (:class:`~plipbench.errors.ConfigError`, one line
naming the differing keys, exit 2 from the CLI).

Without ``--resume`` a checkpoint left by a killed earlier run is ignored: it is removed before the first epoch
and this run writes its own (a fresh run never silently continues an old one). With ``--resume`` and no
checkpoint the run starts at epoch 1. The folder is removed once the result is written.

Exactness: a checkpoint is taken at an epoch boundary, after validation, and restores every state the next
epoch reads: parameters and buffers, the optimizer and scheduler, the kept best epoch, the loop's records, and
the RNG streams (torch's global generator and, on CUDA, the device's; the loader's generator; numpy's and
Python's global ones). Samplers and augmentations are seeded by ``(seed, epoch)``, so the resumed epochs draw
the same batches and the result equals an uninterrupted run's bit for bit on the same machine.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plipbench.errors import ConfigError, DataError

if TYPE_CHECKING:  # pragma: no cover
    import torch

STATE_FILE = "state.json"
FORMAT = 1


def checkpoint_folder(result_path: Path, cache: Path | None = None) -> Path:
    """The checkpoint folder of the result that will be written at ``result_path``."""
    from plipbench.environment import cache_root

    digest = hashlib.sha256(str(Path(result_path).resolve()).encode()).hexdigest()[:24]
    return (cache or cache_root()) / "checkpoints" / digest


def run_spec(**parts: Any) -> dict[str, Any]:
    """A JSON-normal copy of the parts that make a run's numbers (compared key by key on resume)."""
    return json.loads(json.dumps(parts, sort_keys=True, default=str))


def _flat(spec: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(spec, dict):
        out: dict[str, Any] = {}
        for key, value in spec.items():
            out.update(_flat(value, f"{prefix}{key}."))
        return out or {prefix.rstrip("."): {}}
    return {prefix.rstrip("."): spec}


def differing_keys(stored: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Dotted keys whose values differ (or that only one side has), sorted."""
    a, b = _flat(stored), _flat(current)
    return sorted(k for k in set(a) | set(b) if a.get(k, ...) != b.get(k, ...))


class FineTuneCheckpoint:
    """The per-epoch checkpoint of one fine-tune (see the module docstring).

    ``writer`` is False on ranks other than 0 under torchrun: they read a checkpoint to resume, never write.
    """

    def __init__(self, folder: Path, spec: dict[str, Any], *, resume: bool, writer: bool = True) -> None:
        self.folder, self.spec, self.resume, self.writer = Path(folder), run_spec(**spec), bool(resume), writer
        self.resumed_after: int | None = None  # 1-based epoch a resumed run continued after

    @property
    def state_path(self) -> Path:
        return self.folder / STATE_FILE

    def begin(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]] | None:
        """Before the first epoch: the stored ``(state, tensors)`` to resume from, or None to start afresh.

        Without ``resume`` a stale checkpoint is removed. A stored spec that differs is refused, naming the keys.
        """
        if not self.resume:
            if self.writer:
                self.remove()
            return None
        if not self.state_path.is_file():
            return None
        try:
            state = json.loads(self.state_path.read_text())
            if state.get("format") != FORMAT:
                raise ValueError(f"format {state.get('format')!r}, expected {FORMAT}")
            tensor_path = self.folder / state["tensors"]
            data = tensor_path.read_bytes()
            if hashlib.sha256(data).hexdigest() != state["tensors_sha256"]:
                raise ValueError(f"{tensor_path.name} does not match its sha256")
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise DataError(self.state_path, f"cannot resume from this checkpoint ({err}); rerun without --resume "
                                             "to start over") from None
        differ = differing_keys(state.get("spec", {}), self.spec)
        if differ:
            raise ConfigError(
                f"cannot resume: the checkpoint in {self.folder} was made with another spec "
                f"(differs: {', '.join(differ)}); rerun without --resume to start over"
            )
        from safetensors.torch import load

        self.resumed_after = int(state["epoch"]) + 1
        return state, load(data)

    def save(self, epoch: int, state: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        """Write the checkpoint taken after 0-based ``epoch``: tensors first, then ``state.json``, both atomic."""
        if not self.writer:
            return
        from safetensors.torch import save

        from plipbench.io import atomic_write_bytes, atomic_write_json

        data = save({k: v.detach().to("cpu").clone().contiguous() for k, v in tensors.items()})
        name = f"epoch-{epoch + 1}.safetensors"
        atomic_write_bytes(self.folder / name, data)
        atomic_write_json(self.state_path, {"format": FORMAT, "epoch": epoch, "spec": self.spec, "tensors": name,
                                            "tensors_sha256": hashlib.sha256(data).hexdigest(), **state})
        for old in self.folder.glob("epoch-*.safetensors"):
            if old.name != name:
                old.unlink(missing_ok=True)

    def remove(self) -> None:
        if self.writer and self.folder.exists():
            shutil.rmtree(self.folder, ignore_errors=True)


# -- what a checkpoint holds ---------------------------------------------------------------------------
def _json_state(obj: Any) -> Any:
    """``obj`` with tuples as lists; refuses what JSON cannot hold (a tensor, a function)."""
    return json.loads(json.dumps(obj))


def _like(stored: Any, current: Any) -> Any:
    """A JSON value back in the container type of ``current`` (tuples came back as lists)."""
    if isinstance(current, tuple) and isinstance(stored, list):
        return tuple(_like(s, c) for s, c in zip(stored, current, strict=False))
    return stored


def optimizer_state(optimizer: Any) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    import torch

    saved = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, entry in saved["state"].items():
        for key, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"optimizer.{index}.{key}"] = value
            else:
                scalars.setdefault(str(index), {})[key] = value
    return {"param_groups": _json_state(saved["param_groups"]), "state": _json_state(scalars)}, tensors


def load_optimizer_state(optimizer: Any, stored: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("optimizer."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = value
    for index, entry in stored["state"].items():
        state.setdefault(int(index), {}).update(entry)
    current = optimizer.state_dict()["param_groups"]
    groups = [{k: _like(v, now.get(k)) for k, v in group.items()}
              for group, now in zip(stored["param_groups"], current, strict=True)]
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def rng_state(device: str, loader: Any) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The RNG streams a next epoch may draw from: torch (CPU, CUDA), the loader's generator, numpy, Python."""
    import random

    import numpy as np
    import torch

    tensors = {"rng.torch": torch.get_rng_state()}
    if str(device).startswith("cuda") and torch.cuda.is_available():
        tensors["rng.cuda"] = torch.cuda.get_rng_state(torch.device(device))
    generator = getattr(loader, "generator", None)
    if generator is not None:
        tensors["rng.loader"] = generator.get_state()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    return {"numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
            "python": [version, list(internal), gauss]}, tensors


def load_rng_state(stored: dict[str, Any], tensors: dict[str, torch.Tensor], device: str, loader: Any) -> None:
    import random

    import numpy as np
    import torch

    torch.set_rng_state(tensors["rng.torch"])
    if "rng.cuda" in tensors and str(device).startswith("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"], torch.device(device))
    generator = getattr(loader, "generator", None)
    if generator is not None and "rng.loader" in tensors:
        generator.set_state(tensors["rng.loader"])
    kind, keys, pos, has_gauss, cached = stored["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    version, internal, gauss = stored["python"]
    random.setstate((version, tuple(internal), gauss))

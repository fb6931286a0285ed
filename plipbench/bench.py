"""``plipbench bench``: the default benchmark, end to end, from nothing.

1. pre-train each of the suite's ``pretrain`` backbones once per seed ``0..seeds-1`` (model s is
   pre-trained with seed s; cached under ``$PLIPBENCH_CACHE/pretrain`` by config hash, seed and a hash
   of the pre-training code; the synthetic corpus and the downstream twins are generated into the
   cache on first use);
2. evaluate every backbone (plus every baseline whose weights are on this machine) on every task
   of the suite: model s with protocol seed s; a backbone with fixed weights with every protocol
   seed. One result JSON per (backbone, task, protocol, seed) goes into ``results/<suite>``;
3. print the leaderboard and write it as Markdown (``results/LEADERBOARD.md`` for the mini suite).

``check``: rerun into a temporary folder and compare with the committed results under the
statistical rule of :mod:`plipbench.leaderboard.reproduction`; every failing, missing or extra cell
is listed.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plipbench.errors import ConfigError
from plipbench.evaluation.tasks import SuiteBackbone, TaskRegistry


@dataclass
class BenchReport:
    suite: str
    out: Path
    backbones: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    differences: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # superseded result files deleted from the suite's folder
    leaderboard_markdown: str = ""
    seeds: list[int] = field(default_factory=list)
    leaderboard: Any = None
    reproduction: Any = None  # ReproductionReport with --check


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _pretrain_code_hash() -> str:
    """sha256 of plipbench's version and the source of the pre-training and PLIP model code: a cached model is
    reused only if the same code would train it again."""
    import hashlib

    from plipbench import __version__

    package = Path(__file__).resolve().parent
    h = hashlib.sha256(__version__.encode())
    for folder in ("pretrain", "models/plip"):
        for path in sorted((package / folder).rglob("*.py")):
            h.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def pretrained_backbone(entry: SuiteBackbone, *, seed: int = 0, progress: bool) -> tuple[str, dict[str, Any]]:
    """Pre-train (or reuse) the entry's model for training seed ``seed``; returns its spec and info for results."""
    import hashlib
    import json

    from plipbench.environment import cache_root
    from plipbench.pretrain.config import load_config
    from plipbench.pretrain.trainer import pretrain

    config = load_config(entry.pretrain, [*entry.overrides, f"train.seed={seed}"])
    recipe = load_config(entry.pretrain, [*entry.overrides, "train.seed=0"]).config_hash()
    steps = "all" if entry.max_steps is None else str(entry.max_steps)
    code = _pretrain_code_hash()
    key = hashlib.sha256(f"{config.config_hash()}|{steps}|{code}".encode()).hexdigest()[:12]
    run = cache_root() / "pretrain" / f"{_slug(entry.name)}-seed{seed}-{key}"
    summary_path = run / "pretrain_summary.json"
    if not summary_path.is_file():
        if run.exists():  # an interrupted earlier attempt: resume it
            pretrain(config, run, resume=True, max_steps=entry.max_steps, progress=progress)
        else:
            pretrain(config, run, max_steps=entry.max_steps, progress=progress)
    summary = json.loads(summary_path.read_text())
    info = {"pretraining_seconds": summary["seconds"], "pretraining_steps": summary["steps"],
            "pretraining_config": config.name, "pretraining_overrides": entry.overrides,
            "pretraining_corpus": summary["corpus_fingerprint"], "pretraining_seed": seed,
            "pretraining_recipe": hashlib.sha256(f"{recipe}|{steps}".encode()).hexdigest()}
    return f"plip:{run / 'model'}", info


def present_baselines() -> tuple[list[tuple[str, str]], list[str]]:
    """``(name, spec)`` of every baseline with real weights on this machine, and a reason for each other.

    Baselines without weights (random initialisation) are not added: the suite has its own floor.
    """
    from plipbench.models.baselines import list_baselines, weights_hint

    present, skipped = [], []
    for baseline, path, error in list_baselines():
        if baseline is None:
            skipped.append(f"baseline {path.name}: invalid ({error})")
        elif baseline.weights_present():
            present.append((baseline.name, str(path)))
        elif baseline.weights is not None:
            skipped.append(f"baseline {baseline.name}: weights not on this machine; {weights_hint(baseline)}")
    return present, skipped


def run_bench(
    suite: str = "mini",
    *,
    out: str | Path | None = None,
    leaderboard_file: str | Path | None = None,
    check: str | Path | None = None,
    seeds: int | None = None,
    progress: bool = True,
    registry: TaskRegistry | None = None,
) -> BenchReport:
    """Run the suite end to end (see the module docstring); ``seeds`` overrides the suite's ``seeds:``."""
    from plipbench.evaluation.results import load_results
    from plipbench.evaluation.runner import DatasetCache, evaluate, resolve_seeds
    from plipbench.io import atomic_write_text
    from plipbench.leaderboard import build_leaderboard
    from plipbench.leaderboard.reproduction import CheckRule, check_reproduction

    registry = registry or TaskRegistry()
    spec = registry.suite(suite)
    if not spec.backbones:
        raise ConfigError(f"suite {suite!r} lists no backbones to benchmark")
    seed_list = resolve_seeds(0, spec.seeds if seeds is None else seeds)
    started = time.perf_counter()
    tmp_dir = None
    committed = None
    if check is not None:
        check = Path(check)
        if not check.is_dir():
            raise ConfigError(f"--check {check}: no committed results folder there")
        committed = load_results(check)  # read (and validated) before the compute, not after
        tmp_dir = Path(tempfile.mkdtemp(prefix="plipbench-check-"))
        out_dir = tmp_dir / suite
    else:
        out_dir = Path(out) if out is not None else Path("results") / suite
    report = BenchReport(suite=suite, out=out_dir, seeds=seed_list)
    try:
        entries: list[tuple[str, str, dict[str, Any], int | None]] = []
        t0 = time.perf_counter()
        for entry in spec.backbones:
            for seed in seed_list:
                if entry.pretrain is not None:
                    model_spec, info = pretrained_backbone(entry, seed=seed, progress=progress)
                    entries.append((entry.name, model_spec, info, seed))
                elif seed == seed_list[0]:
                    entries.append((entry.name, entry.spec, {}, None))  # fixed weights: protocol seeds only
        report.timings["pretraining_s"] = round(time.perf_counter() - t0, 1)
        if spec.include_baselines:
            present, skipped = present_baselines()
            entries += [(name, s, {}, None) for name, s in present]
            report.skipped += skipped
        t0 = time.perf_counter()
        produced: set[Path] = set()
        datasets = DatasetCache(progress)  # every backbone reads (and fingerprints) each dataset once per run
        for name, model_spec, info, seed in entries:
            frame = evaluate(model_spec, suite=suite, out=out_dir, name=name, registry=registry, dataset_cache=datasets,
                             backbone_info=info, progress=progress, backbone_seed=seed,
                             seed=seed_list[0], seeds=None if seed is not None else len(seed_list),
                             suite_tag=suite)
            report.backbones.append({"name": name, "spec": model_spec, "seed": seed, **info,
                                     "runs": int((frame.status != "skipped").sum())})
            report.skipped += [f"{name} / {r.task} ({r.protocol}): {r.reason}"
                               for r in frame.itertuples() if r.status == "skipped" and (seed or 0) == seed_list[0]]
            produced.update(Path(p) for p in frame.path.dropna())
        report.timings["evaluation_s"] = round(time.perf_counter() - t0, 1)
        keep = {p.resolve() for p in produced}
        results = [r for r in load_results(out_dir) if Path(r.source_path or "").resolve() in keep]
        board = build_leaderboard(results, with_ci=True)
        report.leaderboard = board
        report.leaderboard_markdown = board.to_markdown()
        if committed is not None:
            report.reproduction = check_reproduction(committed, results, CheckRule(**spec.check))
            report.differences = list(report.reproduction.problems)
        else:
            target = Path(leaderboard_file) if leaderboard_file is not None else leaderboard_path(out_dir, suite)
            atomic_write_text(target, _leaderboard_page(suite, report.leaderboard_markdown, seed_list))
            report.removed = _remove_superseded(out_dir, keep, suite)  # only once everything succeeded
    finally:
        if tmp_dir is not None:
            shutil.rmtree(tmp_dir, ignore_errors=True)
    report.timings["total_s"] = round(time.perf_counter() - started, 1)
    return report


def _remove_superseded(out_dir: Path, keep: set[Path], suite: str) -> list[str]:
    """Delete result JSONs in the folder that an earlier ``bench`` of this suite wrote and this run did not
    produce again (a backbone, task, protocol or seed dropped from the suite), so the folder and its leaderboard
    hold exactly the suite's cells. Files of other origin (a user's own ``plipbench eval --out`` results, notes)
    are never touched."""
    from plipbench.evaluation.results import TaskResult, looks_like_result

    removed = []
    for path in sorted(out_dir.glob("*.json")):
        if path.resolve() in keep or not looks_like_result(path):
            continue
        try:
            result = TaskResult.load(path)
        except Exception:  # noqa: BLE001 - not a readable result: leave it alone
            continue
        if result.details.get("suite") != suite:
            continue
        path.unlink()
        removed.append(path.name)
    return removed


def leaderboard_path(out_dir: Path, suite: str) -> Path:
    """Where bench writes a suite's Markdown leaderboard: ``LEADERBOARD.md`` next to the results folder for the
    default suite (``results/LEADERBOARD.md``), ``LEADERBOARD-<suite>.md`` for any other, so that running one
    suite never overwrites another's page."""
    return out_dir.parent / ("LEADERBOARD.md" if suite == "mini" else f"LEADERBOARD-{suite}.md")


def _leaderboard_page(suite: str, table: str, seeds: list[int]) -> str:
    check = (f"and reproduced by CI (`plipbench bench --suite {suite} --check results/{suite}`)" if suite == "mini"
             else f"and checked with `plipbench bench --suite {suite} --check results/{suite}` (CI runs only the mini "
                  "suite's check)")
    return (
        f"# plipbench leaderboard: `{suite}` suite\n\n"
        f"Produced by `plipbench bench --suite {suite}` with {len(seeds)} training seed(s) ({', '.join(map(str, seeds))}) "
        f"{check}. Scores are percentages "
        "of the task's main score, means over seeds; see README.md for what this synthetic benchmark can and "
        "cannot show.\n\n" + table + "\n"
    )



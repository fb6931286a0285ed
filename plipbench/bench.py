"""``plipbench bench``: the default benchmark, end to end, from nothing.

1. pre-train each of the suite's ``pretrain`` backbones (cached by config hash under
   ``$PLIPBENCH_CACHE/pretrain``; the synthetic corpus and the downstream twins are generated
   into the cache on first use);
2. evaluate every backbone (plus every baseline whose weights are on this machine) on every task
   of the suite, writing one result JSON per (backbone, task, protocol) into ``results/<suite>``;
3. print the leaderboard and write it as Markdown (``results/LEADERBOARD.md`` for the mini suite).

``check``: rerun into a temporary folder and compare every score with the committed results within
the suite's per-metric tolerances; every differing, missing or extra cell is listed.
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
    removed: list[str] = field(default_factory=list)  # stale result files deleted from the suite's folder
    leaderboard_markdown: str = ""


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def pretrained_backbone(entry: SuiteBackbone, *, progress: bool) -> tuple[str, dict[str, Any]]:
    """Pre-train (or reuse) the entry's model; returns its backbone spec and info for the results."""
    import json

    from plipbench.environment import cache_root
    from plipbench.pretrain.config import load_config
    from plipbench.pretrain.trainer import pretrain

    config = load_config(entry.pretrain, entry.overrides)
    steps = "all" if entry.max_steps is None else str(entry.max_steps)
    run = cache_root() / "pretrain" / f"{_slug(entry.name)}-{config.config_hash()[:12]}-{steps}"
    summary_path = run / "pretrain_summary.json"
    if not summary_path.is_file():
        if run.exists():  # an interrupted earlier attempt: resume it
            pretrain(config, run, resume=True, max_steps=entry.max_steps, progress=progress)
        else:
            pretrain(config, run, max_steps=entry.max_steps, progress=progress)
    summary = json.loads(summary_path.read_text())
    info = {"pretraining_seconds": summary["seconds"], "pretraining_steps": summary["steps"],
            "pretraining_config": config.name, "pretraining_overrides": entry.overrides,
            "pretraining_corpus": summary["corpus_fingerprint"]}
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
    progress: bool = True,
    registry: TaskRegistry | None = None,
) -> BenchReport:
    from plipbench.evaluation.results import load_results
    from plipbench.evaluation.runner import evaluate
    from plipbench.io import atomic_write_text
    from plipbench.leaderboard import build_leaderboard

    registry = registry or TaskRegistry()
    spec = registry.suite(suite)
    if not spec.backbones:
        raise ConfigError(f"suite {suite!r} lists no backbones to benchmark")
    started = time.perf_counter()
    tmp_dir = None
    if check is not None:
        check = Path(check)
        if not check.is_dir():
            raise ConfigError(f"--check {check}: no committed results folder there")
        tmp_dir = Path(tempfile.mkdtemp(prefix="plipbench-check-"))
        out_dir = tmp_dir / suite
    else:
        out_dir = Path(out) if out is not None else Path("results") / suite
    report = BenchReport(suite=suite, out=out_dir)
    try:
        entries: list[tuple[str, str, dict[str, Any]]] = []
        t0 = time.perf_counter()
        for entry in spec.backbones:
            if entry.pretrain is not None:
                model_spec, info = pretrained_backbone(entry, progress=progress)
            else:
                model_spec, info = entry.spec, {}
            entries.append((entry.name, model_spec, info))
        report.timings["pretraining_s"] = round(time.perf_counter() - t0, 1)
        if spec.include_baselines:
            present, skipped = present_baselines()
            entries += [(name, s, {}) for name, s in present]
            report.skipped += skipped
        t0 = time.perf_counter()
        produced: set[Path] = set()
        for name, model_spec, info in entries:
            frame = evaluate(model_spec, suite=suite, out=out_dir, name=name, registry=registry,
                             backbone_info=info, progress=progress)
            report.backbones.append({"name": name, "spec": model_spec, **info,
                                     "runs": int((frame.status != "skipped").sum())})
            report.skipped += [f"{name} / {r.task} ({r.protocol}): {r.reason}"
                               for r in frame.itertuples() if r.status == "skipped"]
            produced.update(Path(p) for p in frame.path.dropna())
        report.timings["evaluation_s"] = round(time.perf_counter() - t0, 1)
        report.removed = _remove_stale_results(out_dir, produced)
        results = load_results(out_dir)
        board = build_leaderboard(results, with_ci=True)
        report.leaderboard_markdown = board.to_markdown()
        if check is not None:
            report.differences = compare_results(load_results(check), results, spec.tolerances)
        else:
            target = Path(leaderboard_file) if leaderboard_file is not None else out_dir.parent / "LEADERBOARD.md"
            atomic_write_text(target, _leaderboard_page(suite, report.leaderboard_markdown))
    finally:
        if tmp_dir is not None:
            shutil.rmtree(tmp_dir, ignore_errors=True)
    report.timings["total_s"] = round(time.perf_counter() - started, 1)
    return report


def _remove_stale_results(out_dir: Path, produced: set[Path]) -> list[str]:
    """Delete result JSONs in the suite's folder that this run did not produce (a backbone, task or protocol
    dropped from the suite), so the folder and its leaderboard hold exactly the suite's cells."""
    from plipbench.evaluation.results import TaskResult

    keep = {p.resolve() for p in produced}
    removed = []
    for path in sorted(out_dir.glob("*.json")):
        if path.resolve() in keep:
            continue
        try:
            TaskResult.load(path)
        except Exception:  # noqa: BLE001 - not a result file: leave it alone
            continue
        path.unlink()
        removed.append(path.name)
    return removed


def _leaderboard_page(suite: str, table: str) -> str:
    return (
        f"# plipbench leaderboard: `{suite}` suite\n\n"
        f"Produced by `plipbench bench --suite {suite}` and reproduced by CI (`plipbench bench --suite {suite} "
        f"--check results/{suite}`). Scores are percentages of the task's main score; see README.md for what this "
        "synthetic benchmark can and cannot show.\n\n" + table + "\n"
    )


def compare_results(expected: list[Any], actual: list[Any], tolerances: dict[str, float]) -> list[str]:
    """Every cell (backbone, task, protocol, metric) that differs by more than its tolerance, or is missing."""
    default = tolerances.get("default", 0.0)
    key = lambda r: (r.backbone, r.task, r.protocol)  # noqa: E731
    want = {key(r): r for r in expected}
    got = {key(r): r for r in actual}
    problems = []
    for k in sorted(set(want) | set(got)):
        if k not in got:
            problems.append(f"{' / '.join(k)}: missing from the rerun")
            continue
        if k not in want:
            problems.append(f"{' / '.join(k)}: not in the committed results")
            continue
        for metric, value in sorted(want[k].scores.items()):
            new = got[k].scores.get(metric)
            tol = tolerances.get(metric, default)
            if new is None:
                problems.append(f"{' / '.join(k)} {metric}: missing from the rerun")
            elif abs(new - value) > tol:
                problems.append(f"{' / '.join(k)} {metric}: committed {value:.4f}, rerun {new:.4f} "
                                f"(|diff| {abs(new - value):.4f} > tolerance {tol})")
    return problems

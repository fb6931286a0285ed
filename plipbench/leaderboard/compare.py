"""Paired comparison of two backbones, task by task, on the same queries and seeds (see :mod:`.seeds`)."""

from __future__ import annotations

import difflib
import math
from typing import Any

from plipbench.errors import ConfigError
from plipbench.evaluation.results import TaskResult
from plipbench.leaderboard import significance
from plipbench.leaderboard.aggregate import Column as _Column
from plipbench.leaderboard.aggregate import TableView, _column_sort_key, filter_results

COMPARE_COLUMNS = ("task_family", "protocol", "task", "metric", "n", "seeds_a", "seeds_b", "paired_seeds", "score_a",
                   "score_b", "difference", "low", "high", "p_value", "significant", "note")
UNKNOWN_VARIANCE_NOTE = "one seed of a trained model: training variance unknown, no significance claimed"


def compare_backbones(results: list[TaskResult], a: str, b: str, *, alpha: float = 0.05,
                      n_resamples: int = significance.DEFAULT_RESAMPLES,
                      confidence: float = significance.DEFAULT_CONFIDENCE, seed: int = significance.DEFAULT_SEED,
                      protocol: str | None = None, task_family: str | None = None) -> Any:
    """One row per (task, protocol) both backbones have: seed means, ``a - b``, its CI, the p-value, significance.

    The test is the two-level paired bootstrap of :func:`plipbench.leaderboard.seeds.paired_cells`: queries are
    paired, and seeds too when both backbones have the same seeds. Scores, differences and bounds are fractions.
    ``significant`` is ``p_value < alpha``, or None where either side is one seed of a trained model (training
    variance unknown) or has no per-query data (``note`` says which). The one-line summary is in
    ``frame.attrs["summary"]``. Unknown backbone names, backbones with no common task, and tasks whose query counts
    differ are ConfigErrors.
    """
    import pandas as pd

    from plipbench.leaderboard.seeds import group_cells, paired_cells

    results = filter_results(results, protocol=protocol, task_family=task_family)
    known = sorted({r.backbone for r in results})
    for name in (a, b):
        if name not in known:
            close = difflib.get_close_matches(name, known, n=3)
            hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
            raise ConfigError(f"--compare: unknown backbone {name!r}; known backbones: {', '.join(known)}{hint}")
    if a == b:
        raise ConfigError(f"--compare needs two different backbones, got {a!r} twice")
    cells = group_cells([r for r in results if r.backbone in (a, b)])
    mine = {name: {(t, p): c for (bb, t, p), c in cells.items() if bb == name} for name in (a, b)}
    common = sorted(set(mine[a]) & set(mine[b]), key=lambda k: _column_sort_key(_column_of(mine[a][k].first)))
    if not common:
        raise ConfigError(f"--compare: {a!r} and {b!r} share no (task, protocol); nothing to compare")
    rows = []
    for key in common:
        ca, cb = mine[a][key], mine[b][key]
        metric = ca.metric
        if cb.metric != metric:
            raise ConfigError(f"--compare: task {key[0]!r} ({key[1]}) ranks by {metric!r} for {a!r} but by "
                              f"{cb.metric!r} for {b!r}")
        paired = paired_cells(ca, cb, metric, n_resamples=n_resamples, confidence=confidence, seed=seed)
        notes = []
        if ca.first.provenance.dataset_fingerprint != cb.first.provenance.dataset_fingerprint:
            notes.append("dataset fingerprints differ")
        significant: bool | None
        if paired is None:
            low = high = p_value = math.nan
            n, paired_seeds, significant = None, False, None
            notes.append("no per-query data: no CI or p-value")
        else:
            low, high, p_value, n = paired["low"], paired["high"], paired["p_value"], paired["n"]
            paired_seeds = paired["paired_seeds"]
            if paired["training_variance_unknown"]:
                significant = None
                notes.append(UNKNOWN_VARIANCE_NOTE)
            else:
                significant = bool(p_value < alpha)
        rows.append({"task_family": ca.first.task_family, "protocol": ca.protocol, "task": ca.task,
                     "metric": metric, "n": n, "seeds_a": ca.n_seeds, "seeds_b": cb.n_seeds,
                     "paired_seeds": paired_seeds, "score_a": ca.mean(), "score_b": cb.mean(),
                     "difference": ca.mean() - cb.mean(), "low": low, "high": high, "p_value": p_value,
                     "significant": significant, "note": "; ".join(notes)})
    frame = pd.DataFrame(rows, columns=list(COMPARE_COLUMNS))
    frame.attrs.update({"a": a, "b": b, "alpha": alpha, "n_resamples": n_resamples, "confidence": confidence,
                        "seed": seed, "summary": compare_summary(frame, a, b, alpha, n_resamples)})
    return frame


def _column_of(r: TaskResult) -> _Column:
    return _Column(r.task_family, r.protocol, r.task, r.main_score, r.dataset)


def compare_summary(frame: Any, a: str, b: str, alpha: float = 0.05,
                    n_resamples: int = significance.DEFAULT_RESAMPLES) -> str:
    decided = frame["significant"].map(lambda v: v is True or v is False)
    sig = frame["significant"].map(lambda v: v is True)
    better = int((sig & (frame["difference"] > 0)).sum())
    worse = int((sig & (frame["difference"] < 0)).sum())
    tested = int(decided.sum())
    unknown = int(frame["note"].str.contains("training variance unknown", regex=False).sum())
    missing = int(frame["p_value"].isna().sum())
    text = (f"{a} vs {b}: {a} is significantly better on {better} and worse on {worse} of {tested} tested "
            f"task(s), no significant difference on {tested - better - worse} (two-level paired bootstrap over "
            f"seeds and queries, {n_resamples} resamples, alpha {alpha:g})")
    if unknown:
        text += f"; {unknown} task(s) from one seed of a trained model: training variance unknown, not tested"
    if missing:
        text += f"; {missing} task(s) without per-query data"
    return text + "."


def compare_view(frame: Any) -> TableView:
    """The comparison as a :class:`TableView` (percent, one decimal; p-value with three decimals)."""
    a, b = frame.attrs["a"], frame.attrs["b"]
    headers = ["task", "protocol", "metric", "n", "seeds", a, b, f"{a} - {b}", f"{frame.attrs['confidence']:.0%} CI",
               "p-value", "significant"]
    rows = []
    for row in frame.to_dict("records"):
        has_ci = not math.isnan(row["low"])
        n = "" if row["n"] is None or (isinstance(row["n"], float) and math.isnan(row["n"])) else str(int(row["n"]))
        seeds = f"{row['seeds_a']}/{row['seeds_b']}" + (" paired" if row["paired_seeds"] else "")
        verdict = {True: "yes", False: "no"}.get(row["significant"], "unknown" if has_ci else "n/a")
        rows.append([row["task"], row["protocol"], row["metric"], n, seeds,
                     f"{100 * row['score_a']:.1f}", f"{100 * row['score_b']:.1f}", f"{100 * row['difference']:+.1f}",
                     f"[{100 * row['low']:+.1f}, {100 * row['high']:+.1f}]" if has_ci else "",
                     f"{row['p_value']:.3f}" if has_ci else "", verdict])
    notes = [frame.attrs["summary"]] + [f"{r['task']} ({r['protocol']}): {r['note']}"
                                        for r in frame.to_dict("records") if r["note"]]
    return TableView(f"paired comparison: {a} vs {b}", [("", len(headers))], headers, rows,
                     ["result"] * len(rows), notes)


def compare_records(frame: Any) -> dict[str, Any]:
    """JSON-ready comparison: percent with one decimal (p-value with four), plus the summary."""
    def pct(value: Any) -> float | None:
        return None if value is None or math.isnan(value) else round(100 * float(value), 1)

    rows = []
    for row in frame.to_dict("records"):
        rows.append({**{k: row[k] for k in ("task_family", "protocol", "task", "metric")},
                     "seeds_a": int(row["seeds_a"]), "seeds_b": int(row["seeds_b"]),
                     "paired_seeds": bool(row["paired_seeds"]),
                     "n": None if row["n"] is None or (isinstance(row["n"], float) and math.isnan(row["n"]))
                     else int(row["n"]),
                     "score_a": pct(row["score_a"]), "score_b": pct(row["score_b"]),
                     "difference": pct(row["difference"]), "low": pct(row["low"]), "high": pct(row["high"]),
                     "p_value": None if math.isnan(row["p_value"]) else round(float(row["p_value"]), 4),
                     "significant": None if row["significant"] is None else bool(row["significant"]),
                     "note": row["note"]})
    attrs = frame.attrs
    return {"a": attrs["a"], "b": attrs["b"], "alpha": attrs["alpha"], "n_resamples": attrs["n_resamples"],
            "confidence": attrs["confidence"], "seed": attrs["seed"], "units": "percent", "rows": rows,
            "summary": attrs["summary"]}


def compare_csv(frame: Any) -> str:
    """CSV of the comparison in percent (one decimal), bounds as ``low``/``high`` columns."""
    import io

    out = frame.copy()
    for column in ("score_a", "score_b", "difference", "low", "high"):
        out[column] = (100 * out[column]).round(1)
    out["p_value"] = out["p_value"].round(4)
    from plipbench.leaderboard.escape import csv_safe

    buffer = io.StringIO()
    csv_safe(out).to_csv(buffer, index=False, lineterminator="\n")  # names are text, never formulas
    return buffer.getvalue()

"""``plipbench bench --check``: does a rerun reproduce the committed results, up to training noise?

Another CPU (or thread count) runs other math kernels, sums differ in their last bits, and a few hundred training
steps turn that into a different model. So a rerun is compared with the committed results as two samples of
seeds, not number by number. The rule, per cell (backbone, task, protocol):

* **Exact cells** (nothing was trained anywhere: an untrained floor or fixed weights, with a zero-shot protocol):
  the same computation on the same data, so on the same machine every metric of every seed is equal (to 1e-9),
  and that passes as ``exact``. On another CPU or thread count the features differ in their last bits, and a
  near-tie between two gallery items can flip, so a few queries' scores move (measured: one thread against two,
  the floor's zero-shot mAPs moved by 1e-8 to 4e-7). Such a cell is then tested on its test items, the one noise
  source left: per query, the rerun's main-score value minus the committed one, averaged over the seeds, and a
  paired t-test of those differences over the queries (``N - 1`` degrees of freedom). Its p-value joins the Holm
  family below. A cell without per-query data (or with other queries), or whose stored per-query values (AP,
  ranks, ...) are all equal while a score differs (a real change: last-bit noise moves them too), must be
  equal. For
  every cell the dataset fingerprint (the generated data's hashes) and the number of seeds must be equal.
* **Trained cells**, main score only: the difference of the two seed means ``d = mean(rerun) - mean(committed)``
  is tested with ``t = d / (sigma * sqrt(1/S_c + 1/S_r))`` against Student's t. ``sigma`` is the largest of

  - the seed standard deviation pooled over every trained cell of the same column (task, protocol), in both runs,
    with ``sum(S - 1)`` degrees of freedom (the column's backbones share its noise level: this gives the test
    enough degrees of freedom to have power at three seeds);
  - the cell's own seed standard deviation, pooled over the two runs (so one noisy backbone is not judged by a
    quieter column);
  - a floor, ``sd_floor`` (default 0.5 points), so near-constant cells do not fail on a one-query change.

  The degrees of freedom are those of the chosen estimate (the column's for the floor).
* **Backbones** (a broken objective moves many cells of one backbone a little, each too little for its own test
  at three seeds): per backbone with two or more trained cells, each seed's *composite* is the mean over those
  cells of ``value / sigma`` (the cell's sigma above), and the composites' means are compared with the same t-test.
  The composites' seed variance is pooled over every such backbone and both runs (``sum(S_c + S_r - 2)`` degrees
  of freedom), with a floor of the mean of ``sd_floor / sigma`` over the backbone's cells.
* **Family-wise error:** the p-values of all trained cells and all backbones are Holm-corrected together, and a
  cell or backbone fails when its adjusted p-value is below ``alpha`` (default 0.01). So a correct rerun fails the
  whole check with probability at most ``alpha``, whatever the number of cells, while a change that moves a cell
  by several seed deviations, or a backbone's cells by a couple each, fails it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from plipbench.evaluation.results import TaskResult
from plipbench.evaluation.tasks import DETERMINISTIC_PROTOCOLS
from plipbench.leaderboard.seeds import Cell, group_cells

EXACT_TOLERANCE = 1e-9


class CheckRule(BaseModel):
    """The statistics of ``bench --check`` (suite field ``check:``); see the module docstring."""

    model_config = ConfigDict(extra="forbid")

    alpha: float = Field(0.01, gt=0.0, lt=1.0, description="family-wise error rate (Holm) over the trained cells")
    sd_floor: float = Field(0.005, ge=0.0, description="floor of the seed standard deviation (fraction)")


@dataclass
class CellCheck:
    """The verdict on one cell."""

    backbone: str
    task: str
    protocol: str
    metric: str
    kind: str  # "exact" | "trained"
    committed: list[float]
    rerun: list[float]
    difference: float = 0.0
    sigma: float | None = None
    sigma_source: str | None = None  # "column" | "cell" | "floor"
    df: float | None = None
    t: float | None = None
    p_value: float | None = None
    p_holm: float | None = None
    ok: bool = True
    reason: str = ""

    @property
    def name(self) -> str:
        return f"{self.backbone} / {self.task} / {self.protocol}"

    def describe(self) -> str:
        c, r = _mean(self.committed), _mean(self.rerun)
        text = (f"{self.name} {self.metric}: committed {100 * c:.2f} ({len(self.committed)} seeds), rerun "
                f"{100 * r:.2f} ({len(self.rerun)} seeds), diff {100 * self.difference:+.2f}")
        if self.kind == "exact" and self.t is not None:  # numerically different: the paired per-query test
            text += (f", per-query paired t {self.t:+.2f}, df {self.df:g}, p {self.p_value:.2g}, Holm p "
                     f"{self.p_holm if self.p_holm is not None else 1:.2g}")
        elif self.kind == "trained" and self.t is not None:
            text += (f", sigma {100 * (self.sigma or 0):.2f} ({self.sigma_source}), t {self.t:+.2f}, df {self.df:g}, "
                     f"p {self.p_value:.2g}, Holm p {self.p_holm:.2g}")
        return text + (f": {self.reason}" if self.reason else "")


@dataclass
class BackboneCheck:
    """The verdict on one backbone's composite (see the module docstring)."""

    backbone: str
    cells: int
    committed: list[float]  # the composite of each committed seed
    rerun: list[float]
    difference: float = 0.0
    sigma: float | None = None
    df: float | None = None
    t: float | None = None
    p_value: float | None = None
    p_holm: float | None = None
    ok: bool = True
    reason: str = ""

    def describe(self) -> str:
        return (f"{self.backbone} (composite of {self.cells} trained cells, in seed deviations): committed "
                f"{_mean(self.committed):+.2f}, rerun {_mean(self.rerun):+.2f}, diff {self.difference:+.2f}, sigma "
                f"{self.sigma or 0:.2f}, t {self.t or 0:+.2f}, df {self.df:g}, p {self.p_value:.2g}, Holm p "
                f"{self.p_holm if self.p_holm is not None else 1:.2g}" + (f": {self.reason}" if self.reason else ""))


@dataclass
class ReproductionReport:
    rule: CheckRule
    cells: list[CellCheck] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # every failure, one line each
    backbones: list[BackboneCheck] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        trained = [c for c in self.cells if c.kind == "trained" and c.p_holm is not None]
        exact = [c for c in self.cells if c.kind == "exact"]
        numeric = [c for c in exact if c.t is not None]
        text = (f"{len(trained)} trained cell(s) tested (Holm, family-wise alpha {self.rule.alpha:g}), "
                f"{len(exact)} exact cell(s)")
        if numeric:
            text += (f" ({len(exact) - len(numeric)} bit-equal, {len(numeric)} not, tested per query: smallest "
                     f"Holm p {min(c.p_holm if c.p_holm is not None else 1.0 for c in numeric):.3g})")
        if trained:
            worst = min(trained, key=lambda c: c.p_holm if c.p_holm is not None else 1.0)
            text += f"; smallest Holm p {worst.p_holm:.3g} ({worst.name}, |t| {abs(worst.t or 0):.2f})"
        tested = [b for b in self.backbones if b.p_holm is not None]
        if tested:
            worst_b = min(tested, key=lambda b: b.p_holm if b.p_holm is not None else 1.0)
            text += (f"; {len(tested)} backbone composite(s), smallest Holm p {worst_b.p_holm:.3g} "
                     f"({worst_b.backbone}, |t| {abs(worst_b.t or 0):.2f})")
        return text + f"; {len(self.problems)} problem(s)"

    def to_records(self) -> dict[str, Any]:
        return {"rule": self.rule.model_dump(), "ok": self.ok, "summary": self.summary(), "problems": self.problems,
                "cells": [c.__dict__ for c in self.cells], "backbones": [b.__dict__ for b in self.backbones]}


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def _ss(values: list[float]) -> float:
    m = _mean(values)
    return sum((v - m) ** 2 for v in values)


def is_exact(cell: Cell) -> bool:
    """Nothing in the cell was trained: every seed is a zero-shot run of untrained or fixed weights."""
    for r in cell.results:
        if r.seed is None:
            continue
        steps = (r.provenance.backbone or {}).get("pretraining_steps")
        untrained_protocol = (r.provenance.protocol_options or {}).get("base", r.protocol) in DETERMINISTIC_PROTOCOLS
        if not (r.zero_shot and untrained_protocol and steps == 0):
            return False
    return True


def holm(p_values: list[float]) -> list[float]:
    """Holm step-down adjusted p-values (same order as the input)."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def check_reproduction(expected: list[TaskResult], actual: list[TaskResult],
                       rule: CheckRule | None = None) -> ReproductionReport:
    """Compare a rerun (``actual``) with committed results (``expected``) under ``rule``."""
    rule = rule or CheckRule()
    report = ReproductionReport(rule)
    want, got = group_cells(expected), group_cells(actual)
    for key in sorted(set(want) - set(got)):
        report.problems.append(f"{' / '.join(key)}: missing from the rerun")
    for key in sorted(set(got) - set(want)):
        report.problems.append(f"{' / '.join(key)}: not in the committed results")
    common = sorted(set(want) & set(got))
    trained: list[CellCheck] = []
    numeric: list[CellCheck] = []  # exact cells that differ in their last bits
    for key in common:
        c, r = want[key], got[key]
        check = CellCheck(*key, metric=c.metric, kind="exact" if is_exact(c) and is_exact(r) else "trained",
                          committed=c.values(), rerun=r.values())
        check.difference = _mean(check.rerun) - _mean(check.committed)
        report.cells.append(check)
        if c.first.provenance.dataset_fingerprint != r.first.provenance.dataset_fingerprint:
            check.ok, check.reason = False, "the dataset fingerprints differ (generated data changed)"
        elif c.seeds != r.seeds:
            check.ok, check.reason = False, f"seeds differ: committed {c.seeds}, rerun {r.seeds}"
        elif check.kind == "exact":
            changed = _first_change(c, r)
            if changed and _paired_query_test(check, c, r):
                numeric.append(check)  # numerically different: judged on its test items, with the trained cells
            elif changed:
                check.ok, check.reason = False, changed
        else:
            trained.append(check)
        if not check.ok:
            report.problems.append(check.describe())
    test_trained(trained, rule, report, numeric)
    return report


def _first_change(c: Cell, r: Cell) -> str:
    """The first metric of a seed that differs by more than 1e-9, described; "" when every one is equal."""
    for rc, rr in zip(c.results, r.results, strict=True):
        for metric, value in sorted(rc.scores.items()):
            new = rr.scores.get(metric)
            if new is None or abs(new - value) > EXACT_TOLERANCE:
                return f"deterministic cell changed: seed {rc.seed} {metric} committed {value!r}, rerun {new!r}"
    return ""


def _paired_query_test(check: CellCheck, c: Cell, r: Cell) -> bool:
    """The paired t-test over the test items of an exact cell whose rerun differs (module docstring); False
    (the cell must then be equal) when the cell has no per-query data for its main score, the two runs scored
    other queries, or none of its stored per-query values (AP, ranks, ...) moved although a score did."""
    import numpy as np
    from scipy import stats

    from plipbench.leaderboard.significance import per_query_metric

    diffs = []
    for rc, rr in zip(c.results, r.results, strict=True):
        a, b = per_query_metric(rc, check.metric), per_query_metric(rr, check.metric)
        if a is None or b is None or len(a) != len(b) or len(a) < 2:
            return False
        diffs.append(np.asarray(b, dtype=np.float64) - np.asarray(a, dtype=np.float64))
    if all(rc.per_query == rr.per_query for rc, rr in zip(c.results, r.results, strict=True)):
        return False  # no per-query value moved, yet a score did: not last-bit noise, which moves them too
    per_query = np.mean(diffs, axis=0)
    n = len(per_query)
    mean, sd = float(per_query.mean()), float(per_query.std(ddof=1))
    check.sigma, check.sigma_source, check.df = sd, "queries", float(n - 1)
    se = sd / math.sqrt(n)
    check.t = mean / se if se > 0 else (0.0 if mean == 0 else math.inf)
    check.p_value = float(2 * stats.t.sf(abs(check.t), n - 1))
    check.reason = f"not bit-equal: {int(np.count_nonzero(per_query))} of {n} queries moved"
    return True


def test_trained(trained: list[CellCheck], rule: CheckRule, report: ReproductionReport,
                 numeric: list[CellCheck] | None = None) -> None:
    """The t-tests of the trained cells and of the backbones' composites, Holm-corrected together with the
    paired per-query tests of the exact cells that differ in their last bits (``numeric``); failures go into
    ``report.problems`` (see the module docstring)."""

    # seed variance pooled per column, over both runs
    column_ss: dict[tuple[str, str], tuple[float, int]] = {}
    for check in trained:
        ss, df = column_ss.get((check.task, check.protocol), (0.0, 0))
        for values in (check.committed, check.rerun):
            ss, df = ss + _ss(values), df + len(values) - 1
        column_ss[(check.task, check.protocol)] = (ss, df)
    for check in trained:
        col_ss, col_df = column_ss[(check.task, check.protocol)]
        own_df = len(check.committed) + len(check.rerun) - 2
        own_ss = _ss(check.committed) + _ss(check.rerun)
        candidates = [(rule.sd_floor, "floor", col_df if col_df > 0 else math.inf)]
        if col_df > 0:
            candidates.append((math.sqrt(col_ss / col_df), "column", col_df))
        if own_df > 0:
            candidates.append((math.sqrt(own_ss / own_df), "cell", own_df))
        sigma, check.sigma_source, df = max(candidates, key=lambda x: x[0])
        _t_test(check, sigma, df)
    report.backbones = _backbone_composites(trained, rule)
    tests: list[CellCheck | BackboneCheck] = [*trained, *(numeric or []),
                                              *[b for b in report.backbones if b.p_value is not None]]
    for check, adjusted in zip(tests, holm([c.p_value for c in tests]), strict=True):  # type: ignore[misc]
        check.p_holm = adjusted
        if adjusted < rule.alpha:
            check.ok = False
            check.reason = "; ".join(x for x in (check.reason, f"Holm-adjusted p {adjusted:.2g} < alpha "
                                                                f"{rule.alpha:g}") if x)
            report.problems.append(check.describe())


def _backbone_composites(trained: list[CellCheck], rule: CheckRule) -> list[BackboneCheck]:
    """Per backbone with >= 2 trained cells of equal seed counts: each seed's mean of ``value / sigma``."""

    by_backbone: dict[str, list[CellCheck]] = {}
    for check in trained:
        by_backbone.setdefault(check.backbone, []).append(check)
    out: list[BackboneCheck] = []
    ss, df = 0.0, 0
    for backbone, cells in sorted(by_backbone.items()):
        cells = [c for c in cells if c.sigma]
        sizes = {(len(c.committed), len(c.rerun)) for c in cells}
        if len(cells) < 2 or len(sizes) != 1:
            continue
        (n_c, n_r), = sizes

        def composite(values_of: Any, n: int, cells: list[CellCheck] = cells) -> list[float]:
            return [sum(values_of(c)[j] / (c.sigma or 1.0) for c in cells) / len(cells) for j in range(n)]

        check = BackboneCheck(backbone, len(cells), composite(lambda c: c.committed, n_c),
                              composite(lambda c: c.rerun, n_r))
        check.difference = _mean(check.rerun) - _mean(check.committed)
        ss, df = ss + _ss(check.committed) + _ss(check.rerun), df + n_c + n_r - 2
        check.sigma = sum(rule.sd_floor / (c.sigma or 1.0) for c in cells) / len(cells)  # the floor, for now
        out.append(check)
    pooled = math.sqrt(ss / df) if df > 0 else 0.0
    for check in out:
        _t_test(check, max(check.sigma or 0.0, pooled), df if df > 0 else math.inf)
    return out


def _t_test(check: CellCheck | BackboneCheck, sigma: float, df: float) -> None:
    """``t = d / (sigma * sqrt(1/S_c + 1/S_r))`` against Student's t with ``df``; sets sigma, df, t, p_value."""
    from scipy import stats

    check.sigma, check.df = sigma, df
    se = sigma * math.sqrt(1 / len(check.committed) + 1 / len(check.rerun))
    check.t = check.difference / se if se > 0 else (0.0 if check.difference == 0 else math.inf)
    check.p_value = float(2 * stats.t.sf(abs(check.t), df))

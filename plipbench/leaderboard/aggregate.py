"""From a list of :class:`TaskResult` to a :class:`Leaderboard` (rows = backbones, columns = task x protocol).

Conventions:

* Each column is one (task family, protocol, task); its value is the mean over seeds of the results'
  ``main_score`` (see :mod:`plipbench.leaderboard.seeds` for cells, seeds and what a folder may mix). Columns are ordered
  by family (text-reid, image-reid, attributes, domain-generalization, then others alphabetically), protocol
  (zero-shot, linear-probe, few-shot-*, fine-tune, then others) and task name.
* **Average rank**: each column ranks the backbones that have it (1 = best = highest score, ties share the
  average of their ranks, missing cells are left out); a backbone's average rank is the mean over the columns it
  has. Rows are sorted by average rank, then by name.
* **Cost** (blank when unknown): parameters from ``provenance.backbone["parameter_count"]`` (the first result that
  has it), images per second from ``provenance.timings["images_per_second"]`` (median over the backbone's
  results: it depends on the task's image size and batch), pre-training time from
  ``provenance.backbone["pretraining_seconds"]``.
* **Dagger** (†): a zero-shot cell of a backbone whose pre-training included the task's training data
  (``saw_task_training_data``), so it is not truly zero-shot.
* **Section sign** (§): a cell with a result run in the opt-in paper-compatible mode (``selection: test``,
  ``details.paper_compatible``): its recipe selected the epoch (or stepped its plateau) on the test split, as the
  reference code does, so it is not a held-out number.
* **Degree sign** (°): a short run, ``details.short_run``: the cell's recipe ran fewer epochs than the reference
  recipe (the mini suite's named short overrides); the footnote lists each recipe with its overrides.
* **CI** (``with_ci=True``): the two-level bootstrap of :mod:`plipbench.leaderboard.seeds` (seeds and queries).
* **Reference** (``reference="plip-paper"``): paper numbers whose (paper task, protocol, metric) equal a column's
  are added as extra, unranked rows labelled "reported in the PLIP paper, not reproduced"; when none matches, the
  reference tables are shown alone, after the leaderboard.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from plipbench.errors import ConfigError
from plipbench.evaluation.results import TaskResult
from plipbench.leaderboard import significance
from plipbench.leaderboard.reference import paper_task_of, reference_label, reference_results

FAMILY_ORDER = ("text-reid", "image-reid", "attributes", "domain-generalization", "parsing", "person-search")
PROTOCOL_ORDER = ("zero-shot", "gt-boxes", "linear-probe", "few-shot", "fine-tune")
DAGGER = "†"
UNKNOWN_MARK = "*"
PAPER_COMPATIBLE_MARK = "§"
SHORT_RUN_MARK = "°"
REFERENCE_MARK = "‡"
COST_COLUMNS = ("parameters", "images_per_second", "pretraining_hours")


@dataclass(frozen=True)
class Column:
    """One leaderboard column: a task under a protocol, scored by its main metric."""

    task_family: str
    protocol: str
    task: str
    metric: str
    dataset: str
    paper_task: str | None = None

    @property
    def id(self) -> str:
        return f"{self.task_family}/{self.protocol}/{self.task}"

    @property
    def header(self) -> str:
        return f"{self.task} {self.metric}"

    @property
    def group(self) -> str:
        return f"{self.task_family} · {self.protocol}"


@dataclass
class TableView:
    """A rendered-agnostic table: grouped headers, string cells, per-row kind ("result" or "reference")."""

    title: str
    groups: list[tuple[str, int]]
    headers: list[str]
    rows: list[list[str]]
    kinds: list[str]
    footnotes: list[str] = field(default_factory=list)


def _order(value: str, order: tuple[str, ...]) -> tuple[int, str]:
    for i, name in enumerate(order):
        if value == name or value.startswith(name):
            return i, value
    return len(order), value


def _column_sort_key(column: Column) -> tuple:
    return _order(column.task_family, FAMILY_ORDER), _order(column.protocol, PROTOCOL_ORDER), column.task


@dataclass
class Leaderboard:
    """Rows = backbones; pandas frames of fractions (``scores``, ``low``, ``high``), ranks and costs.

    Renderers: :meth:`to_markdown`, :meth:`to_csv`, :meth:`to_json`, :meth:`to_html`, :meth:`rich_table`.
    """

    columns: list[Column]
    scores: Any  # DataFrame, index backbone, columns Column.id, fractions
    low: Any
    high: Any
    daggers: set[tuple[str, str]]  # (backbone, column id)
    average_rank: Any  # Series
    costs: Any  # DataFrame, index backbone, COST_COLUMNS
    reference_beside: Any | None = None  # DataFrame: index row label, columns Column.id, percent as printed
    reference_alone: Any | None = None  # reference_results() frame when nothing matched
    reference_name: str | None = None
    with_ci: bool = False
    ci_options: dict[str, Any] = field(default_factory=dict)
    per_attribute: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)
    # column id -> backbone -> a fine-tune's per-epoch curve (details["curve"] of the cell's first result)
    curves: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)
    # column id -> backbone -> class -> IoU (fraction), the mean over the cell's seeds of details["per_class_iou"]
    per_class_iou: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    n_seeds: Any | None = None  # DataFrame like scores: results (seeds) behind each cell
    seed_values: dict[tuple[str, str], list[tuple[int | None, float]]] = field(default_factory=dict)
    unknown_variance: set[tuple[str, str]] = field(default_factory=set)  # trained, but one seed only
    paper_compatible: set[tuple[str, str]] = field(default_factory=set)  # selection: test (the reference's mode)
    # (backbone, column id) -> "recipe (override=value, ...)" of a short run (details.short_run)
    short_runs: dict[tuple[str, str], str] = field(default_factory=dict)

    @property
    def backbones(self) -> list[str]:
        return list(self.scores.index)

    def footnotes(self) -> list[str]:
        notes = ["Scores in percent. Avg rank: each task column ranks the backbones (1 = best, ties get the average "
                 "rank, missing cells are left out); a backbone's average rank is the mean over the columns it has."]
        if self.daggers:
            notes.append(f"{DAGGER} zero-shot, but the backbone's pre-training included this task's training data, "
                         "so it is not truly zero-shot.")
        notes.append("Each cell is the mean over the row's training seeds (column seeds; a cell with another count "
                     "says so in brackets). Pre-training seed s gives model s, whose protocols run with seed s; a "
                     "backbone with fixed weights varies only through its protocols' seeds, and its zero-shot cell "
                     "is one deterministic run.")
        if self.with_ci:
            o = self.ci_options
            notes.append(f"± is half the width of the {o['confidence']:.0%} two-level percentile bootstrap CI "
                         f"({o['n_resamples']} resamples, seed {o['seed']}): each resample draws the seeds with "
                         "replacement (spread corrected by sqrt(S/(S-1))) and one resample of the test queries/"
                         "images shared by the seeds, so it counts training-seed and test-sample noise; no ± where "
                         "the results have no per-query data.")
        if self.paper_compatible:
            notes.append(f"{PAPER_COMPATIBLE_MARK} paper-compatible mode (selection: test): the epoch was selected "
                         "on the test split, as the reference code does, so the number is not a held-out one.")
        if self.short_runs:
            runs = "; ".join(sorted(set(self.short_runs.values())))
            notes.append(f"{SHORT_RUN_MARK} short run: the reference recipe with fewer epochs than it has, so not the "
                         f"recipe's number ({runs}; each result's details.recipe holds the recipe as run).")
        if self.unknown_variance:
            notes.append(f"{UNKNOWN_MARK} one seed of a trained model: its ± counts test samples only; training "
                         "variance unknown.")
        notes.append("Cost: params = provenance.backbone.parameter_count, img/s = provenance.timings."
                     "images_per_second (median over tasks), pre-train = provenance.backbone.pretraining_seconds "
                     "(s, min or h; mean over the seeds' models); blank when unknown.")
        if self.reference_beside is not None and len(self.reference_beside):
            notes.append(f"{REFERENCE_MARK} {reference_label(self.reference_name)} (values as printed, table named in the row); "
                         "not ranked.")
        return notes

    # ---- views shared by the Markdown, terminal and HTML renderers -------------------------------------------
    def cell_text(self, backbone: str, column: Column) -> str:
        import math

        value = self.scores.at[backbone, column.id]
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return ""
        text = f"{100 * value:.1f}"
        low, high = self.low.at[backbone, column.id], self.high.at[backbone, column.id]
        if self.with_ci and not (math.isnan(low) or math.isnan(high)):
            text += f" ±{100 * (high - low) / 2:.1f}"
        if (backbone, column.id) in self.daggers:
            text += DAGGER
        if (backbone, column.id) in self.unknown_variance:
            text += UNKNOWN_MARK
        if (backbone, column.id) in self.paper_compatible:
            text += PAPER_COMPATIBLE_MARK
        if (backbone, column.id) in self.short_runs:
            text += SHORT_RUN_MARK
        n = self.cell_seeds(backbone, column)
        if n and n != self.row_seeds(backbone):
            text += f" [{n}]"
        return text

    def cell_seeds(self, backbone: str, column: Column) -> int:
        return 0 if self.n_seeds is None else int(self.n_seeds.at[backbone, column.id])

    def row_seeds(self, backbone: str) -> int:
        """The number of seeds most of the row's cells have (what the ``seeds`` column shows)."""
        if self.n_seeds is None:
            return 0
        counts = [int(v) for v in self.n_seeds.loc[backbone] if int(v) > 0]
        return max(set(counts), key=lambda c: (counts.count(c), c)) if counts else 0

    def views(self) -> list[TableView]:
        """The main table, then (when nothing matched) one table per reference paper table."""
        groups: list[tuple[str, int]] = [("", 1)]
        for column in self.columns:
            if groups[-1][0] == column.group:
                groups[-1] = (column.group, groups[-1][1] + 1)
            else:
                groups.append((column.group, 1))
        groups += [("rank", 2), ("cost", 3)]
        headers = ["backbone", *[c.header for c in self.columns], "avg rank", "seeds", "params", "img/s",
                   "pre-train"]
        rows, kinds = [], []
        for backbone in self.backbones:
            costs = self.costs.loc[backbone]
            rows.append([backbone, *[self.cell_text(backbone, c) for c in self.columns],
                         f"{self.average_rank[backbone]:.2f}", str(self.row_seeds(backbone) or ""),
                         _format_params(costs["parameters"]),
                         _format_number(costs["images_per_second"], "{:.1f}"),
                         _format_duration(costs["pretraining_hours"])])
            kinds.append("result")
        if self.reference_beside is not None:
            for label, values in self.reference_beside.iterrows():
                rows.append([f"{label} {REFERENCE_MARK}",
                             *[_format_reference(values.get(c.id)) for c in self.columns], "", "", "", "", ""])
                kinds.append("reference")
        views = [TableView("plipbench leaderboard", groups, headers, rows, kinds, self.footnotes())]
        if self.reference_alone is not None:
            views += reference_views(self.reference_alone)
        return views

    # ---- renderers -------------------------------------------------------------------------------------------
    def to_markdown(self) -> str:
        from plipbench.leaderboard.render_text import views_to_markdown

        return views_to_markdown(self.views())

    def to_records(self) -> dict[str, Any]:
        from plipbench.leaderboard.render_text import leaderboard_records

        return leaderboard_records(self)

    def to_json(self) -> str:
        import json

        return json.dumps(self.to_records(), indent=2, ensure_ascii=False) + "\n"

    def to_csv(self) -> str:
        from plipbench.leaderboard.render_text import leaderboard_csv

        return leaderboard_csv(self)

    def to_html(self) -> str:
        from plipbench.leaderboard.render_html import leaderboard_html

        return leaderboard_html(self)

    def rich_table(self) -> Any:
        """A ``rich`` renderable (a Group of tables with their footnotes)."""
        from plipbench.leaderboard.render_terminal import views_to_rich

        return views_to_rich(self.views())


def _format_params(value: Any) -> str:
    import math

    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    value = float(value)
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if value >= scale:
            return f"{value / scale:.1f}{suffix}"
    return f"{value:.0f}"


def _format_number(value: Any, template: str) -> str:
    import math

    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return template.format(float(value))


def _format_duration(hours: Any) -> str:
    """Pre-training time in the unit that keeps it readable: seconds, minutes or hours."""
    import math

    if hours is None or (isinstance(hours, float) and math.isnan(hours)):
        return ""
    seconds = float(hours) * 3600
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{float(hours):.1f} h"


def _format_reference(value: Any) -> str:
    import math

    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{float(value):g}"


def reference_views(frame: Any) -> list[TableView]:
    """One view per paper table: rows = the paper's rows, columns = (dataset, metric) grouped by protocol."""
    views = []
    reference_text = frame["label"].iloc[0] if len(frame) else reference_label(None)
    for table, part in frame.groupby("table", sort=False):
        keys = list(dict.fromkeys(zip(part["protocol"], part["dataset"], part["metric"], strict=True)))
        keys.sort(key=lambda k: _order(k[0], PROTOCOL_ORDER)[0])
        groups: list[tuple[str, int]] = [("", 1)]
        for protocol, _, _ in keys:
            if groups[-1][0] == protocol:
                groups[-1] = (protocol, groups[-1][1] + 1)
            else:
                groups.append((protocol, 1))
        rows = []
        for label, entries in part.groupby("row_label", sort=False):
            values = {(e["protocol"], e["dataset"], e["metric"]): e["value"] for e in entries.to_dict("records")}
            rows.append([label, *[_format_reference(values.get(k)) for k in keys]])
        section = part["section"].iloc[0]
        views.append(TableView(f"{table}: {reference_text} (brief section {section})", groups,
                               ["paper row", *[f"{d} {m}" for _, d, m in keys]], rows, ["reference"] * len(rows),
                               [f"All values in this table are {reference_text}; percent as printed."]))
    return views


def filter_results(results: list[TaskResult], *, protocol: str | None = None,
                   task_family: str | None = None) -> list[TaskResult]:
    """Keep the results of one protocol and/or task family; a filter that keeps nothing is a ConfigError."""
    kept = results
    for name, value, attribute in (("--protocol", protocol, "protocol"), ("--task-family", task_family, "task_family")):
        if value is None:
            continue
        known = sorted({getattr(r, attribute) for r in kept})
        kept = [r for r in kept if getattr(r, attribute) == value]
        if not kept:
            raise ConfigError(f"{name} {value!r} matches no result; available: {', '.join(known) or 'none'}")
    return kept


def build_leaderboard(results: list[TaskResult], *, with_ci: bool = False, reference: str | None = None,
                      protocol: str | None = None, task_family: str | None = None,
                      n_resamples: int = significance.DEFAULT_RESAMPLES,
                      confidence: float = significance.DEFAULT_CONFIDENCE,
                      seed: int = significance.DEFAULT_SEED) -> Leaderboard:
    """Aggregate results into a :class:`Leaderboard` (see the module docstring for every convention).

    ``results`` may be empty only when ``reference`` is given (the reference is then shown alone). Two results
    for the same (backbone, task, protocol) are a ConfigError.
    """
    import numpy as np
    import pandas as pd

    from plipbench.leaderboard.seeds import cell_interval, group_cells

    results = filter_results(results, protocol=protocol, task_family=task_family) if results else []
    if not results and reference is None:
        raise ConfigError("no results to put on a leaderboard")
    columns: dict[str, Column] = {}
    for r in results:
        column = Column(r.task_family, r.protocol, r.task, r.main_score, r.dataset, paper_task_of(r))
        previous = columns.setdefault(column.id, column)
        if previous.metric != column.metric:
            raise ConfigError(f"task {r.task!r} ({r.protocol}) has main score {previous.metric!r} in one result "
                              f"and {column.metric!r} in another; columns need one metric")
        if r.main_score not in r.scores:
            raise ConfigError(f"result {r.source_path or r.file_name()}: main score {r.main_score!r} is not among "
                              f"its scores ({', '.join(r.scores)})")
    cells = {(backbone, Column(c.first.task_family, protocol, task, c.metric, c.first.dataset).id): c
             for (backbone, task, protocol), c in group_cells(results).items()}
    ordered = sorted(columns.values(), key=_column_sort_key)
    backbones = sorted({r.backbone for r in results})
    ids = [c.id for c in ordered]
    scores = pd.DataFrame(np.nan, index=backbones, columns=ids, dtype=float)
    low, high = scores.copy(), scores.copy()
    n_seeds = pd.DataFrame(0, index=backbones, columns=ids, dtype=int)
    daggers: set[tuple[str, str]] = set()
    unknown_variance: set[tuple[str, str]] = set()
    paper_compatible: set[tuple[str, str]] = set()
    short_runs: dict[tuple[str, str], str] = {}
    seed_values: dict[tuple[str, str], list[tuple[int | None, float]]] = {}
    per_attribute: dict[str, dict[str, list[dict[str, Any]]]] = {}
    curves: dict[str, dict[str, list[dict[str, Any]]]] = {}
    per_class_iou: dict[str, dict[str, dict[str, float]]] = {}
    ci_options = {"n_resamples": n_resamples, "confidence": confidence, "seed": seed}
    for (backbone, column_id), cell in cells.items():
        scores.at[backbone, column_id] = cell.mean()
        n_seeds.at[backbone, column_id] = cell.n_seeds
        seed_values[(backbone, column_id)] = list(zip(cell.seeds, cell.values(), strict=True))
        r = cell.first
        if r.saw_task_training_data and (r.zero_shot or r.protocol == "zero-shot"):
            daggers.add((backbone, column_id))
        if cell.training_variance_unknown:
            unknown_variance.add((backbone, column_id))
        if any(x.details.get("paper_compatible") or x.provenance.selection_split == "test" for x in cell.results):
            paper_compatible.add((backbone, column_id))
        short = _short_run(cell.results)
        if short is not None:
            short_runs[(backbone, column_id)] = short
        if with_ci:
            ci = cell_interval(cell, **ci_options)
            if ci is not None:
                low.at[backbone, column_id], high.at[backbone, column_id] = ci["low"], ci["high"]
        table = r.details.get("per_attribute")
        if isinstance(table, list) and table:
            per_attribute.setdefault(column_id, {})[backbone] = [row for row in table if isinstance(row, dict)]
        per_class = _mean_per_class(cell.results)
        if per_class:
            per_class_iou.setdefault(column_id, {})[backbone] = per_class
        curve = r.details.get("curve")
        if isinstance(curve, list) and any(isinstance(point, dict) for point in curve):
            curves.setdefault(column_id, {})[backbone] = [point for point in curve if isinstance(point, dict)]
    ranks = scores.rank(axis=0, ascending=False, method="average", na_option="keep")
    average_rank = ranks.mean(axis=1, skipna=True) if backbones else pd.Series(dtype=float)
    order = sorted(backbones, key=lambda b: (average_rank[b], b))
    costs = _costs(results, backbones)
    board = Leaderboard(
        columns=ordered, scores=scores.loc[order], low=low.loc[order], high=high.loc[order], daggers=daggers,
        average_rank=average_rank.loc[order], costs=costs.loc[order], with_ci=with_ci, ci_options=ci_options,
        per_attribute=per_attribute, curves=curves, per_class_iou=per_class_iou, reference_name=reference, n_seeds=n_seeds.loc[order],
        seed_values=seed_values, unknown_variance=unknown_variance, paper_compatible=paper_compatible,
        short_runs=short_runs,
    )
    if reference is not None:
        _attach_reference(board, reference_results(reference))
    return board


def _short_run(results: list[TaskResult]) -> str | None:
    """``"recipe (key=value, ...)"`` when a result of the cell is a short run of a recipe, else None."""
    for r in results:
        recipe = r.details.get("recipe")
        if r.details.get("short_run") and isinstance(recipe, dict):
            overrides = recipe.get("overrides") or {}
            given = ", ".join(f"{k}={v}" for k, v in sorted(overrides.items()))
            return f"{recipe.get('name', '?')} ({given})" if given else str(recipe.get("name", "?"))
    return None


def _mean_per_class(results: list[TaskResult]) -> dict[str, float]:
    """Per-class IoU (``details["per_class_iou"]`` of parsing results) averaged over the seeds that carry it."""
    tables = [r.details.get("per_class_iou") for r in results]
    tables = [t for t in tables if isinstance(t, dict) and t]
    if not tables:
        return {}
    names = list(dict.fromkeys(n for t in tables for n in t))
    return {n: statistics.mean(float(t[n]) for t in tables if isinstance(t.get(n), (int, float))) for n in names
            if any(isinstance(t.get(n), (int, float)) for t in tables)}


def _costs(results: list[TaskResult], backbones: list[str]) -> Any:
    import pandas as pd

    rows = {}
    for backbone in backbones:
        mine = [r for r in results if r.backbone == backbone]
        params = next((r.provenance.backbone["parameter_count"] for r in mine
                       if isinstance(r.provenance.backbone.get("parameter_count"), (int, float))), None)
        speeds = [float(r.provenance.timings["images_per_second"]) for r in mine
                  if "images_per_second" in r.provenance.timings]
        per_seed = {r.seed: float(r.provenance.backbone["pretraining_seconds"]) for r in mine
                    if isinstance(r.provenance.backbone.get("pretraining_seconds"), (int, float))}
        pretrain = statistics.mean(per_seed.values()) if per_seed else None  # one model per seed
        rows[backbone] = {"parameters": float(params) if params is not None else float("nan"),
                          "images_per_second": statistics.median(speeds) if speeds else float("nan"),
                          "pretraining_hours": float(pretrain) / 3600 if pretrain is not None else float("nan")}
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(COST_COLUMNS), dtype=float)


def _attach_reference(board: Leaderboard, frame: Any) -> None:
    """Put matching paper numbers beside the columns; keep the whole reference alone when none matches."""
    import pandas as pd

    matched: dict[str, dict[str, float]] = {}
    for column in board.columns:
        if column.paper_task is None:
            continue
        hits = frame[(frame["paper_task"] == column.paper_task) & (frame["protocol"] == column.protocol)
                     & (frame["metric"] == column.metric)]
        for entry in hits.to_dict("records"):
            matched.setdefault(entry["row_label"], {})[column.id] = entry["value"]
    if matched:
        board.reference_beside = pd.DataFrame.from_dict(matched, orient="index").reindex(
            columns=[c.id for c in board.columns])
    else:
        board.reference_alone = frame

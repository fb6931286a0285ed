"""Markdown, CSV and JSON renderings of a leaderboard (and of a paired comparison).

Markdown is written here as a plain pipe table (``tabulate``, which ``DataFrame.to_markdown`` needs, is not a
dependency). The column groups (task family · protocol) form the header row; the column names form the first,
bold, body row. CSV and JSON carry numbers in percent with one decimal (CI bounds as separate ``low``/``high``
fields) and, in JSON, the exact fractions as well: every cell has ``mean``, ``ci_low``, ``ci_high`` (fractions,
with ``--ci``), ``n_seeds`` and ``per_seed`` (``[{"seed", "value"}]``).
"""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING, Any

from plipbench.leaderboard.escape import csv_safe
from plipbench.leaderboard.escape import md_cell as _md_cell
from plipbench.leaderboard.reference import reference_label

if TYPE_CHECKING:  # pragma: no cover
    from plipbench.leaderboard.aggregate import Leaderboard, TableView


def view_to_markdown(view: TableView) -> str:
    group_row = []
    for label, span in view.groups:
        group_row += [label] + [""] * (span - 1)
    has_groups = any(label for label, _ in view.groups)
    lines = [f"### {_md_cell(view.title)}", ""]
    header = group_row if has_groups else view.headers
    lines.append("| " + " | ".join(_md_cell(c) for c in header) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
    if has_groups:
        lines.append("| " + " | ".join(f"**{_md_cell(c)}**" for c in view.headers) + " |")
    for row in view.rows:
        lines.append("| " + " | ".join(_md_cell(c) for c in row) + " |")
    if view.footnotes:
        lines.append("")
        lines += [f"- {_md_cell(note)}" for note in view.footnotes]
    return "\n".join(lines) + "\n"


def views_to_markdown(views: list[TableView]) -> str:
    return "\n".join(view_to_markdown(view) for view in views)


def _pct(value: Any) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return round(100 * float(value), 1)


def _plain(value: Any, digits: int = 1) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return round(float(value), digits)


def leaderboard_records(board: Leaderboard) -> dict[str, Any]:
    """A JSON-ready dict: columns, rows (percent, one decimal; exact fractions), reference, footnotes."""
    columns = [{"id": c.id, "task": c.task, "task_family": c.task_family, "protocol": c.protocol,
                "metric": c.metric, "dataset": c.dataset, "paper_task": c.paper_task} for c in board.columns]
    rows = []
    for backbone in board.backbones:
        cells = {}
        for c in board.columns:
            value = board.scores.at[backbone, c.id]
            if math.isnan(value):
                continue
            per_seed = board.seed_values.get((backbone, c.id), [])
            cell = {"score": _pct(value), "mean": float(value), "fraction": float(value),
                    "n_seeds": len(per_seed),
                    "per_seed": [{"seed": s, "value": float(v)} for s, v in per_seed],
                    "training_variance_unknown": (backbone, c.id) in board.unknown_variance,
                    "not_truly_zero_shot": (backbone, c.id) in board.daggers}
            if board.with_ci:
                low, high = board.low.at[backbone, c.id], board.high.at[backbone, c.id]
                cell["low"], cell["high"] = _pct(low), _pct(high)
                cell["ci_low"] = None if math.isnan(low) else float(low)
                cell["ci_high"] = None if math.isnan(high) else float(high)
            cells[c.id] = cell
        cost = board.costs.loc[backbone]
        rows.append({"backbone": backbone, "average_rank": _plain(board.average_rank[backbone], 3),
                     "cost": {"parameters": _plain(cost["parameters"], 0),
                              "images_per_second": _plain(cost["images_per_second"]),
                              "pretraining_hours": _plain(cost["pretraining_hours"], 2)},
                     "cells": cells})
    records: dict[str, Any] = {"columns": columns, "rows": rows, "footnotes": board.footnotes(),
                               "ci": board.ci_options if board.with_ci else None}
    if board.reference_name is not None:
        reference: dict[str, Any] = {"name": board.reference_name, "label": reference_label(board.reference_name), "units": "percent"}
        if board.reference_beside is not None:
            reference["beside"] = [
                {"row": label, "cells": {k: float(v) for k, v in values.items() if not math.isnan(v)}}
                for label, values in board.reference_beside.iterrows()
            ]
        if board.reference_alone is not None:
            reference["alone"] = board.reference_alone.drop(columns=["label"]).to_dict("records")
        records["reference"] = reference
    return records


def leaderboard_csv(board: Leaderboard) -> str:
    """Wide CSV: one row per backbone (then reference rows); column names ``family/protocol/task metric``."""
    import pandas as pd

    names = {c.id: f"{c.id} {c.metric}" for c in board.columns}
    table: dict[str, list[Any]] = {"backbone": [], "source": [], "average_rank": [], "seeds": [], "parameters": [],
                                   "images_per_second": [], "pretraining_hours": []}
    for c in board.columns:
        table[names[c.id]] = []
        if board.with_ci:
            table[f"{names[c.id]} low"], table[f"{names[c.id]} high"] = [], []
    table["not_truly_zero_shot"] = []
    for backbone in board.backbones:
        cost = board.costs.loc[backbone]
        table["backbone"].append(backbone)
        table["source"].append("plipbench")
        table["average_rank"].append(_plain(board.average_rank[backbone], 3))
        table["seeds"].append(board.row_seeds(backbone))
        table["parameters"].append(_plain(cost["parameters"], 0))
        table["images_per_second"].append(_plain(cost["images_per_second"]))
        table["pretraining_hours"].append(_plain(cost["pretraining_hours"], 2))
        for c in board.columns:
            table[names[c.id]].append(_pct(board.scores.at[backbone, c.id]))
            if board.with_ci:
                table[f"{names[c.id]} low"].append(_pct(board.low.at[backbone, c.id]))
                table[f"{names[c.id]} high"].append(_pct(board.high.at[backbone, c.id]))
        table["not_truly_zero_shot"].append(";".join(c for b, c in sorted(board.daggers) if b == backbone))
    if board.reference_beside is not None:
        for label, values in board.reference_beside.iterrows():
            for key in table:
                table[key].append(None)
            table["backbone"][-1], table["source"][-1] = label, reference_label(board.reference_name)
            for c in board.columns:
                table[names[c.id]][-1] = _plain(values.get(c.id), 2)
    if not board.backbones and board.reference_alone is not None:
        return _reference_csv(board.reference_alone)
    buffer = io.StringIO()
    csv_safe(pd.DataFrame(table)).to_csv(buffer, index=False, lineterminator="\n")
    text = buffer.getvalue()
    if board.reference_alone is not None:
        # a second CSV section, after a comment line: no reference task matched the user's columns
        text += f"\n# {reference_label(board.reference_name)} (no task matched; values in percent as printed)\n"
        text += _reference_csv(board.reference_alone)
    return text


def _reference_csv(frame: Any) -> str:
    """The reference numbers in long form (one row per paper table cell), each row labelled."""
    buffer = io.StringIO()
    csv_safe(frame.drop(columns=["row_label"])).to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue()

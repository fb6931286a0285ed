"""A self-contained HTML report: one file, inline CSS, plots as ``data:image/png;base64`` URIs, no links out.

Plots (matplotlib, Agg backend): one bar chart per task column (bars = backbones, error bars = the bootstrap CI
when it was computed, paper numbers as hatched bars labelled "paper, not reproduced"), and for attribute tasks a
per-attribute mA breakdown from ``details["per_attribute"]`` when the results carry it, and for fine-tunes the
per-epoch curve from ``details["curve"]`` (training loss, the sum of the loss parts, and the validation score where
there is one; one line per backbone, the cell's first seed). Parsing columns get a per-class IoU table (classes x
backbones, percent, the mean over the cell's seeds of ``details["per_class_iou"]``), the best backbone per class in
bold.
"""

from __future__ import annotations

import base64
import html
import io
import math
from typing import TYPE_CHECKING, Any

from plipbench.leaderboard.escape import plot_label
from plipbench.leaderboard.reference import reference_label

if TYPE_CHECKING:  # pragma: no cover
    from plipbench.leaderboard.aggregate import Column, Leaderboard, TableView

_CSS = """
body { font-family: system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; }
td { text-align: right; white-space: nowrap; } td:first-child { text-align: left; }
th.group { background: #eef; } th { background: #f6f6f6; }
tr.reference td { font-style: italic; color: #666; background: #fafafa; }
ul.notes { color: #555; font-size: 0.85em; }
figure { display: inline-block; margin: 0.5em; vertical-align: top; }
figcaption { font-size: 0.85em; color: #555; }
"""


def _figure_uri(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def view_to_html(view: TableView) -> str:
    parts = [f"<h2>{html.escape(view.title)}</h2>", "<table>"]
    if any(label for label, _ in view.groups):
        parts.append("<tr>" + "".join(f'<th class="group" colspan="{span}">{html.escape(label)}</th>'
                                      for label, span in view.groups) + "</tr>")
    parts.append("<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in view.headers) + "</tr>")
    for row, kind in zip(view.rows, view.kinds, strict=True):
        parts.append(f'<tr class="{kind}">' + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>")
    parts.append("</table>")
    if view.footnotes:
        parts.append('<ul class="notes">' + "".join(f"<li>{html.escape(n)}</li>" for n in view.footnotes) + "</ul>")
    return "\n".join(parts)


def _page(title: str, body: list[str]) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
            f"<h1>{html.escape(title)}</h1>\n" + "\n".join(body) + "\n</body>\n</html>\n")


def _task_plot(board: Leaderboard, column: Column) -> str | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names, values, errors, hatches = [], [], [], []
    for backbone in board.backbones:
        value = board.scores.at[backbone, column.id]
        if math.isnan(value):
            continue
        low, high = board.low.at[backbone, column.id], board.high.at[backbone, column.id]
        names.append(backbone)
        values.append(100 * value)
        has_ci = board.with_ci and not (math.isnan(low) or math.isnan(high))
        errors.append((100 * (value - low), 100 * (high - value)) if has_ci else (0.0, 0.0))
        hatches.append("")
    if board.reference_beside is not None and column.id in board.reference_beside:
        for label, value in board.reference_beside[column.id].items():
            if not math.isnan(value):
                names.append(f"{label}\n(paper, not reproduced)")
                values.append(float(value))
                errors.append((0.0, 0.0))
                hatches.append("//")
    if not names:
        return None
    fig, ax = plt.subplots(figsize=(6.0, 0.45 * len(names) + 1.2))
    positions = range(len(names))
    bars = ax.barh(list(positions), values, xerr=[[e[0] for e in errors], [e[1] for e in errors]], capsize=3,
                   color=["#c9c9c9" if h else "#4c72b0" for h in hatches])
    for bar, hatch in zip(bars, hatches, strict=True):
        bar.set_hatch(hatch)
    ax.set_yticks(list(positions), [plot_label(n) for n in names], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(plot_label(f"{column.metric} (%)"))
    ax.set_title(plot_label(f"{column.task} · {column.protocol}"), fontsize=10)
    return _figure_uri(fig)


def _attribute_plot(column_id: str, tables: dict[str, list[dict[str, Any]]]) -> str | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names: list[str] = []
    for rows in tables.values():
        for row in rows:
            if isinstance(row.get("name"), str) and row["name"] not in names:
                names.append(row["name"])
    if not names:
        return None
    fig, ax = plt.subplots(figsize=(max(6.0, 0.35 * len(names) * max(1, len(tables))), 3.6))
    width = 0.8 / len(tables)
    x = np.arange(len(names))
    for i, (backbone, rows) in enumerate(sorted(tables.items())):
        by_name = {row.get("name"): row.get("mA") for row in rows}
        heights = [100 * float(by_name[n]) if isinstance(by_name.get(n), (int, float)) else np.nan for n in names]
        ax.bar(x + i * width - 0.4 + width / 2, heights, width, label=plot_label(backbone))
    ax.set_xticks(x, [plot_label(n) for n in names], rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("mA per attribute (%)")
    ax.set_title(plot_label(f"{column_id}: per-attribute mA"), fontsize=10)
    ax.legend(fontsize=7)
    return _figure_uri(fig)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _curve_plot(column_id: str, curves: dict[str, list[dict[str, Any]]]) -> str | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = {}
    for backbone, points in sorted(curves.items()):
        loss, val = [], []
        for point in points:
            epoch, parts = _number(point.get("epoch")), point.get("loss")
            if epoch is None:
                continue
            values = [_number(v) for v in parts.values()] if isinstance(parts, dict) else []
            if values and None not in values:
                loss.append((epoch, sum(values)))
            if _number(point.get("val")) is not None:
                val.append((epoch, 100 * _number(point.get("val"))))
        if loss or val:
            lines[backbone] = (loss, val)
    if not lines:
        return None
    with_val = any(val for _, val in lines.values())
    fig, axes = plt.subplots(1, 2 if with_val else 1, figsize=(9.0 if with_val else 5.0, 3.0), squeeze=False)
    for backbone, (loss, val) in lines.items():
        if loss:
            axes[0][0].plot(*zip(*loss, strict=True), marker="o", label=plot_label(backbone))
        if val:
            axes[0][1].plot(*zip(*val, strict=True), marker="o", label=plot_label(backbone))
    axes[0][0].set_xlabel("epoch")
    axes[0][0].set_ylabel("training loss (sum of parts)")
    if with_val:
        axes[0][1].set_xlabel("epoch")
        axes[0][1].set_ylabel("validation score (%)")
    axes[0][0].legend(fontsize=7)
    fig.suptitle(plot_label(f"{column_id}: training curve"), fontsize=10)
    return _figure_uri(fig)


def leaderboard_html(board: Leaderboard) -> str:
    body = [view_to_html(view) for view in board.views()]
    figures = []
    for column in board.columns:
        uri = _task_plot(board, column)
        if uri:
            caption = f"{column.header} ({column.protocol})" + (
                "; error bars: bootstrap CI" if board.with_ci else "")
            figures.append(f'<figure><img alt="{html.escape(column.header)}" src="{uri}">'
                           f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    for column_id, tables in board.per_attribute.items():
        uri = _attribute_plot(column_id, tables)
        if uri:
            figures.append(f'<figure><img alt="per-attribute mA" src="{uri}">'
                           f"<figcaption>{html.escape(column_id)}: per-attribute mA</figcaption></figure>")
    for column_id, curves in board.curves.items():
        uri = _curve_plot(column_id, curves)
        if uri:
            figures.append(f'<figure><img alt="training curve" src="{uri}">'
                           f"<figcaption>{html.escape(column_id)}: training curve per epoch (first seed)"
                           "</figcaption></figure>")
    if board.per_class_iou:
        body.append("<h2>Per-class IoU</h2>")
        body += [per_class_iou_html(column_id, table) for column_id, table in board.per_class_iou.items()]
    if figures:
        body.append("<h2>Plots</h2>")
        if board.reference_beside is not None:
            body.append(f"<p>Hatched grey bars: {html.escape(reference_label(board.reference_name))}.</p>")
        body += figures
    return _page("plipbench leaderboard", body)


def per_class_iou_html(column_id: str, table: dict[str, dict[str, float]]) -> str:
    """One parsing column's per-class IoU: a row per class, a column per backbone, percent with one decimal."""
    backbones = list(table)
    classes = list(dict.fromkeys(c for b in backbones for c in table[b]))
    head = "".join(f"<th>{html.escape(b)}</th>" for b in backbones)
    rows = []
    for name in classes:
        values = [table[b].get(name) for b in backbones]
        best = max((v for v in values if v is not None), default=None)
        cells = "".join("<td></td>" if v is None else
                        (f"<td><b>{100 * v:.1f}</b></td>" if v == best and len(backbones) > 1 else
                         f"<td>{100 * v:.1f}</td>") for v in values)
        rows.append(f"<tr><td>{html.escape(name)}</td>{cells}</tr>")
    return (f'<table class="per-class-iou"><caption>{html.escape(column_id)}: IoU per class (%, mean over seeds)'
            f"</caption><tr><th>class</th>{head}</tr>{''.join(rows)}</table>")


def views_html(title: str, views: list[TableView]) -> str:
    """A plain report of tables (used for the paired comparison)."""
    return _page(title, [view_to_html(view) for view in views])

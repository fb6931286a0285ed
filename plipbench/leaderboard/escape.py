"""Escaping for the leaderboard's outputs. Backbone and task names come from users (``--name``, a factory's
metadata, a result file from a colleague), so every renderer treats them as text, never as markup:

- Markdown: ``<``, ``>`` and ``&`` become HTML entities (a Markdown viewer renders raw HTML, ``<script>``
  included) and ``|`` is escaped (it would split the cell); newlines become spaces.
- CSV: a cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is a formula to a
  spreadsheet (``=HYPERLINK(...)``); it gets a leading ``'`` (OWASP's CSV-injection advice). Numbers, and
  strings that are plain numbers such as ``-12.3``, stay as they are.
- Matplotlib: ``$`` starts mathtext (``$x^$`` makes the plot fail); :func:`plot_label` escapes it in
  every label, title and legend entry, so the name is drawn as written.
"""

from __future__ import annotations

import math
from typing import Any

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def md_cell(text: Any) -> str:
    """One Markdown table cell (or footnote, or heading) showing ``text`` literally."""
    text = str(text)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("|", "\\|").replace("\r\n", " ").replace("\n", " ").replace("\r", " ")


def _is_number(text: str) -> bool:
    try:
        value = float(text)
    except ValueError:
        return False
    return not math.isnan(value) or text.strip().lower() == "nan"


def csv_cell(value: Any) -> Any:
    """``value`` made safe for a spreadsheet: a string that a spreadsheet would run as a formula gets a
    leading ``'``; numbers and numeric strings (``-12.3``) are returned unchanged.

    >>> csv_cell("=HYPERLINK(\\"http://x\\")"), csv_cell("-12.3"), csv_cell(-12.3), csv_cell("PLIP-mini")
    ('\\'=HYPERLINK("http://x")', '-12.3', -12.3, 'PLIP-mini')
    """
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES) and not _is_number(value):
        return "'" + value
    return value


def csv_safe(frame: Any) -> Any:
    """A copy of a DataFrame with :func:`csv_cell` applied to every text cell and to the column names."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or str(out[column].dtype).startswith(("string", "str")):
            out[column] = out[column].map(csv_cell)
    out.columns = [csv_cell(c) if isinstance(c, str) else c for c in out.columns]
    return out


def plot_label(text: Any) -> str:
    """A matplotlib label that shows ``text`` literally: ``$`` escaped, so mathtext never starts."""
    return str(text).replace("$", r"\$")


"""Rich tables for the terminal: grouped column headers, reference rows dimmed, footnotes under each table."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from plipbench.leaderboard.aggregate import TableView


def view_to_rich(view: TableView) -> Any:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(view.title), show_lines=False, header_style="bold")
    index = 0
    for label, span in view.groups:
        for offset in range(span):
            header = view.headers[index]
            # the group label heads the first column of its group; the others show only their own name
            title = f"{label}\n{header}" if (label and offset == 0) else (f"\n{header}" if label else header)
            # names are text, never rich markup: a backbone called "x[/]" must not break the table
            if index == 0:  # the backbone names, which --compare takes: never cut
                table.add_column(Text(title), justify="left", no_wrap=True,
                                 min_width=name_width(header, [r[0] for r in view.rows]))
            else:
                table.add_column(Text(title), justify="right", overflow="fold")
            index += 1
    for row, kind in zip(view.rows, view.kinds, strict=True):
        table.add_row(*(Text(cell) for cell in row), style="dim italic" if kind == "reference" else None)
    notes = [Text(note, style="dim") for note in view.footnotes]
    return Group(table, *notes)


def views_to_rich(views: list[TableView]) -> Any:
    from rich.console import Group

    return Group(*[view_to_rich(view) for view in views])


def render_plain_text(renderable: Any, width: int = 200) -> str:
    """The renderable as plain text (no colour codes), e.g. for ``--format table --out FILE``."""
    from rich.console import Console

    console = Console(record=True, width=width, color_system=None, force_terminal=False, file=_Null())
    console.print(renderable)
    return console.export_text(styles=False)


class _Null:
    def write(self, _text: str) -> int:
        return 0

    def flush(self) -> None:
        return None


def leaderboard_console() -> Any:
    """A console for leaderboards: the terminal's width when interactive, else 200 columns (a piped or
    logged leaderboard would otherwise be squeezed into 80 columns and truncate every cell)."""
    return table_console()


def table_console() -> Any:
    """A console for tables: the terminal's width when interactive, else 200 columns (rich assumes 80 for a
    pipe or a CI log, and would squeeze every table into it)."""
    import sys

    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=200)


def name_width(header: str, values: list[str]) -> int:
    """The width a column of names needs so that no name is cut (``min_width`` of a ``no_wrap`` column)."""
    return max([len(header), *(len(str(v)) for v in values)])


def add_name_column(table: Any, header: str, values: list[str], **kwargs: Any) -> None:
    """A column of names users must type (tasks, backbones, baselines): never wrapped, never cut."""
    table.add_column(header, no_wrap=True, min_width=name_width(header, values), **kwargs)

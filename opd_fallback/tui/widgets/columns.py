"""Data table column headings that follow the language toggle."""

from __future__ import annotations

from typing import TypeVar

from rich.text import Text
from textual.widgets import DataTable

from opd_fallback.tui.i18n import Lang, tr

CellT = TypeVar("CellT")


def add_columns(table: DataTable[CellT], keys: list[str], lang: Lang) -> None:
    for key in keys:
        table.add_column(tr(key, lang), key=key)


def retranslate_columns(table: DataTable[CellT], lang: Lang) -> None:
    for key, column in table.columns.items():
        column.label = Text(tr(str(key.value), lang))
    table.refresh()

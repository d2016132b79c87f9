"""Day-end cash summary of the logged-in operator, printable for the handover."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from opd_fallback.domain.rules import format_paise
from opd_fallback.tui.i18n import tr
from opd_fallback.tui.screens.base import NAV_BINDINGS, CounterScreen
from opd_fallback.tui.widgets.columns import add_columns, retranslate_columns
from opd_fallback.tui.widgets.tlabel import TLabel

if TYPE_CHECKING:
    from opd_fallback.printing.document import Document
    from opd_fallback.tui.values import CashSummary


class CashScreen(CounterScreen):
    HINTS = "keys.list"
    BINDINGS = [*NAV_BINDINGS, Binding("f10", "print", "Print", id="cash.print", priority=True)]

    def __init__(self) -> None:
        super().__init__()
        self.doc: Document | None = None

    def body(self) -> ComposeResult:
        with Vertical(classes="form"):
            yield TLabel("cash.title", classes="title")
            table: DataTable[str] = DataTable(id="cash", cursor_type="none", zebra_stripes=True)
            yield table
            yield TLabel("cash.print", classes="muted")
            yield Static("", id="form-msg")

    def on_mount(self) -> None:
        add_columns(self.query_one(DataTable), ["col.mode", "col.count", "col.total"], self.counter.lang)
        self.load()

    def retranslate(self) -> None:
        retranslate_columns(self.query_one(DataTable), self.lang)
        self.load()

    def on_screen_resume(self) -> None:
        self.load()

    def load(self) -> None:
        app = self.counter
        if app.session is None:
            return
        app.run_blocking(app.work.cash_summary_doc, app.session, on_done=self._show, group="cash", exclusive=True)

    def _show(self, result: tuple[CashSummary, Document]) -> None:
        summary, self.doc = result
        table = self.query_one(DataTable)
        table.clear()
        for mode, t in summary.by_mode.items():
            table.add_row(mode.upper(), str(t.count), format_paise(t.total_paise))
        table.add_row(tr("cash.voids", self.lang).upper(), str(summary.voids.count),
                      ("-" if summary.voids.total_paise else "") + format_paise(summary.voids.total_paise))
        table.add_row(tr("cash.collected", self.lang).upper(), "", format_paise(summary.collected_paise))
        # what the accounts office checks: each waiver reason and approver, voids by supervisor, reprints
        ap = summary.approvals
        for w in ap.waivers:
            table.add_row(tr("cash.waivers", self.lang, reason=w.reason or "-", who=w.who),
                          str(w.count), format_paise(w.total_paise))
        for v in ap.voids:
            table.add_row(tr("cash.voids_by", self.lang, who=v.who), str(v.count), format_paise(v.total_paise))
        for r in ap.reprints:
            table.add_row(tr("cash.reprints_by", self.lang, who=r.who), str(r.count), "")

    def action_print(self) -> None:
        if self.doc is not None:
            self.counter.print_docs([self.doc],
                                on_done=lambda errs: None if errs else self.query_one("#form-msg", Static).update(
                                    tr("common.done", self.lang)))

"""Reprint any slip, receipt or label from the print spool (failed ones marked)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Input, Static

from opd_fallback.printing.document import Document
from opd_fallback.printing.spool import SpoolEntry
from opd_fallback.tui.i18n import tr
from opd_fallback.tui.screens.base import CounterScreen
from opd_fallback.tui.widgets.columns import add_columns, retranslate_columns
from opd_fallback.tui.widgets.tlabel import TLabel


class ReprintScreen(CounterScreen):
    HINTS = "keys.list"

    def __init__(self) -> None:
        super().__init__()
        self.entries: list[SpoolEntry] = []

    def body(self) -> ComposeResult:
        with Vertical(classes="form"):
            yield TLabel("reprint.title", classes="title")
            yield Input(id="reprint-filter", placeholder="offline no. / receipt / sample id")
            table: DataTable[str] = DataTable(id="spool", cursor_type="row", zebra_stripes=True)
            yield table
            yield Static("", id="form-msg")

    def on_mount(self) -> None:
        add_columns(self.query_one(DataTable), ["col.kind", "col.number", "col.time", "col.printed"], self.counter.lang)
        self.set_focus(self.query_one(Input))
        self.load()

    def retranslate(self) -> None:
        retranslate_columns(self.query_one(DataTable), self.lang)

    def on_screen_resume(self) -> None:
        # F6 starts with an empty search and the cursor in it every time: a number typed then
        # Enter reprints what the clerk typed, never the receipt of the last visit here
        self.query_one(Input).value = ""
        self.query_one("#form-msg", Static).update("")
        self.set_focus(self.query_one(Input))
        self.load()

    def load(self) -> None:
        spool = self.counter.spool
        if spool is None:
            return
        query = self.query_one(Input).value
        self.counter.run_blocking(lambda: spool.entries(query=query), on_done=lambda e: self._shown(query, e),
                                  group="spool", exclusive=True)

    def _shown(self, query: str, entries: list[SpoolEntry]) -> None:
        if query == self.query_one(Input).value:  # an older search's answer never replaces the list
            self._show(entries)

    _to_list = False

    def _show(self, entries: list[SpoolEntry]) -> None:
        self.entries = entries
        if self._to_list and entries:
            self._to_list = False
            self.call_after_refresh(self.query_one(DataTable).focus)
        table = self.query_one(DataTable)
        table.clear()
        for e in entries:
            printed = "✓" if e.printed else f"✗ {tr('reprint.failed_mark', self.lang)}"
            table.add_row(e.kind, e.ref, e.created_at[:16].replace("T", " "), printed)

    def on_input_changed(self, event: Input.Changed) -> None:
        self.load()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        # to the list once it shows what was typed (never the entries of an earlier search)
        self._to_list = True
        self.load()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if not 0 <= event.cursor_row < len(self.entries):
            return
        entry = self.entries[event.cursor_row]
        app = self.counter
        spool = app.spool
        session = self.who
        if spool is None:  # no spool: nothing was kept to reprint
            self.notify("nothing was kept to reprint", severity="warning")
            return

        def load_and_mark() -> Document:
            # a reprint is marked DUPLICATE (VOIDED for a voided receipt) and audited
            marked: Document = app.work.reprint(session, spool.load(entry.path))
            return marked

        # reading the spooled copy is disk work: in a worker, like the print itself
        app.run_blocking(load_and_mark, on_done=self._reprint, on_error=self._unreadable,
                         group="spool")

    def _reprint(self, doc: Document) -> None:
        def done(errors: list[str]) -> None:
            if not errors:
                self.query_one("#form-msg", Static).update(tr("reprint.done", self.lang, title=doc.title))
            self.load()

        self.counter.print_docs([doc], on_done=done)

    def _unreadable(self, exc: BaseException) -> None:
        self.query_one("#form-msg", Static).update(tr("print.failed", self.lang, err=str(exc)))
        self.load()

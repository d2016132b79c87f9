"""The sync queue: ops waiting, synced and flagged, a page at a time, each
with the reason it waits or was flagged."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable

from opd_fallback.tui.ports import QueueRow
from opd_fallback.tui.screens.base import NAV_BINDINGS, CounterScreen
from opd_fallback.tui.values import SYNCED
from opd_fallback.tui.widgets.columns import add_columns, retranslate_columns
from opd_fallback.tui.widgets.tlabel import TLabel

PAGE = 50
FILTERS: dict[str, list[str] | None] = {
    "waiting": ["pending"],
    "synced": ["synced"],
    "flagged": ["rejected", "conflict"],
    "all": None,
}


class QueueScreen(CounterScreen):
    HINTS = "keys.list"
    BINDINGS = [
        *[b for b in NAV_BINDINGS if isinstance(b, Binding) and b.key not in ("f2", "f3", "f4")],
        Binding("f2", "filter('waiting')", "Waiting", id="queue.waiting"),
        Binding("f3", "filter('synced')", "Synced", id="queue.synced"),
        Binding("f4", "filter('flagged')", "Flagged", id="queue.flagged"),
        Binding("pagedown", "page(1)", "Next page", id="queue.next"),
        Binding("pageup", "page(-1)", "Previous page", id="queue.prev"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.state = "waiting"
        self.page = 0
        self.total = 0

    def body(self) -> ComposeResult:
        with Vertical(classes="form"):
            yield TLabel("queue.title", classes="title")
            yield TLabel(f"queue.page.{self.state}", fmt={"page": "1/1"}, id="queue-page")
            table: DataTable[str] = DataTable(id="queue", cursor_type="row", zebra_stripes=True)
            yield table

    def on_mount(self) -> None:
        add_columns(self.query_one(DataTable), ["col.seq", "col.kind", "col.state", "col.record", "col.recorded", "col.reason"], self.counter.lang)
        self.set_focus(self.query_one(DataTable))
        self.load()

    def retranslate(self) -> None:
        retranslate_columns(self.query_one(DataTable), self.lang)

    def on_screen_resume(self) -> None:
        self.load()

    def action_filter(self, state: str) -> None:
        self.state, self.page = state, 0
        self.load()

    def action_page(self, delta: int) -> None:
        pages = max(1, -(-self.total // PAGE))
        self.page = min(max(0, self.page + delta), pages - 1)
        self.load()

    def load(self) -> None:
        app = self.counter
        app.run_blocking(app.work.queue_page, FILTERS[self.state], self.page * PAGE, PAGE,
                         on_done=self._show, group="queue", exclusive=True)

    def _show(self, result: tuple[list[QueueRow], int]) -> None:
        rows, self.total = result
        table = self.query_one(DataTable)
        table.clear()
        for r in rows:
            table.add_row(str(r.seq), r.kind, r.state, r.record_ref or "", r.recorded_at[:16].replace("T", " "),
                          r.reason if r.state != SYNCED else "")
        pages = max(1, -(-self.total // PAGE))
        self.query_one("#queue-page", TLabel).set_key(f"queue.page.{self.state}", page=f"{self.page + 1}/{pages}")

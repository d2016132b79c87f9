"""Find a patient as the clerk types: uhid, offline number, mobile or name,
over the local patient index and today's registrations (search in a worker)."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.timer import Timer
from textual.widgets import DataTable, Input, Static

from opd_fallback.tui.i18n import lang_of, tr
from opd_fallback.tui.widgets.columns import add_columns, retranslate_columns
from opd_fallback.tui.widgets.tlabel import TLabel

if TYPE_CHECKING:
    from opd_fallback.tui.app import CounterApp
    from opd_fallback.tui.values import PatientHit


class PatientPicker(Vertical):
    DEFAULT_CSS = """
    PatientPicker { height: auto; }
    PatientPicker > #search-row { height: 1; }
    PatientPicker #search { width: 1fr; }
    PatientPicker #picked { height: 1; color: $success; text-style: bold; }
    """

    class Picked(Message):
        def __init__(self, hit: PatientHit) -> None:
            super().__init__()
            self.hit = hit

    def __init__(self, *, id: str | None = "picker") -> None:
        super().__init__(id=id)
        self.hits: list[PatientHit] = []
        self.picked: PatientHit | None = None
        self._timer: Timer | None = None
        self._asked = ""

    def compose(self) -> ComposeResult:
        yield TLabel("field.search")
        yield Input(id="search", placeholder="UHID / C07-… / 98765… / name")
        table: DataTable[str] = DataTable(id="results", cursor_type="row", zebra_stripes=True)
        yield table
        yield Static("", id="picked")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        add_columns(table, ["col.patient_ref", "col.name", "col.age_sex", "col.guardian", "col.mobile", "col.district"], lang_of(self.app))

    def retranslate(self) -> None:
        retranslate_columns(self.query_one(DataTable), lang_of(self.app))
        if self.picked is not None:
            hit = self.picked
            self.query_one("#picked", Static).update(
                "✓ " + tr("revisit.selected", lang_of(self.app),
                          name=f"{hit.name} · {hit.uhid or hit.local_ref or ''}"))

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id != "search":
            return
        event.stop()
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(0.12, self._search)

    def _search(self) -> None:
        query = self.query_one("#search", Input).value
        self._asked = query
        app = cast("CounterApp", self.app)
        app.run_blocking(app.work.search_patients, query, on_done=lambda hits: self._show(query, hits),
                         group="search", exclusive=True)

    def _show(self, query: str, hits: list[PatientHit]) -> None:
        if query != self._asked:
            return  # a newer search is on its way
        self.hits = hits
        table = self.query_one(DataTable)
        table.clear()
        for h in hits:
            table.add_row(
                h.uhid or h.local_ref or "", h.name, h.age_sex,
                h.guardian_name or "", h.mobile or "", h.district or "",
            )
        if not hits and query.strip():
            self.query_one("#picked", Static).update(tr("revisit.none", lang_of(self.app)))
        elif self.picked is None:
            self.query_one("#picked", Static).update(tr("revisit.pick", lang_of(self.app)))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "search":
            return
        event.stop()
        self.submit_now()

    def submit_now(self) -> None:
        """Enter in the search: to the results (at once, so the next key lands
        there), or search again if nothing is shown yet."""
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        if self.hits and self._asked == self.query_one("#search", Input).value:
            self.screen.set_focus(self.query_one(DataTable))
        else:
            self._search()

    def pick_highlighted(self) -> None:
        """Enter in the results: pick the highlighted patient."""
        index = self.query_one(DataTable).cursor_row
        if 0 <= index < len(self.hits):
            self.pick(self.hits[index])

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        index = event.cursor_row
        if 0 <= index < len(self.hits):
            self.pick(self.hits[index])

    def pick(self, hit: PatientHit) -> None:
        self.picked = hit
        ref = hit.uhid or hit.local_ref or ""
        self.query_one("#picked", Static).update(
            "✓ " + tr("revisit.selected", lang_of(self.app), name=f"{hit.name} · {ref}")
        )
        # handled at once (not queued), so the keys typed next go where the screen puts the cursor
        handler = getattr(self.screen, "on_patient_picker_picked", None)
        if handler is not None:
            handler(self.Picked(hit))

    def clear(self) -> None:
        self.picked = None
        self.hits = []
        self.query_one("#search", Input).value = ""
        self.query_one(DataTable).clear()
        self.query_one("#picked", Static).update("")

"""Before a new registration is saved: patients it may already be (same
mobile, similar name and age). Enter takes the highlighted one (a revisit is
opened for them); F10 saves a new patient anyway; Esc goes back to the form."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable

from opd_fallback.tui.widgets.columns import add_columns, retranslate_columns
from opd_fallback.tui.widgets.tlabel import KeysLabel, TLabel

if TYPE_CHECKING:
    from opd_fallback.tui.values import PatientHit, PossibleMatch

# the clerk's answer: ("take", the registered patient) or ("new", None); None is back to the form
Choice = tuple[str, "PatientHit | None"]


class DuplicatesScreen(ModalScreen[Choice | None]):
    DEFAULT_CSS = """
    DuplicatesScreen { align: center middle; }
    DuplicatesScreen > #dupes-box { width: 100%; max-width: 110; height: auto; max-height: 100%;
                                    border: thick $warning; background: $surface; padding: 0 1; }
    DuplicatesScreen DataTable { height: auto; max-height: 8; }
    """
    BINDINGS = [
        Binding("enter", "take", "Take this patient", id="dupes.take", priority=True),
        Binding("f10", "new", "New patient anyway", id="dupes.new", priority=True),
        Binding("escape", "back", "Back to the form", id="dupes.back"),
    ]

    def __init__(self, matches: list[PossibleMatch]) -> None:
        super().__init__()
        self.matches = matches

    def compose(self) -> ComposeResult:
        with Vertical(id="dupes-box"):
            yield TLabel("dupes.title", classes="title")
            yield DataTable(id="dupes", cursor_type="row", zebra_stripes=True)
            yield KeysLabel("dupes.keys", classes="keys")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        add_columns(table, ["col.patient_ref", "col.name", "col.age_sex", "col.guardian", "col.mobile", "col.why"],
                    getattr(self.app, "lang", "en"))
        for m in self.matches:
            h = m.hit
            table.add_row(h.uhid or h.local_ref or "", h.name,
                          h.age_sex,
                          h.guardian_name or "", h.mobile or "", ", ".join(m.why))
        self.set_focus(table)

    def retranslate(self) -> None:
        retranslate_columns(self.query_one(DataTable), getattr(self.app, "lang", "en"))

    def action_take(self) -> None:
        row = self.query_one(DataTable).cursor_row
        if 0 <= row < len(self.matches):
            self.dismiss(("take", self.matches[row].hit))

    def action_new(self) -> None:
        self.dismiss(("new", None))

    def action_back(self) -> None:
        self.dismiss(None)

"""The lab's collection desk (F1): scan a tube, see whose it is, record it
collected or refused.

A USB barcode scanner types the tube's id and Enter into the scan field: the
tube is looked up (this counter's orders and the LAN's, in a thread worker)
and shown with the patient (name in English and Hindi, age/sex), the tube type
and tests, and whether its order is paid. The scan field is emptied for the
next scan, and the tube shown stays *armed*: Enter on the empty field records
it collected (the time and the operator are taken at the save); ctrl+r asks
the reason (↑↓ Enter, or 1-5) and records it refused, then prints its label
again for the new draw. A new scan replaces the armed tube. The list below is
today's tubes still to draw across the hospital (refreshed every few seconds
and after each save); Enter on a row arms that tube. Nothing is recorded by
a scan alone, so a double scan never records twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Input, OptionList, Static
from textual.widgets.option_list import Option

from opd_fallback.domain.errors import DomainError
from opd_fallback.printing.templates import age_text
from opd_fallback.tui.i18n import problem_text, tr
from opd_fallback.tui.screens.base import NAV_BINDINGS, CounterScreen
from opd_fallback.tui.values import REASONS
from opd_fallback.tui.widgets.columns import add_columns, retranslate_columns
from opd_fallback.tui.widgets.tlabel import TLabel, pad

if TYPE_CHECKING:
    from opd_fallback.printing.document import Document
    from opd_fallback.tui.values import CollectionDesk, Recorded, Tube

REFRESH_S = 5.0  # the to-collect list: the LAN's new orders and other desks' draws show within this


class CollectScreen(CounterScreen):
    HINTS = "keys.collect"
    BINDINGS = [
        *[b for b in NAV_BINDINGS if not (isinstance(b, Binding) and b.key == "escape")],
        Binding("ctrl+r", "refuse", "Refuse", id="collect.refuse", priority=True),
        Binding("escape", "back", "Back", id="collect.back"),
    ]
    DEFAULT_CSS = """
    CollectScreen #tube { height: 4; padding: 0 1; background: $boost; }
    CollectScreen #reasons { height: 7; display: none; }
    CollectScreen #reasons.-open { display: block; }
    CollectScreen #todo-title { padding: 1 0 0 0; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.armed: Tube | None = None
        self.todo: list[Tube] = []
        self._desk: CollectionDesk | None = None

    @property
    def desk(self) -> CollectionDesk:
        if self._desk is None:
            self._desk = self.counter.work.collection()
        return self._desk

    def body(self) -> ComposeResult:
        with Vertical(classes="form"):
            yield TLabel("collect.title", classes="title")
            yield Input(id="scan", placeholder=tr("collect.scan", "en"))
            yield Static("", id="tube")
            yield OptionList(id="reasons")
            yield Static("", id="form-msg")
            yield TLabel("collect.todo", fmt={"n": 0}, id="todo-title")
            table: DataTable[str] = DataTable(id="todo", cursor_type="row", zebra_stripes=True)
            yield table

    def on_mount(self) -> None:
        add_columns(self.query_one(DataTable), ["col.time", "col.sample", "col.patient", "col.tube", "col.paid",
                                                "col.state"], self.counter.lang)
        self._fill_reasons()
        self.retranslate()
        self.set_focus(self.query_one("#scan", Input))
        self.load()
        self.set_interval(REFRESH_S, self.load)

    def on_screen_resume(self) -> None:
        self.set_focus(self.query_one("#scan", Input))
        self.load()

    def retranslate(self) -> None:
        lang = self.lang
        self.query_one("#scan", Input).placeholder = tr("collect.scan", lang)
        retranslate_columns(self.query_one(DataTable), lang)
        self._fill_reasons()
        self._show_tube(self.armed)
        self._show_todo(self.todo)

    def _fill_reasons(self) -> None:
        box = self.query_one("#reasons", OptionList)
        box.clear_options()
        box.add_options([Option(f"{i}  {tr('reason.' + r, self.lang)}", id=r) for i, r in enumerate(REASONS, 1)])

    # ------------------------------------------------------------ messages
    def _say(self, text: str, *, ok: bool = False) -> None:
        msg = self.query_one("#form-msg", Static)
        msg.set_classes("ok" if ok else "error")
        msg.update(text)

    def _problem(self, exc: BaseException) -> None:
        if isinstance(exc, DomainError):
            code = exc.code
            tube = self.armed
            if code == "unpaid" and tube is not None:
                self._say(tr("collect.err.unpaid", self.lang, order=tube.order_ref))
            elif code == "already_collected" and tube is not None and tube.last is not None:
                self._say(tr("collect.err.already", self.lang, sample=tube.sample_id,
                             time=tube.last.collected_at[11:16], who=tube.last.operator_id,
                             where=tube.last.device_id))
            elif code == "not_found":
                self._say(tr("collect.err.unknown", self.lang, sample=self._last_scan))
            else:
                words = "; ".join(problem_text(p, self.lang) for p in exc.problems) or str(exc)
                # the clock waits for a supervisor: the key that confirms it, after the sentence
                self._say(words + (" · " + tr("clock.refused", self.lang) if code == "clock_off" else ""))
            self.query_one("#scan", Input).focus()
            return
        self._say(tr("common.failed", self.lang, err=str(exc)))

    # ------------------------------------------------------------ scanning
    _last_scan = ""

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "scan":
            return
        scanned = event.value.strip()
        event.input.value = ""
        if scanned:
            self._last_scan = scanned.upper()
            self.counter.run_blocking(self.desk.tube, scanned, on_done=self._arm, on_error=self._not_armed,
                                      group="collect.lookup", exclusive=True)
        elif self.armed is not None:
            self._record("collected", None)
        else:
            self._say(tr("collect.scan_first", self.lang))

    def _arm(self, tube: Tube) -> None:
        self.armed = tube
        self._show_tube(tube)
        if tube.state == "collected":
            self._say(tr("collect.err.already", self.lang, sample=tube.sample_id,
                         time=tube.last.collected_at[11:16] if tube.last else "?",
                         who=tube.last.operator_id if tube.last else "?",
                         where=tube.last.device_id if tube.last else "?"))
        elif not tube.paid:
            self._say(tr("collect.err.unpaid", self.lang, order=tube.order_ref))
        else:
            self._say(tr("collect.armed", self.lang), ok=True)
        self.query_one("#scan", Input).focus()

    def _not_armed(self, exc: BaseException) -> None:
        self.armed = None
        self._show_tube(None)
        self._problem(exc)

    def _show_tube(self, tube: Tube | None) -> None:
        box = self.query_one("#tube", Static)
        if tube is None:
            box.update("")
            return
        lang = self.lang
        p = tube.patient
        name = p.name + (f" / {p.name_local}" if p.name_local else "")
        tests = ", ".join(f"{c} {n}" if n != c else c for c, n in zip(tube.tests, self.desk.test_names(tube.tests)))
        paid = tr("collect.paid", lang) if tube.paid else tr("collect.unpaid", lang)
        state = tr("collect.state." + tube.state, lang)
        if tube.last is not None and tube.last.reason:
            state += f" ({tr('reason.' + tube.last.reason, lang)})"
        box.update("\n".join([
            f"{name}  {age_text(*p.age)}/{p.sex or '?'}  {p.ref}",
            f"{tube.sample_id}  {tube.sample_type}: {tests}",
            tr("collect.order_line", lang, order=tube.order_ref, device=tube.order_device, paid=paid, state=state),
        ]))

    # ------------------------------------------------------------ saving
    def _record(self, status: str, reason: str | None) -> None:
        tube = self.armed
        if tube is None:
            self._say(tr("collect.scan_first", self.lang))
            return
        operator = self.counter.session.operator_id if self.counter.session else "?"
        desk = self.desk

        def save() -> tuple[Recorded, Document | None]:
            if status == "collected":
                return desk.collect(operator, tube.sample_id), None
            done = desk.refuse(operator, tube.sample_id, reason or "other")
            return done, desk.label(done.tube)

        self.counter.run_blocking(save, on_done=self._saved, on_error=self._problem, group="collect.save")

    def _saved(self, result: tuple[Recorded, Document | None]) -> None:
        done, label = result
        self.armed = None
        self._show_tube(None)
        lang = self.lang
        if done.status == "collected":
            self._say(tr("collect.saved", lang, sample=done.tube.sample_id, time=done.collected_at[11:16],
                         name=done.tube.patient.name), ok=True)
        else:
            self._say(tr("collect.refused", lang, sample=done.tube.sample_id,
                         reason=tr("reason." + (done.reason or "other"), lang)), ok=True)
            if label is not None:
                self.counter.print_docs([label])
        self.query_one("#scan", Input).focus()
        self.load()

    # ------------------------------------------------------------ refusing
    def action_refuse(self) -> None:
        if self.armed is None:
            self._say(tr("collect.scan_first", self.lang))
            return
        box = self.query_one("#reasons", OptionList)
        box.add_class("-open")
        box.highlighted = 0
        box.focus()
        self._say(tr("collect.pick_reason", self.lang, sample=self.armed.sample_id), ok=True)

    def _close_reasons(self) -> None:
        self.query_one("#reasons", OptionList).remove_class("-open")
        self.query_one("#scan", Input).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        reason = event.option.id
        self._close_reasons()
        self._record("rejected", reason)

    def on_key(self, event: events.Key) -> None:
        box = self.query_one("#reasons", OptionList)
        if box.has_class("-open") and box.has_focus and event.character and event.character in "12345":
            event.stop()
            reason = REASONS[int(event.character) - 1]
            self._close_reasons()
            self._record("rejected", reason)

    def action_back(self) -> None:
        if self.query_one("#reasons", OptionList).has_class("-open"):
            self._close_reasons()
            self._say("")
            return
        self.armed = None
        self._show_tube(None)
        self._say("")
        self.counter.go_home()

    # ------------------------------------------------------------ to collect
    def load(self) -> None:
        self.counter.run_blocking(self.desk.to_collect, on_done=self._show_todo, group="collect.todo", exclusive=True)

    def _show_todo(self, todo: list[Tube]) -> None:
        self.todo = todo
        table = self.query_one(DataTable)
        keep = table.cursor_row
        table.clear()
        lang = self.lang
        for t in todo:  # narrow columns: the whole row fits 80 columns
            table.add_row(t.ordered_at[11:16], t.sample_id, pad(t.patient.name, 14), pad(t.sample_type, 12),
                          tr("collect.yes", lang) if t.paid else tr("collect.no", lang),
                          tr("collect.short." + t.state, lang))
        if todo:
            table.move_cursor(row=min(keep, len(todo) - 1))
        self.query_one("#todo-title", TLabel).set_key("collect.todo", n=len(todo))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if 0 <= event.cursor_row < len(self.todo):
            self._last_scan = self.todo[event.cursor_row].sample_id
            self.counter.run_blocking(self.desk.tube, self._last_scan, on_done=self._arm, on_error=self._not_armed,
                                      group="collect.lookup", exclusive=True)

"""The review screen: flagged records, explained and compared field by field,
decided by a supervisor whose PIN this screen checks itself.

    app.push_screen(ReviewScreen(ReviewService(store), supervisor_id="sup1"))

``service`` may be a :class:`~opd_fallback.application.review.ReviewService` or anything
with a ``store`` attribute (the TUI backend, ``CounterService``). The screen
opens on a PIN gate whatever the caller did, so it is reachable only with a
supervisor's PIN. Every store call (PIN hashing, reads, decisions) runs in a
thread worker; the event loop never waits on the disk.

Keys on the list: l link, n new patient, m merge, c correct, x cancel,
r retry, F5 reload, Esc back. An action opens a prompt line prefilled with a
sensible answer; Enter confirms, Esc abandons it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.actions import SkipAction
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Center, Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Input, Label, Static

from opd_fallback.domain import registry
from opd_fallback.domain.errors import DomainError
from opd_fallback.tui.i18n import Lang, tr
from opd_fallback.tui.screens.base import CounterAppAccess
from opd_fallback.tui.typeahead import after_queued_keys
from opd_fallback.tui.values import ReviewService, age_words, parse_value
from opd_fallback.tui.widgets.columns import add_columns, retranslate_columns
from opd_fallback.tui.widgets.tlabel import KeysLabel, TLabel
from opd_fallback.tui.workers import run_in_thread

if TYPE_CHECKING:
    from opd_fallback.tui.values import Decision, ReviewItem, Store, Supervisor

T = TypeVar("T")


class HasStore(Protocol):
    """Anything with the counter's store (``CounterService``): reviewed through a ``ReviewService``."""

    @property
    def store(self) -> Store: ...

_CSS = Path(__file__).with_suffix(".tcss")


def _cell(value: object) -> str:
    return "-" if value is None else str(value)


def render_detail(item: ReviewItem) -> Group:
    """The explanation, field errors and comparisons; differences in reverse yellow."""
    parts: list[RenderableType] = [Text(item.title, style="bold"),
                        Text(f"{item.kind} · recorded {item.recorded_at[:16].replace('T', ' ')} by "
                             f"{item.operator_id} · op {item.op_id}", style="dim"),
                        Text(item.explanation)]
    for fe in item.field_errors:
        parts.append(Text(f"! {fe['label']}: {fe['message']}", style="bold red"))
    for n, cmp in enumerate(item.comparisons, 1):
        table = Table(title=f"{n}. {cmp.title} — {cmp.differences} difference(s)", title_justify="left",
                      expand=True, show_edge=False)
        table.add_column("Field", style="bold", no_wrap=True)
        table.add_column(cmp.left_title)
        table.add_column(cmp.right_title)
        table.add_column("", width=2)
        for r in cmp.rows:
            style = "bold black on yellow" if r.differs else ""
            table.add_row(r.label, Text(_cell(r.left), style=style), Text(_cell(r.right), style=style),
                          "≠" if r.differs else "")
        parts.append(table)
    if item.category == "rejected":
        sent = Table(title="Sent", title_justify="left", show_header=False, show_edge=False)
        bad = {fe["field"].split(".")[0] for fe in item.field_errors}
        for k, v in item.payload.items():
            sent.add_row(k, Text(_cell(v), style="bold red" if k in bad else ""))
        parts.append(sent)
    if item.waiting:
        parts.append(Text(f"{len(item.waiting)} record(s) wait on this one.", style="yellow"))
    parts.append(Text("Actions: " + ", ".join(item.actions), style="cyan"))
    return Group(*parts)


ACTION_KEYS = {"link": "l", "create_new": "n", "merge": "m", "correct": "c", "cancel": "x", "retry": "r"}


class ReviewScreen(CounterAppAccess, Screen[None]):
    """Supervisor-only review of flagged ops (see the module doc)."""

    CSS_PATH = str(_CSS)
    BINDINGS = [
        Binding("l", "act('link')", "Link", id="review.link"),
        Binding("n", "act('create_new')", "New patient", id="review.create_new"),
        Binding("m", "act('merge')", "Merge", id="review.merge"),
        Binding("c", "act('correct')", "Correct", id="review.correct"),
        Binding("x", "act('cancel')", "Cancel op", id="review.cancel"),
        Binding("r", "act('retry')", "Retry", id="review.retry"),
        Binding("f5", "reload", "Reload", id="review.reload"),
        Binding("escape", "back", "Back", id="review.back"),
        Binding("enter", "gate_enter", show=False, priority=True),
    ]

    def __init__(self, service: ReviewService | HasStore, supervisor_id: str | None = None, *,
                 supervisor: Supervisor | None = None) -> None:
        super().__init__()
        self.service: ReviewService = service if isinstance(service, ReviewService) \
            else ReviewService(service.store)
        self.supervisor_id = supervisor_id or ""
        self.supervisor: Supervisor | None = supervisor
        self.items: list[ReviewItem] = []
        self.pending_action: str | None = None
        self.steps: list[str] = []
        self.answers: list[str] = []

    # ---- layout ----------------------------------------------------------------
    def compose(self) -> ComposeResult:
        with Center(id="review-gate"):
            with Vertical(id="gate-box", classes="box"):
                yield TLabel("review.gate", classes="title")
                yield TLabel("field.supervisor")
                yield Input(value=self.supervisor_id, id="gate-id", max_length=64)
                yield TLabel("login.pin")
                yield Input(id="gate-pin", password=True, max_length=8)
                yield Static("", id="gate-msg", classes="error")
        with Vertical(id="review-main"):
            yield Static("", id="review-head", classes="title")
            with Horizontal(id="review-body"):
                yield DataTable(id="review-list", cursor_type="row", zebra_stripes=True)
                with VerticalScroll(id="review-detail-box"):
                    yield Static("", id="review-detail")
            with Horizontal(id="review-prompt"):
                yield Label("", id="prompt-label")
                yield Input(id="prompt-input")
            yield Static("", id="review-msg")
            yield KeysLabel("review.keys", classes="keys")

    def on_mount(self) -> None:
        add_columns(self.query_one("#review-list", DataTable), ["col.recorded", "col.why", "col.record"], self._lang)
        self.query_one("#review-prompt").display = False
        if self.supervisor is not None:
            self._open()
        else:
            self.query_one("#review-main").display = False
            self.set_focus(self.query_one("#gate-pin" if self.supervisor_id else "#gate-id", Input))

    def on_screen_suspend(self) -> None:
        """Locked or left: the PIN typed so far goes, and the supervisor must
        give it again to decide anything more (an approval does not outlast them)."""
        self.query_one("#gate-pin", Input).value = ""
        if self.supervisor is not None:
            self.supervisor = None
            self._close_prompt_quietly()
            self.query_one("#review-main").display = False
            self.query_one("#review-gate").display = True

    def on_screen_resume(self) -> None:
        if self.supervisor is None and self.is_mounted:
            self.query_one("#gate-pin" if self.query_one("#gate-id", Input).value else "#gate-id", Input).focus()

    def _close_prompt_quietly(self) -> None:
        self.pending_action, self.answers = None, []
        self.query_one("#review-prompt").display = False

    # ---- workers -----------------------------------------------------------------
    def _bg(self, fn: Callable[..., T], *args: object, on_done: Callable[[T], None],
            on_error: Callable[[BaseException], None] | None = None) -> None:
        """Run ``fn`` in a thread; hand the result back on the event loop."""
        run_in_thread(self, fn, *args, on_done=on_done, on_error=on_error or self._error, group="review")

    def _error(self, exc: BaseException) -> None:
        msg = "; ".join(str(p) for p in exc.problems) if isinstance(exc, DomainError) else str(exc)
        self.query_one("#review-msg", Static).update(Text(msg, style="bold red"))

    # ---- PIN gate ----------------------------------------------------------------
    async def action_gate_enter(self) -> None:
        """Enter in the gate, in the key's own turn (see tui/typeahead.py): a PIN
        typed ahead lands in the PIN field."""
        focused = self.app.focused
        if not isinstance(focused, Input) or focused.id not in ("gate-id", "gate-pin"):
            raise SkipAction()
        await after_queued_keys(focused)
        if focused.id == "gate-id":
            self.set_focus(self.query_one("#gate-pin", Input))
        else:
            self._submit_pin(focused)

    def _submit_pin(self, pin_input: Input) -> None:
        sup_id, pin = self.query_one("#gate-id", Input).value.strip(), pin_input.value
        pin_input.value = ""
        self._bg(self.service.authenticate, sup_id, pin, on_done=self._authenticated, on_error=self._refused)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == "gate-id":
            self.set_focus(self.query_one("#gate-pin", Input))
        elif event.input.id == "gate-pin":
            self._submit_pin(event.input)
        elif event.input.id == "prompt-input":
            self._answer(event.value)

    def _refused(self, exc: BaseException) -> None:
        self.query_one("#gate-msg", Static).update(str(exc))
        self.query_one("#gate-pin", Input).focus()

    def _authenticated(self, sup: Supervisor) -> None:
        self.supervisor = sup
        self._open()

    def _open(self) -> None:
        self.query_one("#review-gate").display = False
        self.query_one("#review-main").display = True
        self.query_one("#review-list", DataTable).focus()
        self.action_reload()

    # ---- list and detail -----------------------------------------------------------
    def action_reload(self) -> None:
        if self.supervisor is not None:
            self._bg(self.service.items, on_done=self._show)

    def _show(self, items: list[ReviewItem]) -> None:
        self.items = items
        table = self.query_one("#review-list", DataTable)
        keep = table.cursor_row
        table.clear()
        for it in items:
            table.add_row(it.recorded_at[:16].replace("T", " "), it.category.replace("_", " "),
                          it.record_ref or it.kind, key=it.op_id)
        oldest = min((it.recorded_at for it in items), default=None)
        self._oldest = oldest
        self._head()
        if items:
            table.move_cursor(row=min(keep, len(items) - 1))
        self._detail()

    @property
    def _lang(self) -> Lang:
        return getattr(self.app, "lang", "en")

    def _head(self) -> None:
        lang = self._lang
        head = tr("review.head", lang, n=len(self.items))
        oldest = getattr(self, "_oldest", None)
        if oldest:
            head += " · " + tr("review.oldest", lang, age=age_words(oldest))
        if self.supervisor is not None:
            head += " · " + tr("review.supervisor", lang, sup=self.supervisor.id)
        self.query_one("#review-head", Static).update(head)

    def retranslate(self) -> None:
        """F9: this screen's own words follow the language (the records' explanations stay as written)."""
        retranslate_columns(self.query_one("#review-list", DataTable), self._lang)
        self._head()
        self._detail()

    @property
    def current(self) -> ReviewItem | None:
        table = self.query_one("#review-list", DataTable)
        if not self.items or table.cursor_row < 0 or table.cursor_row >= len(self.items):
            return None
        return self.items[table.cursor_row]

    def on_data_table_row_highlighted(self, _event: DataTable.RowHighlighted) -> None:
        self._detail()

    def _detail(self) -> None:
        item = self.current
        self.query_one("#review-detail", Static).update(
            render_detail(item) if item else Text(tr("review.nothing", self._lang), style="green"))

    # ---- actions -------------------------------------------------------------------
    def action_act(self, action: str) -> None:
        item = self.current
        if self.supervisor is None or item is None or self.query_one("#review-prompt").display:
            return
        if action not in item.actions:
            self._error(DomainError.field("action", f"not for a {item.category.replace('_', ' ')}; "
                                          f"possible: {', '.join(item.actions)}"))
            return
        self.pending_action, self.answers = action, []
        self.steps = {"link": ["uhid"], "create_new": ["note"], "merge": ["picks"], "correct": ["fields"],
                      "cancel": ["reason"] + (["money"] if item.kind in registry.MONEY_KINDS
                                              or item.waiting else []),
                      "retry": ["note"]}[action]
        self._ask()

    def _ask(self) -> None:
        item = self.current
        assert item is not None and self.pending_action is not None
        step = self.steps[len(self.answers)]
        waiting = f" (also cancels {len(item.waiting)} waiting record(s))" if item.waiting else ""
        label, value = {
            "uhid": ("Link to UHID:", next((c.key or "" for c in item.comparisons), "")),
            "note": ("Why (optional), Enter to confirm:", ""),
            "picks": ("Keep (field=counter|central ...):", " ".join(
                f"{r.field}={'central' if r.differs else 'counter'}"
                for c in item.comparisons[:1] for r in c.rows)),
            "fields": ("Correct (field=value ...):", " ".join(
                f"{fe['field']}={_cell(item.payload.get(fe['field']))}" for fe in item.field_errors)),
            "reason": (f"Reason for cancelling{waiting}:", ""),
            "money": ("What happened to the money (if any):", ""),
        }[step]
        self.query_one("#prompt-label", Label).update(label)
        inp = self.query_one("#prompt-input", Input)
        inp.value = value
        self.query_one("#review-prompt").display = True
        inp.focus()

    def _close_prompt(self) -> None:
        self.pending_action, self.answers = None, []
        self.query_one("#review-prompt").display = False
        self.query_one("#review-list", DataTable).focus()

    def action_back(self) -> None:
        if self.query_one("#review-prompt").display:
            self._close_prompt()
            return
        self.dismiss(None)

    def _answer(self, value: str) -> None:
        self.answers.append(value.strip())
        if len(self.answers) < len(self.steps):
            self._ask()
            return
        item, action, answers = self.current, self.pending_action, dict(zip(self.steps, self.answers))
        self._close_prompt()
        if item is None or action is None or self.supervisor is None:
            return
        sup, svc, op_id = self.supervisor, self.service, item.op_id

        def pairs(text: str) -> dict[str, str]:
            out = {}
            for part in text.split():
                name, sep, val = part.partition("=")
                if not sep:
                    raise DomainError.field(name, "write field=value")
                out[name] = val
            return out

        def run() -> Decision:
            if action == "link":
                return svc.link(sup, op_id, answers["uhid"])
            if action == "create_new":
                return svc.create_new(sup, op_id, note=answers["note"] or None)
            if action == "merge":
                return svc.merge(sup, op_id, {k: v.lower() for k, v in pairs(answers["picks"]).items()})
            if action == "correct":
                fields = {k: parse_value(item.kind, k, v) for k, v in pairs(answers["fields"]).items()}
                return svc.correct(sup, op_id, fields)
            if action == "cancel":
                return svc.cancel(sup, op_id, answers["reason"], money=answers.get("money") or None,
                                  cascade=bool(item.waiting))
            return svc.retry(sup, op_id, note=answers["note"] or None)

        self._bg(run, on_done=self._decided)

    def _decided(self, d: Decision) -> None:
        self.query_one("#review-msg", Static).update(Text(f"{d.action}: {d.message}", style="green"))
        self.action_reload()

"""Void a payment: receipt number, reason, and a supervisor's ID and PIN."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from opd_fallback.domain import rules
from opd_fallback.domain.errors import DomainError
from opd_fallback.tui.i18n import tr
from opd_fallback.tui.ports import PaymentInfo, Saved
from opd_fallback.tui.screens.form import FormScreen
from opd_fallback.tui.values import validate_pin
from opd_fallback.tui.widgets import parsers
from opd_fallback.tui.widgets.form_field import FormField
from opd_fallback.tui.widgets.tlabel import TLabel


def _pin(text: str) -> str:
    try:
        return validate_pin(text)
    except DomainError as exc:
        raise ValueError(exc.problems[0].message) from None


def _reason(text: str) -> str:
    value = rules.optional_text(text)
    if not value:
        raise ValueError("is required")
    return value


class VoidScreen(FormScreen):
    def body(self) -> ComposeResult:
        with VerticalScroll(classes="form"):
            yield TLabel("void.title", classes="title")
            yield FormField("receipt_no", parser=lambda t: rules.clean_text(t).upper(), required=True)
            yield Static("", id="payment-info")
            yield FormField("reason", parser=_reason, required=True, max_length=200)
            yield FormField("supervisor", parser=parsers.text, required=True)
            yield FormField("supervisor_pin", parser=_pin, required=True, password=True, max_length=8)
        yield Static("", id="form-msg")  # docked below the scrolling form, never over a field

    def on_mount(self) -> None:
        self.set_focus(self.field("receipt_no").input)

    def on_screen_resume(self) -> None:
        # F5 starts empty every time: a receipt number left from before is never voided by mistake
        if not self.saving:
            self.reset()
            self.say("")

    def after_field(self, name: str, ok: bool, value: object) -> None:
        if name == "receipt_no" and ok and isinstance(value, str) and value:
            app = self.counter
            app.run_blocking(app.work.find_payment, value, on_done=self._show_payment, group="lookup")

    def _show_payment(self, info: PaymentInfo | None) -> None:
        box = self.query_one("#payment-info", Static)
        if info is None:
            self.field("receipt_no").set_problem("no such payment at this counter")
            box.update("")
            return
        state = " — " + tr("void.already", self.lang) if info["voided"] else ""
        box.update(f"  {info['patient_name']} · {rules.format_paise(info['amount_paise'])} · {info['mode']} · "
                   f"{info['created_at'][:16]}{state}")

    def action_save(self) -> None:
        if self.saving or self.counter.session is None:
            return
        values, bad = self.collect()
        if bad:
            self.refuse(bad)
            return
        app, session = self.counter, self.who
        self.field("supervisor_pin").set_text("")  # the PIN leaves the screen at once
        self.save_in_worker(
            lambda: app.work.void(session, str(values["receipt_no"]), str(values["reason"]),
                                  str(values["supervisor"]), str(values["supervisor_pin"])))

    def save_failed(self, exc: BaseException) -> None:
        super().save_failed(exc)
        if isinstance(exc, DomainError) and exc.code == "not_supervisor":
            self.say(tr("void.not_supervisor", self.lang), error=True)
            self.field("supervisor").input.focus()

    def reset(self) -> None:
        for ff in self.fields():
            ff.set_text("")
            ff.set_problem(None)
        self.query_one("#payment-info", Static).update("")
        self.set_focus(self.field("receipt_no").input)

    def saved_message(self, result: Saved) -> str:
        return tr("void.done", self.lang, receipt=result.ref)

"""Shared behaviour of the data-entry screens: a fixed field order where Enter
moves on (Tab too, natively), validation as the clerk leaves a field, one key
(F10) to save, and the fee / payment fields."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from textual import events, on
from textual.actions import SkipAction
from textual.binding import Binding
from textual.widgets import Input, Static

from opd_fallback.domain.errors import DomainError, FieldProblem
from opd_fallback.domain.masterdata import FeeQuote
from opd_fallback.domain.rules import MODES_NEEDING_REF, format_paise
from opd_fallback.tui.i18n import problem_text, tr
from opd_fallback.tui.ports import Approver, Saved
from opd_fallback.tui.screens.base import NAV_BINDINGS, CounterScreen
from opd_fallback.tui.typeahead import after_queued_keys
from opd_fallback.tui.values import PaymentInput
from opd_fallback.tui.widgets import parsers
from opd_fallback.tui.widgets.form_field import FormField
from opd_fallback.tui.widgets.patient_picker import PatientPicker

if TYPE_CHECKING:
    from opd_fallback.tui.values import PatientHit

Values = dict[str, object]  # a form's parsed fields by name (each parser's own type)


def text_of(values: Values, name: str) -> str | None:
    """A parsed field as text (None when left empty)."""
    value = values.get(name)
    return None if value is None else str(value)

# payment.record's fields as the form names them
_PROBLEM_FIELD = {"amount_paise": "fee", "items": "fee", "approved_by": "supervisor", "operator_pin": "supervisor_pin"}


class FormScreen(CounterScreen):
    BINDINGS = [
        *NAV_BINDINGS,
        Binding("f10", "save_key", "Save", id="save", priority=True),
        Binding("ctrl+s", "save_key", "Save", id="save.alt", show=False, priority=True),
        Binding("enter", "enter_key", "Next", id="next-field", show=False, priority=True),
    ]
    saving = False

    _fields: list[FormField] | None = None  # a form's fields never change once composed: found once
    _by_id: dict[str, FormField] = {}

    # ----------------------------------------------------------- navigation
    def fields(self) -> list[FormField]:
        """The form's fields in order. Looked up once: each CSS query walks every widget of the
        screen, and F10 asked a dozen of them before its worker started (issue 21 item 4)."""
        if self._fields is None:
            found = list(self.query(FormField))
            if not found:  # not composed yet
                return found
            self._fields, self._by_id = found, {ff.id or "": ff for ff in found}
        return list(self._fields)

    def field(self, name: str) -> FormField:
        self.fields()
        ff = self._by_id.get(f"ff-{name}")
        return ff if ff is not None else self.query_one(f"#ff-{name}", FormField)

    def has_field(self, name: str) -> bool:
        if self.fields():
            return f"ff-{name}" in self._by_id
        return bool(self.query(f"#ff-{name}"))

    async def action_enter_key(self) -> None:
        """Enter moves on here, in the key's own turn (see tui/typeahead.py), so
        keys the clerk typed ahead land in the right fields. Inputs that are not
        form fields get Enter as usual."""
        focused = self.app.focused
        pickers = self.query(PatientPicker)
        if pickers and focused is not None and focused.id in ("search", "results"):
            # the patient search, in the key's own turn too: the next keys land where the cursor goes
            await after_queued_keys(focused)
            if focused.id == "search":
                pickers.first().submit_now()
            else:
                pickers.first().pick_highlighted()
            return
        ff = self._owner(focused) if isinstance(focused, Input) else None
        if ff is None:
            raise SkipAction()
        await after_queued_keys(ff.input)
        await self.before_enter(ff)
        if not self.enter_in_field(ff):
            self.validate_field(ff)
            self.focus_next_field(ff)

    async def action_save_key(self) -> None:
        """F10 from any field: first let the field take every key typed before
        F10 (a fast clerk's "ENT" then F10 saves ENT), then save."""
        focused = self.app.focused
        if focused is not None:
            await after_queued_keys(focused)
        self.action_save()

    def action_save(self) -> None:
        """Hook: check the form and save it in a worker."""

    async def before_enter(self, ff: FormField) -> None:
        """Hook: wait for what Enter in this field needs (master data still loading)."""

    def enter_in_field(self, ff: FormField) -> bool:
        """Hook: handle Enter in a special field (the lab test picker); True if handled."""
        return False

    def focus_next_field(self, current: FormField) -> None:
        order = [f for f in self.fields() if not f.input.disabled and f.display]
        if current in order:
            i = order.index(current)
            if i + 1 < len(order):
                self.app.set_focus(order[i + 1].input)
                return
        self.focus_next()

    def on_descendant_blur(self, event: events.DescendantBlur) -> None:
        if isinstance(event.widget, Input):
            ff = self._owner(event.widget)
            if ff is not None and not self.saving and ff.input.value.strip():
                self.validate_field(ff)

    def _owner(self, widget: Input) -> FormField | None:
        for node in widget.ancestors:
            if isinstance(node, FormField):
                return node
        return None

    def validate_field(self, ff: FormField) -> tuple[bool, object]:
        ok, value = ff.validate_now()
        self.after_field(ff.field, ok, value)
        if ff.field == "mode":
            self.show_approval()
        return ok, value

    def after_field(self, name: str, ok: bool, value: object) -> None:
        """Hook: react to a field being filled (fee from category, ...)."""

    # ---------------------------------------------------------------- save
    def say(self, text: str, *, error: bool = False) -> None:
        msg = self.query_one("#form-msg", Static)
        msg.update(text)
        msg.set_class(error, "error")
        msg.set_class(not error, "ok")

    def collect(self) -> tuple[Values, list[FormField]]:
        values: Values = {}
        bad: list[FormField] = []
        for ff in self.fields():
            if (ff.input.disabled and ff.field not in ("fee",)) or not ff.display:
                continue
            ok, value = ff.validate_now()
            if ok:
                values[ff.field] = value
            else:
                bad.append(ff)
        return values, bad

    def show_problems(self, problems: list[FieldProblem], *, then: str = "") -> None:
        lines = []
        first: FormField | None = None
        for p in problems:
            head = _PROBLEM_FIELD.get(p.field.split(".")[0], p.field.split(".")[0])
            try:
                ff = self.field(head)
            except Exception:
                ff = None
            if ff is not None:
                ff.set_problem(p.message)
                first = first or ff
            lines.append(problem_text(FieldProblem(head, p.code, p.message), self.lang))
        self.say(tr("save.failed", self.lang, err="; ".join(lines)) + then, error=True)
        if first is not None:
            first.input.focus()

    def picked_patient(self) -> PatientHit | None:
        """The patient chosen in this screen's PatientPicker, or None after
        telling the clerk to pick one (and putting the cursor in the search)."""
        hit = self.query_one(PatientPicker).picked
        if hit is None:
            self.say(tr("revisit.select_first", self.lang), error=True)
            self.query_one("#search", Input).focus()
        return hit

    def refuse(self, bad: list[FormField]) -> None:
        self.say(tr("reg.fix", self.lang), error=True)
        bad[0].input.focus()

    def save_in_worker(self, save: Callable[[], Saved]) -> None:
        """Run ``save()`` (a service call) in a thread; the event loop never waits on disk."""
        self.saving = True
        self.say(tr("reg.saving", self.lang))
        self.counter.run_blocking(save, on_done=self.saved, on_error=self.save_failed, group="save")

    def saved(self, result: Saved) -> None:
        """Saved: clear the form for the next patient, say so, print."""
        self.saving = False
        self.reset()
        self.say(self.saved_message(result))
        self.counter.print_docs(result.docs)
        self.counter.refresh_status()  # "To sync" counts the new ops now, not at the next tick

    def saved_message(self, result: Saved) -> str:
        return tr("reg.saved", self.lang, ref=result.ref, token=result.summary["token"])

    def reset(self) -> None:
        """Hook: clear the form."""

    def save_failed(self, exc: BaseException) -> None:
        self.saving = False
        if isinstance(exc, DomainError):  # the clock waits for a supervisor: say the key that confirms it
            self.show_problems(exc.problems, then=" · " + tr("clock.refused", self.lang) if exc.code == "clock_off" else "")
        else:
            self.say(tr("save.failed", self.lang, err=str(exc)), error=True)

    # ------------------------------------------------------------- payment
    def apply_fee(self, quote: FeeQuote | None, *, editable: bool) -> None:
        """Fill the fee from master data; exempt means 0, waived, locked."""
        fee = self.field("fee")
        mode = self.field("mode")
        self.fee_quote = quote
        self.fee_editable = editable
        if quote is None:
            fee.input.disabled = False
        else:
            fee.set_text(f"{quote.due_paise // 100}.{quote.due_paise % 100:02d}")
            if quote.exempt:
                fee.input.disabled = True
                mode.set_text("waived")
            elif quote.due_paise == 0:
                fee.input.disabled = True
            else:
                fee.input.disabled = not editable
                if mode.text == "waived":
                    mode.set_text("cash")
        fee.set_hint(self.fee_hint())
        self.show_approval()

    def fee_hint(self) -> str:
        """The words beside the fee, in the current language."""
        quote: FeeQuote | None = getattr(self, "fee_quote", None)
        lang = self.lang
        if quote is None:
            return ""
        if quote.exempt:
            return tr("reg.fee_exempt", lang)
        if quote.due_paise == 0:
            return tr("reg.fee_none", lang)
        hint = tr("reg.fee_hint", lang, fee=format_paise(quote.price_paise))
        if not getattr(self, "fee_editable", False):
            hint += " · " + tr("reg.fee_locked", lang)
        return hint

    def retranslate(self) -> None:
        """F9: words this screen wrote itself follow the language too."""
        if self.has_field("fee"):
            self.field("fee").set_hint(self.fee_hint())

    def payment_from(self, values: Values, bad: list[FormField]) -> PaymentInput | None:
        mode = text_of(values, "mode") or "cash"
        ref = text_of(values, "mode_ref")
        if mode in MODES_NEEDING_REF and not ref:
            ff = self.field("mode_ref")
            what = "UPI transaction id (UTR)" if mode == "upi" else "card slip number"
            ff.set_problem(f"the {what} is required for a {mode} payment")
            bad.append(ff)
            return None
        fee = values.get("fee")
        quote = getattr(self, "fee_quote", None)
        if fee == 0 and quote is not None and not quote.exempt:
            return None  # nothing due (e.g. a free revisit): no payment to record
        reason = text_of(values, "waiver_reason") if self.needs_approval() else None
        if self.needs_approval():
            for name in ("waiver_reason", "supervisor", "supervisor_pin"):
                if not values.get(name):
                    ff = self.field(name)
                    ff.set_problem("is required for a waiver the category does not grant")
                    bad.append(ff)
        return PaymentInput(mode=mode, amount_paise=fee if isinstance(fee, int) else None, mode_ref=ref,
                            waiver_reason=reason)

    # ------------------------------------------------------------ approval
    def needs_approval(self) -> bool:
        """Is the mode 'waived' where the category's rules do not grant it?"""
        if not self.has_field("waiver_reason"):
            return False
        try:
            mode = parsers.mode(self.field("mode").text or "cash")
        except ValueError:
            return False
        quote: FeeQuote | None = getattr(self, "fee_quote", None)
        return mode == "waived" and not (quote is not None and quote.exempt)

    def show_approval(self) -> None:
        """The waiver's reason and the supervisor's ID and PIN appear only when needed."""
        need = self.needs_approval()
        for name in ("waiver_reason", "supervisor", "supervisor_pin"):
            if self.has_field(name):
                self.field(name).display = need

    def take_approval(self, values: Values) -> Approver | None:
        """The supervisor's ID and PIN for this one save; the PIN field is cleared at once."""
        if not self.needs_approval():
            return None
        self.clear_pins()
        return (text_of(values, "supervisor") or "", text_of(values, "supervisor_pin") or "")

    def has_unsaved(self) -> bool:
        """Something typed here that a quit would lose."""
        if self.saving:
            return True
        if any(ff.edited for ff in self.fields() if ff.display and not ff.input.disabled and not ff.password):
            return True
        pickers = self.query(PatientPicker)
        return bool(pickers) and (pickers.first().picked is not None or bool(self.query_one("#search", Input).value))

    def would_lose(self) -> bool:
        """Hook: what Esc asks about (the billing desk: only a payment being typed)."""
        return self.has_unsaved()

    def action_home(self) -> None:
        """Esc: an empty form (or one being saved) leaves at once; a half-filled
        one asks "Discard this form? y/n" first. y clears it and leaves; n or Esc
        stays with everything typed."""
        if self.saving or not self.would_lose():
            super().action_home()
            return
        from opd_fallback.tui.screens.confirm import ConfirmDiscard

        def answered(yes: bool | None) -> None:
            if yes:
                self.reset()
                self.say("")
                if self.app.screen is self:
                    self.counter.go_home()

        self.app.push_screen(ConfirmDiscard(), answered)

    def clear_pins(self) -> None:
        """Empty every PIN field of this screen (on leaving it, locking, saving)."""
        for ff in self.fields():
            if ff.password:
                ff.set_text("")

    @on(Input.Changed, "#in-mode")
    def _mode_changed(self) -> None:
        self.show_approval()

    def on_screen_suspend(self) -> None:
        # leaving the screen (another flow, Esc, the lock screen): no PIN stays behind
        self.clear_pins()


def payment_fields() -> list[FormField]:
    return [
        FormField("fee", parser=parsers.rupees, placeholder="0.00"),
        FormField("mode", parser=parsers.mode, placeholder="cash"),
        FormField("mode_ref", parser=parsers.text, placeholder=""),
        *approval_fields(),
    ]


def approval_fields() -> list[FormField]:
    """A waiver the category does not grant: the reason and the approving supervisor."""
    fields = [
        FormField("waiver_reason", parser=parsers.text, max_length=200),
        FormField("supervisor", parser=parsers.text),
        FormField("supervisor_pin", parser=parsers.pin, password=True, max_length=8),
    ]
    for ff in fields:
        ff.display = False
    return fields

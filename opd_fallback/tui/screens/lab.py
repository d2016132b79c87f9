"""Lab request: pick the patient, pick tests by code or name (fuzzy, as the
clerk types), see the total from master data, take the payment, print labels."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.actions import SkipAction
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Input, Static

from opd_fallback.domain.contract import Test
from opd_fallback.domain.rules import format_paise
from opd_fallback.tui.i18n import tr
from opd_fallback.tui.ports import Saved
from opd_fallback.tui.screens.form import FormScreen, approval_fields, text_of
from opd_fallback.tui.values import PaymentInput
from opd_fallback.tui.widgets import parsers
from opd_fallback.tui.widgets.form_field import FormField
from opd_fallback.tui.widgets.patient_picker import PatientPicker
from opd_fallback.tui.widgets.tlabel import TLabel, pad

if TYPE_CHECKING:
    from opd_fallback.tui.values import PatientHit


class LabScreen(FormScreen):
    BINDINGS = [
        *FormScreen.BINDINGS,
        # priority: the test field's Input would otherwise take ctrl+d (delete) and the arrows
        Binding("ctrl+d", "remove_test", "Remove last test", id="lab.remove", priority=True),
        Binding("down", "mark(1)", show=False, priority=True),
        Binding("up", "mark(-1)", show=False, priority=True),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.tests: list[Test] = []
        self.matches: list[Test] = []
        self.marked = 0  # the match under the → marker: what Enter adds
        self.matched_query = ""
        self.visit: str | None = None

    def body(self) -> ComposeResult:
        # The title and the payment stay in sight however many tests are picked:
        # only the patient and the tests between them scroll (at 80x24 with six
        # tests the title and the fee had scrolled away).
        yield TLabel("lab.title", classes="title", id="lab-title")
        with VerticalScroll(classes="form"):
            yield PatientPicker()
            yield FormField("tests", placeholder="CBC / haemoglobin…")
            yield Static("", id="test-matches")
            yield Static("", id="picked-tests")
            yield FormField("priority", parser=parsers.priority, placeholder="routine")
        with Vertical(id="lab-pay"):
            yield FormField("fee", parser=parsers.rupees)
            yield FormField("mode", parser=parsers.lab_mode, placeholder="cash", label_key="field.lab_mode")
            yield FormField("mode_ref", parser=parsers.text)
            yield from approval_fields()
        yield Static("", id="form-msg")  # docked below the scrolling form, never over a field

    def on_mount(self) -> None:
        self.field("fee").input.disabled = True
        self.reset()

    def reset(self) -> None:
        self.query_one(PatientPicker).clear()
        self.tests, self.matches, self.visit = [], [], None
        for ff in self.fields():
            ff.set_text("")
            ff.set_problem(None)
        self.field("priority").set_text("routine")
        self.field("mode").set_text("cash")
        self._show_tests()
        self.query_one("#test-matches", Static).update("")
        self.set_focus(self.query_one("#search", Input))

    # ------------------------------------------------------------ patient
    def on_patient_picker_picked(self, event: PatientPicker.Picked) -> None:
        hit = event.hit
        self.set_focus(self.field("tests").input)  # at once: the clerk types the tests next
        self.visit = None  # until this patient's own visit is found
        app = self.counter
        app.run_blocking(app.work.todays_visit, hit, on_done=lambda v: self._got_visit(hit, v),
                         group="visit", exclusive=True)

    def _got_visit(self, hit: PatientHit, visit: str | None) -> None:
        if hit is not self.query_one(PatientPicker).picked:
            return  # the clerk picked someone else meanwhile: never order against their visit
        self.visit = visit
        if visit is None:
            self.say(tr("lab.no_visit", self.lang), error=True)
        else:
            self.say("")

    # -------------------------------------------------------------- tests
    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id != "in-tests":
            return
        query = event.value
        app = self.counter
        app.run_blocking(app.work.find_tests, query, on_done=lambda m: self._matches(query, m),
                         group="tests", exclusive=True)

    def _matches(self, query: str, matches: list[Test]) -> None:
        if query != self.field("tests").text:
            return
        self.matches = matches
        self.matched_query = query
        self.marked = 0
        self._show_matches()

    def _show_matches(self) -> None:
        lines = [f"{'→' if i == self.marked else ' '} {pad(t.code, 8)} {t.name} ({t.sample_type}) "
                 f"{format_paise(t.price_paise)}" for i, t in enumerate(self.matches)]
        self.query_one("#test-matches", Static).update("\n".join(lines))

    def action_mark(self, step: int) -> None:
        """↓/↑ in the test field move the → marker over the matches."""
        if self.app.focused is not self.field("tests").input or not self.matches:
            raise SkipAction()
        self.marked = max(0, min(len(self.matches) - 1, self.marked + step))
        self._show_matches()

    def enter_in_field(self, ff: FormField) -> bool:
        """Enter in the test picker adds the best match; on an empty picker it moves on."""
        if ff.input.id != "in-tests":
            return False
        if ff.input.value.strip():
            if self.matches and self.matched_query == ff.input.value:
                self._add(self.matches[self.marked])  # the marked one, as the clerk sees it
            else:
                self._add_first()
            return True
        ff.set_problem(None if self.tests else "choose at least one test")
        if self.tests:
            self.focus_next_field(ff)
        return True

    def _add_first(self) -> None:
        query = self.field("tests").text
        app = self.counter

        def done(matches: list[Test]) -> None:
            if not matches:
                self.field("tests").set_problem(f"is not a known test code: {query.strip().upper()}")
                return
            self._add(matches[0])

        # its own group: the matches' search for the same keys (Input.Changed comes after this Enter)
        # must not cancel it, or a fast "lft⏎" adds nothing
        app.run_blocking(app.work.find_tests, query, on_done=done, group="tests-add")

    def _add(self, test: Test) -> None:
        if test.code not in {t.code for t in self.tests}:
            self.tests.append(test)
        self.matches, self.marked, self.matched_query = [], 0, ""
        self.field("tests").set_text("")
        self.field("tests").set_problem(None)
        self.query_one("#test-matches", Static).update(tr("lab.added", self.lang, code=test.code))
        self._show_tests()

    def action_remove_test(self) -> None:
        if self.tests:
            self.tests.pop()
            self._show_tests()

    def _show_tests(self) -> None:
        total = sum(t.price_paise for t in self.tests)
        # the tube type whole ("EDTA whole blood", "Blood (culture bottle)"): it says which tube to draw
        lines = [f"  {pad(t.code, 8)} {pad(t.name, 24)} {pad(t.sample_type or '', 22)} {format_paise(t.price_paise):>10}"
                 for t in self.tests]
        lines.append(tr("lab.total", self.lang, total=format_paise(total)) + "   (" + tr("lab.remove", self.lang) + ")")
        self.query_one("#picked-tests", Static).update("\n".join(lines))
        self.field("fee").set_text(f"{total // 100}.{total % 100:02d}")

    def retranslate(self) -> None:
        super().retranslate()
        self._show_tests()

    def has_unsaved(self) -> bool:
        return bool(self.tests) or super().has_unsaved()

    # --------------------------------------------------------------- save
    def action_save(self) -> None:
        if self.saving or self.counter.session is None:
            return
        hit = self.picked_patient()
        if hit is None:
            return
        if self.visit is None:
            self.say(tr("lab.no_visit", self.lang), error=True)
            return
        if not self.tests:
            self.field("tests").set_problem("choose at least one test")
            self.say(tr("lab.no_tests", self.lang), error=True)
            self.field("tests").input.focus()
            return
        values, bad = self.collect()
        values.pop("tests", None)
        bad = [b for b in bad if b.field != "tests"]
        later = values.get("mode") == parsers.PAY_AT_BILLING
        payment = None if later else self.payment_from(values, bad)
        if bad:
            self.refuse(bad)
            return
        if payment is not None:
            payment = PaymentInput(mode=payment.mode, amount_paise=None, mode_ref=payment.mode_ref,
                                   waiver_reason=payment.waiver_reason)
        codes = [t.code for t in self.tests]
        visit = self.visit
        approver = self.take_approval(values)
        app, session = self.counter, self.who
        self.save_in_worker(
            lambda: app.work.lab_request(session, hit, visit, codes, payment=payment,
                                         priority=text_of(values, "priority") or "routine", approver=approver))

    def saved_message(self, result: Saved) -> str:
        if result.summary.get("receipt") is None and not result.docs:
            return tr("lab.pay_at_billing", self.lang, ref=result.ref)
        return tr("lab.saved", self.lang, ref=result.ref, sample=result.summary["sample"])

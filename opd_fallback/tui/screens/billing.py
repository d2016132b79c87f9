"""The billing desk (F12): find any patient of the hospital (this counter's,
the LAN's, central's index) by name, part of a mobile, offline number, uhid,
visit or order number, or a scanned tube barcode; see their visits and lab
orders from every counter with what is paid and what is due; take the payment
of a lab order placed at any counter (cash, UPI, card, or a waiver a
supervisor approves) and print the receipt and the order's tube labels.

Keys: type the search, Enter to the list, Enter picks the patient; the list of
orders gets the cursor on the first one due; ↑/↓ choose, Enter (or F10 from any
field) pays the highlighted order with the mode typed below it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Input, Static

from opd_fallback.domain.rules import format_paise
from opd_fallback.tui.i18n import tr
from opd_fallback.tui.ports import Saved
from opd_fallback.tui.screens.form import FormScreen, approval_fields
from opd_fallback.tui.values import PaymentInput
from opd_fallback.tui.widgets import parsers
from opd_fallback.tui.widgets.columns import add_columns, retranslate_columns
from opd_fallback.tui.widgets.form_field import FormField
from opd_fallback.tui.widgets.patient_picker import PatientPicker
from opd_fallback.tui.widgets.tlabel import TLabel

if TYPE_CHECKING:
    from opd_fallback.tui.values import Account, OrderLine, PatientHit

ORDER_COLUMNS = ["col.order", "col.counter", "col.tests", "col.total", "col.paid", "col.due"]


class BillingScreen(FormScreen):
    HINTS = "keys.billing"

    def __init__(self) -> None:
        super().__init__()
        self.account: Account | None = None  # the picked patient's visits and orders
        self.chosen: str | None = None  # the order Enter chose (F10 pays the highlighted one otherwise)

    def body(self) -> ComposeResult:
        with VerticalScroll(classes="form"):
            yield TLabel("billing.title", classes="title")
            yield PatientPicker()
            yield Static("", id="account-head")
            table: DataTable[str] = DataTable(id="orders", cursor_type="row", zebra_stripes=True)
            yield table
            yield Static("", id="visits")
            yield FormField("mode", parser=parsers.mode, placeholder="cash")
            yield FormField("mode_ref", parser=parsers.text)
            yield from approval_fields()
        yield Static("", id="form-msg")

    def on_mount(self) -> None:
        add_columns(self.query_one("#orders", DataTable), ORDER_COLUMNS, self.lang)
        self.reset()

    def reset(self) -> None:
        self.query_one(PatientPicker).clear()
        self.account, self.chosen = None, None
        self.query_one("#orders", DataTable).clear()
        self.query_one("#account-head", Static).update("")
        self.query_one("#visits", Static).update("")
        for ff in self.fields():
            ff.set_text("")
            ff.set_problem(None)
        self.field("mode").set_text("cash")
        self.show_approval()
        self.set_focus(self.query_one("#search", Input))

    def would_lose(self) -> bool:
        # a patient looked up is not work lost: only a payment being typed asks before Esc
        return any(ff.edited for ff in self.fields() if ff.display and not ff.input.disabled and not ff.password)

    def on_screen_resume(self) -> None:
        if not self.has_unsaved():  # a new patient each time the desk is opened
            self.reset()

    # ------------------------------------------------------------ patient
    def on_patient_picker_picked(self, event: PatientPicker.Picked) -> None:
        hit = event.hit
        self.set_focus(self.query_one("#orders", DataTable))
        self.load_account(hit)

    def load_account(self, hit: PatientHit) -> None:
        app = self.counter
        app.run_blocking(app.work.account, hit, on_done=lambda acc: self._show_account(hit, acc),
                         group="account", exclusive=True)

    def _show_account(self, hit: PatientHit, acc: Account) -> None:
        if hit is not self.query_one(PatientPicker).picked:
            return  # another patient was picked meanwhile
        self.account, self.chosen = acc, None
        table = self.query_one("#orders", DataTable)
        table.clear()
        for o in acc.orders:
            table.add_row(o.ref, o.device_id, " ".join(o.tests)[:22], format_paise(o.total_paise),
                          format_paise(o.paid_paise), format_paise(o.due_paise) if o.due_paise else "-")
        due = [i for i, o in enumerate(acc.orders) if o.due_paise]
        if due:
            table.move_cursor(row=due[0])
        self.query_one("#account-head", Static).update(self._head_text())
        self.query_one("#visits", Static).update(self._visits_text())
        if not acc.orders:
            self.say(tr("billing.no_orders", self.lang))
        elif not due:
            self.say(tr("billing.nothing_due", self.lang))
        else:
            self.say(tr("billing.choose", self.lang))

    def _head_text(self) -> str:
        hit = self.query_one(PatientPicker).picked
        if hit is None or self.account is None:
            return ""
        return tr("billing.head", self.lang, name=hit.name, age_sex=hit.age_sex,
                  ref=hit.uhid or hit.local_ref or "", due=format_paise(self.account.due_paise))

    def _visits_text(self) -> str:
        if self.account is None or not self.account.visits:
            return ""
        parts = [f"{v.ref} {v.department} #{v.token_no} {format_paise(v.paid_paise)}" for v in self.account.visits[:3]]
        return tr("billing.visits", self.lang, visits="; ".join(parts))

    def retranslate(self) -> None:
        super().retranslate()
        retranslate_columns(self.query_one("#orders", DataTable), self.lang)
        self.query_one("#account-head", Static).update(self._head_text())
        self.query_one("#visits", Static).update(self._visits_text())

    # -------------------------------------------------------------- order
    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id != "orders":
            return
        event.stop()
        order = self._order_at(event.cursor_row)
        if order is None:
            return
        if not order.due_paise:
            self.say(tr("billing.already_paid", self.lang, ref=order.ref), error=True)
            return
        self.chosen = order.ref
        self.say(tr("billing.chosen", self.lang, ref=order.ref, due=format_paise(order.due_paise)))
        self.set_focus(self.field("mode").input)

    def _order_at(self, row: int) -> OrderLine | None:
        if self.account is None or not 0 <= row < len(self.account.orders):
            return None
        return self.account.orders[row]

    def _order_to_pay(self) -> OrderLine | None:
        if self.account is None:
            return None
        if self.chosen is not None:
            return next((o for o in self.account.orders if o.ref == self.chosen), None)
        return self._order_at(self.query_one("#orders", DataTable).cursor_row)

    def has_unsaved(self) -> bool:
        return self.saving or self.chosen is not None or bool(self.query_one("#search", Input).value.strip())

    # --------------------------------------------------------------- save
    def action_save(self) -> None:
        if self.saving or self.counter.session is None:
            return
        hit = self.picked_patient()
        if hit is None:
            return
        order = self._order_to_pay()
        if order is None:
            self.say(tr("billing.no_orders", self.lang), error=True)
            return
        if not order.due_paise:
            self.say(tr("billing.already_paid", self.lang, ref=order.ref), error=True)
            return
        values, bad = self.collect()
        payment = self.payment_from(values, bad)
        if bad:
            self.refuse(bad)
            return
        assert payment is not None
        payment = PaymentInput(mode=payment.mode, amount_paise=None, mode_ref=payment.mode_ref,
                               waiver_reason=payment.waiver_reason)
        approver = self.take_approval(values)
        app, session = self.counter, self.who
        ref = order.ref
        self.save_in_worker(lambda: app.work.pay_order(session, ref, payment, approver=approver))

    def saved_message(self, result: Saved) -> str:
        return tr("billing.paid", self.lang, ref=result.ref, receipt=result.summary["receipt"],
                  amount=format_paise(result.summary["amount_paise"]), labels=result.summary["labels"])


__all__ = ["ORDER_COLUMNS", "BillingScreen"]

"""Revisit: find the patient, open a visit and take the fee in one flow."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Input, Static

from opd_fallback.tui.screens.form import text_of
from opd_fallback.tui.screens.register import VisitForm
from opd_fallback.tui.widgets.patient_picker import PatientPicker
from opd_fallback.tui.widgets.tlabel import TLabel


class RevisitScreen(VisitForm):
    VISIT_TYPE = "revisit"

    def body(self) -> ComposeResult:
        with VerticalScroll(classes="form"):
            yield TLabel("revisit.title", classes="title")
            yield PatientPicker()
            yield from self.visit_fields()
        yield Static("", id="form-msg")  # docked below the scrolling form, never over a field

    def on_mount(self) -> None:
        self.reset()

    def on_screen_resume(self) -> None:
        # a search left without picking anyone starts empty: the next patient is someone else
        picker = self.query_one(PatientPicker)
        if picker.picked is None and not self.saving:
            picker.clear()
            self.set_focus(self.query_one("#search", Input))

    def reset(self) -> None:
        self.query_one(PatientPicker).clear()
        super().reset()
        self.set_focus(self.query_one("#search", Input))

    def on_patient_picker_picked(self, event: PatientPicker.Picked) -> None:
        self.set_focus(self.field("department").input)

    def action_save(self) -> None:
        if self.saving or self.counter.session is None:
            return
        hit = self.picked_patient()
        if hit is None:
            return
        values, bad = self.collect()
        payment = self.payment_from(values, bad)
        if bad:
            self.refuse(bad)
            return
        approver = self.take_approval(values)
        app, session = self.counter, self.who
        self.save_in_worker(
            lambda: app.work.revisit(
                session, hit, department=text_of(values, "department") or "", unit=text_of(values, "unit"),
                payment=payment, category=text_of(values, "category") or "general", approver=approver,
            ))

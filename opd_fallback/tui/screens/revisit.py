"""Revisit: find the patient, open a visit and take the fee in one flow."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Input, Static

from opd_fallback.tui.screens.form import FormScreen, payment_fields
from opd_fallback.tui.screens.register import DepartmentFields
from opd_fallback.tui.widgets import parsers
from opd_fallback.tui.widgets.form_field import FormField
from opd_fallback.tui.widgets.patient_picker import PatientPicker
from opd_fallback.tui.widgets.tlabel import TLabel


class RevisitScreen(DepartmentFields, FormScreen):
    def __init__(self) -> None:
        super().__init__()
        self.departments = {}

    def body(self) -> ComposeResult:
        with VerticalScroll(classes="form"):
            yield TLabel("revisit.title", classes="title")
            yield PatientPicker()
            yield FormField("category", parser=parsers.category, placeholder="general")
            yield from self.department_fields()
            yield from payment_fields()
            yield Static("", id="form-msg")

    def on_mount(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.query_one(PatientPicker).clear()
        for ff in self.fields():
            ff.set_text("")
            ff.set_problem(None)
            ff.set_hint("")
        self.field("category").set_text("general")
        self.field("mode").set_text("cash")
        self.load_departments()
        self.refresh_fee()
        self.query_one("#search", Input).focus()

    def on_patient_picker_picked(self, event: PatientPicker.Picked) -> None:
        self.field("category").input.focus()

    def after_field(self, name: str, ok: bool, value: Any) -> None:
        if name == "category" and ok:
            self.refresh_fee()
        if name == "department" and ok and value:
            self.department_hint(value)

    def refresh_fee(self) -> None:
        try:
            category = parsers.category(self.field("category").text or "general")
        except ValueError:
            return
        app = self.app
        editable = bool(app.session and app.session.is_supervisor)  # type: ignore[attr-defined]
        app.run_blocking(app.backend.opd_fee, "revisit", category,  # type: ignore[attr-defined]
                         on_done=lambda q: self.apply_fee(q, editable=editable), group="fee", exclusive=True)

    def action_save(self) -> None:
        if self.saving or self.app.session is None:  # type: ignore[attr-defined]
            return
        hit = self.picked_patient()
        if hit is None:
            return
        values, bad = self.collect()
        payment = self.payment_from(values, bad)
        if bad:
            self.refuse(bad)
            return
        app = self.app
        self.save_in_worker(
            lambda: app.backend.revisit(  # type: ignore[attr-defined]
                app.session, hit, department=values["department"], unit=values.get("unit"),  # type: ignore[attr-defined]
                payment=payment, category=values.get("category") or "general",
            ))

"""New registration: patient, OPD visit and fee in one form and one save."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.suggester import SuggestFromList
from textual.widgets import Static

from opd_fallback.domain import rules
from opd_fallback.domain.contract import Department
from opd_fallback.tui.screens.form import FormScreen, payment_fields
from opd_fallback.tui.widgets import parsers
from opd_fallback.tui.widgets.form_field import FormField
from opd_fallback.tui.widgets.tlabel import TLabel

PATIENT_FIELDS = (
    "name", "name_local", "sex", "age_years", "age_months", "age_days", "guardian_relation",
    "guardian_name", "mobile", "abha_number", "address_line", "district", "state", "pin", "category",
)


class DepartmentFields:
    """Department and unit checked against master data (loaded in a worker)."""

    departments: dict[str, Department]

    def department_parser(self, text: str) -> str:
        code = rules.code(text, what="department code")
        if self.departments and code not in self.departments:
            raise ValueError(f"is not a known department here ({', '.join(sorted(self.departments))})")
        return code

    def unit_parser(self, text: str) -> str | None:
        code = rules.code(text, what="unit code")
        dept_text = self.field("department").text  # type: ignore[attr-defined]
        dept = self.departments.get(dept_text.strip().upper()) if self.departments else None
        if dept is not None and dept.units and code not in {u.code for u in dept.units}:
            raise ValueError(f"is not a known unit of {dept.name} ({', '.join(u.code for u in dept.units)})")
        return code

    def department_fields(self) -> list[FormField]:
        return [
            FormField("department", parser=self.department_parser, required=True, placeholder="MED"),
            FormField("unit", parser=self.unit_parser, placeholder=""),
        ]

    def load_departments(self) -> None:
        app = self.app  # type: ignore[attr-defined]
        app.run_blocking(app.backend.departments, on_done=self._got_departments, group="master")

    def _got_departments(self, departments: list[Department]) -> None:
        self.departments = {d.code: d for d in departments}
        codes = sorted(self.departments)
        dept = self.field("department")  # type: ignore[attr-defined]
        dept.input.suggester = SuggestFromList(codes, case_sensitive=False)
        dept.set_hint(" ".join(codes)[:60])

    def department_hint(self, code: str) -> None:
        dept = self.departments.get(code) if self.departments else None
        if dept is not None:
            lang = self.app.lang  # type: ignore[attr-defined]
            name = dept.name_hi if lang == "hi" and getattr(dept, "name_hi", None) else dept.name
            self.field("department").set_hint(name)  # type: ignore[attr-defined]
            units = " ".join(u.code for u in dept.units)
            self.field("unit").set_hint(units)  # type: ignore[attr-defined]


class VisitForm(DepartmentFields, FormScreen):
    """What the new-registration and revisit forms share: category, department,
    unit and the OPD fee for ``VISIT_TYPE`` (quoted in a worker)."""

    VISIT_TYPE = "new"

    def __init__(self) -> None:
        super().__init__()
        self.departments = {}

    def visit_fields(self) -> ComposeResult:
        yield FormField("category", parser=parsers.category, placeholder="general")
        yield from self.department_fields()
        yield from payment_fields()
        yield Static("", id="form-msg")

    def reset(self) -> None:
        for ff in self.fields():
            ff.set_text("")
            ff.set_problem(None)
            ff.set_hint("")
        self.field("category").set_text("general")
        self.field("mode").set_text("cash")
        self.field("fee").input.disabled = False
        self.load_departments()
        self.refresh_fee()

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
        app.run_blocking(  # type: ignore[attr-defined]
            app.backend.opd_fee, self.VISIT_TYPE, category,  # type: ignore[attr-defined]
            on_done=lambda q: self.apply_fee(q, editable=editable), group="fee", exclusive=True,
        )


class RegisterScreen(VisitForm):
    """F10 saves: registration + visit + payment in one transaction; then the
    slip and receipt print (in a worker) and the form clears."""

    def body(self) -> ComposeResult:
        with VerticalScroll(classes="form", id="reg-form"):
            yield TLabel("reg.title", classes="title")
            yield FormField("name", parser=parsers.name, required=True, placeholder="Ram Kumar")
            yield FormField("name_local", parser=parsers.name_local, placeholder="राम कुमार")
            yield FormField("sex", parser=parsers.sex, required=True, placeholder="M / F / O")
            yield FormField("age_years", parser=parsers.age_years, placeholder="0-130")
            yield FormField("age_months", parser=parsers.age_months, placeholder="0-11")
            yield FormField("age_days", parser=parsers.age_days, placeholder="0-31")
            yield FormField("guardian_relation", parser=parsers.relation, placeholder="S/O")
            yield FormField("guardian_name", parser=parsers.text)
            yield FormField("mobile", parser=rules.mobile, placeholder="98765 43210")
            yield FormField("abha_number", parser=rules.abha_number)
            yield FormField("address_line", parser=parsers.text)
            yield FormField("district", parser=parsers.text)
            yield FormField("state", parser=parsers.text)
            yield FormField("pin", parser=rules.pin_code, placeholder="226003")
            yield from self.visit_fields()

    def on_mount(self) -> None:
        self.reset()

    def reset(self) -> None:
        super().reset()
        self.field("name").input.focus()
        self.query_one(VerticalScroll).scroll_home(animate=False)

    def action_save(self) -> None:
        if self.saving or self.app.session is None:  # type: ignore[attr-defined]
            return
        values, bad = self.collect()
        if not any(values.get(k) is not None for k in ("age_years", "age_months", "age_days")) and not any(
            f.field.startswith("age_") for f in bad
        ):
            ff = self.field("age_years")
            ff.set_problem("give the age (years, months or days) or the birth date")
            bad.insert(0, ff)
        if (values.get("guardian_relation") is None) != (values.get("guardian_name") is None):
            ff = self.field("guardian_relation" if values.get("guardian_relation") is None else "guardian_name")
            ff.set_problem("is required")
            bad.append(ff)
        payment = self.payment_from(values, bad)
        if bad:
            self.refuse(sorted(set(bad), key=self.fields().index))
            return
        patient = {k: values.get(k) for k in PATIENT_FIELDS if values.get(k) is not None}
        patient.setdefault("category", "general")
        approver = self.take_approval(values)
        app = self.app
        self.save_in_worker(
            lambda: app.backend.register_new(  # type: ignore[attr-defined]
                app.session, patient, department=values["department"], unit=values.get("unit"),  # type: ignore[attr-defined]
                payment=payment, approver=approver,
            ))

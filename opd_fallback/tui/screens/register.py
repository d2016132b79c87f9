"""New registration: patient, OPD visit and fee in one form and one save."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual import on
from textual.actions import SkipAction
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.events import DescendantFocus
from textual.widget import Widget
from textual.widgets import Input, OptionList, Static
from textual.worker import Worker, WorkerCancelled, WorkerFailed

from opd_fallback.domain import rules
from opd_fallback.domain.contract import Department
from opd_fallback.tui.i18n import Lang, tr
from opd_fallback.tui.screens.base import CounterAppAccess
from opd_fallback.tui.screens.form import FormScreen, payment_fields, text_of
from opd_fallback.tui.typeahead import after_queued_keys
from opd_fallback.tui.widgets import parsers
from opd_fallback.tui.widgets.form_field import FormField
from opd_fallback.tui.widgets.tlabel import TLabel

if TYPE_CHECKING:
    from opd_fallback.tui.ports import Saved
    from opd_fallback.tui.screens.duplicates import Choice
    from opd_fallback.tui.values import PatientHit, PossibleMatch

PATIENT_FIELDS = (
    "name", "name_local", "sex", "age_years", "age_months", "age_days", "guardian_relation",
    "guardian_name", "mobile", "abha_number", "address_line", "district", "state", "pin", "category",
)


def department_matches(departments: dict[str, Department], text: str, lang: Lang = "en") -> list[Department]:
    """Departments for what the clerk typed: codes starting with it first, then
    names containing it (case-insensitive); everything for an empty field."""
    t = text.strip().upper()
    if not t:
        return [departments[c] for c in sorted(departments)]
    first = [d for c, d in sorted(departments.items()) if c.startswith(t)]
    rest = [d for c, d in sorted(departments.items())
            if d not in first and (t in d.name.upper() or t in (getattr(d, "name_hi", None) or ""))]
    return first + rest


class DepartmentList(OptionList):
    """The departments that fit what is typed in Department, under the field:
    the highlighted one is what Enter takes; ↑↓ move; the list scrolls."""

    DEFAULT_CSS = """
    DepartmentList { height: auto; max-height: 6; margin: 0 0 0 26; border: none; padding: 0;
                     scrollbar-size-vertical: 1; }
    """
    can_focus = False


# a mixin of FormScreen (which supplies ``field``, ``query``...): typed as one for mypy
if TYPE_CHECKING:
    _Mixin = FormScreen
else:
    _Mixin = CounterAppAccess


class DepartmentFields(_Mixin):
    """Department and unit checked against master data (loaded in a worker)."""

    departments: dict[str, Department]
    _departments_loading: Worker[None] | None = None
    shown_departments: list[Department]

    def department_parser(self, text: str) -> str:
        code = rules.code(text, what="department code")
        if self.departments and code not in self.departments:
            raise ValueError(f"is not a known department here ({', '.join(sorted(self.departments))})")
        return code

    def unit_parser(self, text: str) -> str | None:
        code = rules.code(text, what="unit code")
        dept_text = self.field("department").text
        dept = self.departments.get(dept_text.strip().upper()) if self.departments else None
        if dept is not None and dept.units and code not in {u.code for u in dept.units}:
            raise ValueError(f"is not a known unit of {dept.name} ({', '.join(u.code for u in dept.units)})")
        return code

    def department_fields(self) -> list[Widget]:
        dept_list = DepartmentList(id="dept-list")
        dept_list.display = False
        return [
            FormField("department", parser=self.department_parser, required=True, placeholder="MED"),
            dept_list,
            FormField("unit", parser=self.unit_parser, placeholder=""),
        ]

    def load_departments(self) -> None:
        app = self.counter
        self._departments_loading = app.run_blocking(app.work.departments, on_done=self._got_departments,
                                                     group="master")

    def _got_departments(self, departments: list[Department]) -> None:
        self.departments = {d.code: d for d in departments}
        self._departments_loading = None
        self.show_departments()

    async def departments_ready(self) -> None:
        """Wait (briefly) for the master data a fast clerk's Enter in Department needs."""
        worker = getattr(self, "_departments_loading", None)
        if worker is not None and not self.departments:
            try:
                await asyncio.wait_for(worker.wait(), 2.0)
            except (TimeoutError, WorkerFailed, WorkerCancelled):
                return
            await after_queued_keys(self)  # a FormScreen: its on_done has run

    def _dept_label(self, d: Department) -> str:
        lang = self.counter.lang
        name = d.name_hi if lang == "hi" and getattr(d, "name_hi", None) else d.name
        return f"{d.code:<7} {name}"

    def show_departments(self) -> None:
        """Refresh the list under Department for its text (shown while it has the cursor)."""
        if not self.query("#dept-list"):
            return
        dept_list = self.query_one("#dept-list", DepartmentList)
        ff = self.field("department")
        self.shown_departments = department_matches(self.departments, ff.text) if self.departments else []
        dept_list.clear_options()
        dept_list.add_options([self._dept_label(d) for d in self.shown_departments])
        if self.shown_departments:
            dept_list.highlighted = 0
        dept_list.display = bool(self.shown_departments) and self.counter.focused is ff.input

    def highlighted_department(self) -> Department | None:
        """What Enter in Department takes: the highlighted match for the text as it is now."""
        if not self.departments:
            return None
        text = self.field("department").text
        if text.strip().upper() in self.departments:
            return self.departments[text.strip().upper()]
        if not text.strip():
            return None
        matches = department_matches(self.departments, text)
        dept_list = self.query_one("#dept-list", DepartmentList)
        index = dept_list.highlighted or 0
        if matches != getattr(self, "shown_departments", None):
            index = 0
        return matches[index] if 0 <= index < len(matches) else None

    def move_department(self, step: int) -> bool:
        """↑/↓ in Department move the highlight; False when not there."""
        if not self.query("#dept-list"):
            return False
        dept_list = self.query_one("#dept-list", DepartmentList)
        if self.counter.focused is not self.field("department").input or not dept_list.option_count:
            return False
        dept_list.highlighted = max(0, min(dept_list.option_count - 1, (dept_list.highlighted or 0) + step))
        return True

    def department_hint(self, code: str) -> None:
        dept = self.departments.get(code) if self.departments else None
        if dept is not None:
            lang = self.counter.lang
            name = dept.name_hi if lang == "hi" and getattr(dept, "name_hi", None) else dept.name
            self.field("department").set_hint(name or dept.name)
            units = " ".join(u.code for u in dept.units)
            unit = self.field("unit")
            unit.set_hint(units)
            if len(dept.units) == 1 and not unit.edited:
                unit.set_text(dept.units[0].code)  # the department's only unit
            elif unit.text and unit.text.strip().upper() not in {u.code for u in dept.units}:
                unit.set_text("")


class VisitForm(DepartmentFields, FormScreen):
    """What the new-registration and revisit forms share: category, department,
    unit and the OPD fee for ``VISIT_TYPE`` (quoted in a worker)."""

    VISIT_TYPE = "new"
    BINDINGS = [
        *FormScreen.BINDINGS,
        Binding("down", "department_step(1)", show=False, priority=True),
        Binding("up", "department_step(-1)", show=False, priority=True),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.departments = {}
        self.shown_departments = []

    def visit_fields(self) -> ComposeResult:
        yield from self.department_fields()
        yield FormField("category", parser=parsers.category, placeholder="general")
        yield from payment_fields()

    def retranslate(self) -> None:
        super().retranslate()
        self.show_departments()
        code = self.field("department").text.strip().upper()
        if code in self.departments:
            self.department_hint(code)

    # the department list follows the Department field
    def action_department_step(self, step: int) -> None:
        if not self.move_department(step):
            raise SkipAction()

    @on(Input.Changed, "#in-department")
    def _department_typed(self) -> None:
        self.show_departments()

    def on_descendant_focus(self, event: DescendantFocus) -> None:
        if self.query("#dept-list"):
            self.show_departments()

    async def before_enter(self, ff: FormField) -> None:
        if ff.field == "department":
            await self.departments_ready()

    def enter_in_field(self, ff: FormField) -> bool:
        """Enter in Department takes the highlighted department, then moves on."""
        if ff.field == "department":
            dept = self.highlighted_department()
            if dept is not None:
                ff.input.value = dept.code
            self.query_one("#dept-list", DepartmentList).display = False
        return False

    def reset(self) -> None:
        for ff in self.fields():
            ff.set_text("")
            ff.set_problem(None)
            ff.set_hint("")
        backend = self.counter.work
        for name in ("district", "state"):  # the hospital's, the usual answer
            if self.has_field(name) and getattr(backend, name, None):
                self.field(name).set_text(getattr(backend, name))
        self.field("category").set_text("general")
        self.field("mode").set_text("cash")
        self.field("fee").input.disabled = False
        self.load_departments()
        self.refresh_fee()

    def after_field(self, name: str, ok: bool, value: object) -> None:
        if name == "category" and ok:
            self.refresh_fee()
        if name == "department" and ok and isinstance(value, str) and value:
            self.department_hint(value)

    def refresh_fee(self) -> None:
        try:
            category = parsers.category(self.field("category").text or "general")
        except ValueError:
            return
        app = self.counter
        editable = bool(app.session and app.session.is_supervisor)
        app.run_blocking(
            app.work.opd_fee, self.VISIT_TYPE, category,
            on_done=lambda q: self.apply_fee(q, editable=editable), group="fee", exclusive=True,
        )


@dataclass(frozen=True)
class _Found:
    """What the save worker answers instead of a save: registered patients this one may be."""

    who: tuple[object, ...]
    found: list[PossibleMatch]


class RegisterScreen(VisitForm):
    """F10 saves: registration + visit + payment in one transaction; then the
    slip and receipt print (in a worker) and the form clears."""

    def body(self) -> ComposeResult:
        with VerticalScroll(classes="form", id="reg-form"):
            yield TLabel("reg.title", classes="title")
            # what nearly every patient needs, in the order a clerk asks; F10 saves from any field
            yield FormField("name", parser=parsers.name, required=True, placeholder="Ram Kumar")
            yield FormField("sex", parser=parsers.sex, required=True, placeholder="M / F / O")
            yield FormField("age_years", parser=parsers.age_years, placeholder="0-130")
            yield FormField("mobile", parser=rules.mobile, placeholder="98765 43210")
            yield FormField("guardian_relation", parser=parsers.relation, placeholder="S/O")
            yield FormField("guardian_name", parser=parsers.text)
            yield from self.visit_fields()
            # the rest, rarely asked: after the fee, never in the way
            yield TLabel("reg.more", classes="section")
            yield FormField("name_local", parser=parsers.name_local, placeholder="राम कुमार")
            yield FormField("age_months", parser=parsers.age_months, placeholder="0-11")
            yield FormField("age_days", parser=parsers.age_days, placeholder="0-31")
            yield FormField("abha_number", parser=rules.abha_number)
            yield FormField("address_line", parser=parsers.text)
            yield FormField("district", parser=parsers.text)
            yield FormField("state", parser=parsers.text)
            yield FormField("pin", parser=rules.pin_code, placeholder="226003")
        yield Static("", id="form-msg")  # docked below the scrolling form, never over a field

    duplicates_cleared: tuple[object, ...] | None = None

    def on_mount(self) -> None:
        self.reset()

    def _duplicates_checked(self, who: tuple[object, ...], found: list[PossibleMatch]) -> None:
        if not found:
            self.duplicates_cleared = who
            self.action_save()
            return
        from opd_fallback.tui.screens.duplicates import DuplicatesScreen

        def chosen(choice: Choice | None) -> None:
            if choice is None:
                return  # back to the form as it was
            if choice[0] == "new":
                self.duplicates_cleared = who
                self.action_save()
            elif choice[1] is not None:
                self.run_worker(self._take_existing(choice[1]), group="dupes")

        self.app.push_screen(DuplicatesScreen(found), chosen)

    async def _take_existing(self, hit: PatientHit) -> None:
        """The clerk took the registered patient: a revisit for them, same department."""
        from opd_fallback.tui.screens.revisit import RevisitScreen
        from opd_fallback.tui.widgets.patient_picker import PatientPicker

        dept, unit = self.field("department").text, self.field("unit").text
        self.reset()
        await self.counter.open_flow("revisit")
        screen = self.app.screen
        if isinstance(screen, RevisitScreen):
            screen.query_one(PatientPicker).pick(hit)
            screen.field("department").set_text(dept)
            screen.field("unit").set_text(unit)

    def reset(self) -> None:
        self.duplicates_cleared = None
        super().reset()
        self.set_focus(self.field("name").input)  # now, not later: keys typed after F2 land here
        self.query_one(VerticalScroll).scroll_home(animate=False)

    def action_save(self) -> None:
        if self.saving or self.counter.session is None:
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
        who = tuple(patient.get(k) for k in ("name", "sex", "age_years", "mobile"))
        app, session = self.counter, self.who
        check = self.duplicates_cleared != who
        if check and self.needs_approval():
            # is this patient already registered? (read in a worker) before the supervisor's PIN is taken
            app.run_blocking(app.work.possible_duplicates, patient,
                             on_done=lambda found: self._duplicates_checked(who, found), group="dupes",
                             exclusive=True)
            return
        approver = self.take_approval(values)

        def check_then_save() -> Saved | _Found:
            # One worker after F10 (issue 21: F10 to commit under 50 ms): is this patient
            # already registered (indexed by mobile)? If not, save at once, with nothing
            # between the check and the commit; if so, nothing is saved and the clerk is asked.
            if check:
                found = app.work.possible_duplicates(patient)
                if found:
                    return _Found(who, found)
            return app.work.register_new(
                session, patient, department=text_of(values, "department") or "", unit=text_of(values, "unit"),
                payment=payment, approver=approver,
            )

        self.saving = True
        self.say(tr("reg.saving", self.lang))
        app.run_blocking(check_then_save, on_done=self._checked_or_saved, on_error=self.save_failed, group="save")

    def _checked_or_saved(self, result: Saved | _Found) -> None:
        if isinstance(result, _Found):  # not saved: possible duplicates to show first
            self.saving = False
            self.say("")
            self._duplicates_checked(result.who, result.found)
            return
        self.saved(result)

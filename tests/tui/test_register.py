"""New registration by keyboard: the patient, visit and fee with their ops, and
the printed slip; bad input shown inline and nothing saved."""

from __future__ import annotations

import json
from pathlib import Path

from sqlmodel import select

from opd_fallback.store.engine import Store
from opd_fallback.store.tables import Op, Patient, Payment, Visit
from opd_fallback.tui.screens.register import RegisterScreen

from .conftest import login, settle, type_text

# Field order of the form, as Enter walks it.
ORDER = [
    "name", "sex", "age_years", "mobile", "guardian_relation", "guardian_name", "department", "unit", "category",
    "fee", "mode", "mode_ref", "name_local", "age_months", "age_days", "abha_number", "address_line", "district",
    "state", "pin",
]


async def fill(pilot, values: dict[str, str]) -> None:
    """Walk the form with Enter, typing each value in its field."""
    app = pilot.app
    last = max(ORDER.index(name) for name in values)
    for name in ORDER[:last + 1]:
        ff = app.screen.query_one(f"#ff-{name}")
        if ff.input.disabled:
            continue
        assert app.focused is ff.input, f"expected focus on {name}, got {app.focused}"
        text = ""
        if name in values:
            if ff.input.value:
                ff.input.action_select_all()
                await pilot.press("backspace")
            text = values[name]
        await type_text(pilot, text, then="enter")
        if name in ("category", "department", "unit"):
            await settle(pilot, 1)


def counts(store: Store) -> tuple[int, int, int, int]:
    with store.read() as s:
        return (len(s.exec(select(Patient)).all()), len(s.exec(select(Visit)).all()),
                len(s.exec(select(Payment)).all()), len(s.exec(select(Op)).all()))


async def test_new_registration_saves_patient_visit_fee_and_prints_slip(make_app, store: Store, tmp_path: Path) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot)
        await pilot.press("f2")
        await settle(pilot)
        assert isinstance(app.screen, RegisterScreen)
        await fill(pilot, {
            "name": "Ram Kumar", "name_local": "राम कुमार", "sex": "m", "age_years": "42",
            "guardian_relation": "s", "guardian_name": "Shyam Lal", "mobile": "+91 98765-43210",
            "district": "Lucknow", "pin": "226003", "department": "med", "unit": "med-u1",
        })
        assert app.screen.query_one("#ff-fee").input.disabled  # a clerk cannot change the fee
        await pilot.press("f10")
        await settle(pilot)
        msg = str(app.screen.query_one("#form-msg").render())
        assert "Saved C07-" in msg and "token 1" in msg
        saved_msg = msg
        assert app.screen.query_one("#ff-name").input.value == ""  # cleared for the next patient
        assert app.focused is app.screen.query_one("#ff-name").input

    with store.read() as s:
        (patient,) = s.exec(select(Patient)).all()
        (visit,) = s.exec(select(Visit)).all()
        (payment,) = s.exec(select(Payment)).all()
        ops = s.exec(select(Op).order_by(Op.seq)).all()
    assert (patient.name, patient.name_local, patient.sex, patient.age_years) == ("Ram Kumar", "राम कुमार", "M", 42)
    assert (patient.mobile, patient.guardian_relation, patient.operator_id) == ("9876543210", "S/O", "op1")
    assert (visit.department, visit.unit, visit.visit_type, visit.token_no) == ("MED", "MED-U1", "new", 1)
    assert (payment.amount_paise, payment.mode) == (1000, "cash")
    assert json.loads(payment.items) == [{"code": "OPD-NEW", "qty": 1, "amount_paise": 1000}]
    assert [o.kind for o in ops] == ["patient.register", "visit.open", "payment.record"]
    assert all(o.operator_id == "op1" and o.state == "pending" for o in ops)

    (slip,) = (tmp_path / "prints").glob("*-slip-*.txt")
    text = slip.read_text(encoding="utf-8")
    assert visit.local_ref in text and f"[QR {visit.local_ref}]" in text
    assert f"Saved {visit.local_ref}" in saved_msg  # the clerk is told the number the slip shows
    assert "राम कुमार" in text and "Token" in text
    (receipt,) = (tmp_path / "prints").glob("*-receipt-*.txt")
    assert payment.receipt_no in receipt.read_text(encoding="utf-8")


async def test_exempt_category_waives_the_fee(make_app, store: Store) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot)
        await pilot.press("f2")
        await settle(pilot)
        await fill(pilot, {"name": "Sita Devi", "sex": "f", "age_years": "30", "category": "bpl",
                           "department": "MED"})
        await pilot.press("f10")
        await settle(pilot)
    with store.read() as s:
        (payment,) = s.exec(select(Payment)).all()
    assert (payment.amount_paise, payment.mode) == (0, "waived")


async def test_bad_mobile_age_and_missing_fields_save_nothing(make_app, store: Store) -> None:
    before = counts(store)
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot)
        await pilot.press("f2")
        await settle(pilot)
        await fill(pilot, {"name": "Ram 2", "age_years": "140", "mobile": "12345", "pin": "012345"})
        screen = app.screen
        errors = {n: str(screen.query_one(f"#ff-{n}").query_one(".error").render()) for n in
                  ("name", "age_years", "mobile", "pin")}
        assert "English letters" in errors["name"]
        assert "between 0 and 130" in errors["age_years"]
        assert "must have 10 digits (got 5)" in errors["mobile"]
        assert "cannot start with 0" in errors["pin"]
        await pilot.press("f10")
        await settle(pilot)
        assert "Sex: is required" in str(screen.query_one("#ff-sex").query_one(".error").render())
        assert "Department: is required" in str(screen.query_one("#ff-department").query_one(".error").render())
        assert "Please correct" in str(screen.query_one("#form-msg").render())
        assert app.focused is screen.query_one("#ff-name").input
    assert counts(store) == before


async def test_upi_needs_a_reference(make_app, store: Store) -> None:
    before = counts(store)
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot)
        await pilot.press("f2")
        await settle(pilot)
        await fill(pilot, {"name": "Ram", "sex": "M", "age_years": "5", "department": "PAED", "mode": "u"})
        await pilot.press("f10")
        await settle(pilot)
        assert "UTR" in str(app.screen.query_one("#ff-mode_ref").query_one(".error").render())
    assert counts(store) == before


async def test_typed_ahead_keys_land_in_the_next_fields(make_app, store: Store) -> None:
    """A fast clerk types 'name⏎⏎sex⏎age⏎' before the screen has caught up:
    every key must still land in the field it was meant for."""
    from textual import events

    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        driver = app._driver
        assert driver is not None

        def burst(keys: list[tuple[str, str | None]]) -> None:
            for key, ch in keys:
                event = events.Key(key, ch)
                event.set_sender(app)
                driver.send_message(event)

        def chars(text: str) -> list[tuple[str, str | None]]:
            return [("space" if c == " " else c, c) for c in text]

        enter = [("enter", "\r")]
        await settle(pilot)  # the login screen is up
        burst(chars("op1") + enter + chars("1234") + enter)  # login, typed ahead too
        await settle(pilot)
        await pilot.press("f2")
        await settle(pilot)
        assert isinstance(app.screen, RegisterScreen)
        burst(chars("Ram Kumar") + enter + chars("M") + enter + chars("42") + enter + enter)
        await settle(pilot)
        screen = app.screen
        assert screen.query_one("#ff-name").input.value == "Ram Kumar"
        assert screen.query_one("#ff-mobile").input.value == ""
        assert screen.query_one("#ff-sex").input.value.upper() == "M"
        assert screen.query_one("#ff-age_years").input.value == "42"
        assert app.focused is screen.query_one("#ff-guardian_relation").input


async def test_a_failed_lookup_is_shown_but_never_as_not_saved(make_app) -> None:
    """Only a save says NOT SAVED; a failing load (here the departments) says FAILED."""
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot)

        def broken() -> list[object]:
            raise OSError("disk I/O error")

        app.backend.departments = broken
        await pilot.press("f2")
        await settle(pilot)
        shown = [str(n.message) for n in app._notifications]
        assert "FAILED: disk I/O error" in shown
        assert not any("NOT SAVED" in m for m in shown)

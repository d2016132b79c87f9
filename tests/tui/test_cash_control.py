"""Cash control at the counter, by real key presses: a waiver the category's
rules do not grant needs a supervisor's PIN and a reason (audited, ₹0
collected, listed at day end); PINs do not outlive their screen; ctrl+q asks
before losing a half-filled form."""

from __future__ import annotations

import json

from sqlmodel import select

from opd_fallback.application import status as status_report
from opd_fallback.store.audit import history
from opd_fallback.store.engine import Store
from opd_fallback.store.tables import Op, Payment
from opd_fallback.tui.screens.cash import CashScreen
from opd_fallback.tui.screens.confirm import ConfirmQuit
from opd_fallback.tui.screens.register import RegisterScreen
from opd_fallback.tui.screens.void import VoidScreen

from .conftest import SUPERVISOR, SUPERVISOR_PIN, login, settle, type_text
from .test_register import fill


def _err(screen, name: str) -> str:
    return str(screen.query_one(f"#ff-{name}").query_one(".error").render())


async def _waived_general_patient(pilot) -> None:
    await pilot.press("f2")
    await settle(pilot)
    await fill(pilot, {"name": "Ram Prasad", "sex": "m", "age_years": "40", "department": "MED", "mode": "waived"})
    await pilot.press("enter")  # past the UTR / card slip field
    await settle(pilot)


async def test_waiver_not_granted_by_category_needs_supervisor_pin_and_reason(make_app, store: Store) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot)
        await _waived_general_patient(pilot)
        screen = app.screen
        assert isinstance(screen, RegisterScreen)
        # the approval fields appear, and the cursor is already in the first of them
        assert screen.query_one("#ff-waiver_reason").display
        assert app.focused is screen.query_one("#ff-waiver_reason").input
        await pilot.press("f10")  # the operator alone: refused, nothing saved
        await settle(pilot)
        assert "required for a waiver" in _err(screen, "waiver_reason")
        assert "required for a waiver" in _err(screen, "supervisor_pin")
        with store.read() as s:
            assert s.exec(select(Payment)).all() == []

        # a wrong PIN: refused by the one PIN check, and the PIN field is emptied
        await type_text(pilot, "poor patient, no money", then="enter")
        await type_text(pilot, SUPERVISOR, then="enter")
        await type_text(pilot, "1111")
        await pilot.press("f10")
        await settle(pilot)
        assert "Wrong operator ID or PIN" in str(screen.query_one("#form-msg").render())
        assert screen.query_one("#ff-supervisor_pin").input.value == ""
        with store.read() as s:
            assert s.exec(select(Payment)).all() == []

        screen.query_one("#ff-supervisor_pin").input.focus()
        await type_text(pilot, SUPERVISOR_PIN)
        await pilot.press("f10")
        await settle(pilot)
        assert "Saved C07-" in str(screen.query_one("#form-msg").render())

        await pilot.press("f8")
        await settle(pilot)
        assert isinstance(app.screen, CashScreen)
        table = app.screen.query_one("#cash")
        rows = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
        assert ["Waived poor patient, no money (by sup1)", "1", "₹10.00"] in rows

    with store.read() as s:
        (payment,) = s.exec(select(Payment)).all()
        (entry,) = history(s, action_prefix="payment.waive")
    assert (payment.mode, payment.amount_paise) == ("waived", 0)
    assert json.loads(payment.items) == [{"code": "OPD-NEW", "qty": 1, "amount_paise": 0}]
    detail = json.loads(entry.detail)
    assert (entry.actor, detail["approved_by"], detail["reason"], detail["waived_paise"]) == \
        ("op1", "sup1", "poor patient, no money", 1000)
    report = status_report.collect(store, "C07")["payments_today"]
    assert report["waivers"] == [{"reason": "poor patient, no money", "approved_by": "sup1", "count": 1,
                                  "waived_paise": 1000}]
    assert report["voids"] == [] and report["reprints"] == []
    # contract 1.2: the op carries the waiver, so central does not warn waiver_unapproved
    with store.read() as s:
        (op,) = s.exec(select(Op).where(Op.kind == "payment.record")).all()
    sent = json.loads(op.payload)
    assert sent["waiver"] == {"reason": "poor patient, no money", "approved_by": "sup1"}
    assert (sent["mode"], sent["amount_paise"]) == ("waived", 0)


async def test_an_exempt_category_needs_no_approval(make_app, store: Store) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot)
        await pilot.press("f2")
        await settle(pilot)
        await fill(pilot, {"name": "Sita Devi", "sex": "f", "age_years": "30", "category": "bpl",
                           "department": "MED"})
        assert not app.screen.query_one("#ff-supervisor_pin").display
        await pilot.press("f10")
        await settle(pilot)
    with store.read() as s:
        (payment,) = s.exec(select(Payment)).all()
        assert history(s, action_prefix="payment.waive") == []
        (op,) = s.exec(select(Op).where(Op.kind == "payment.record")).all()
    assert (payment.amount_paise, payment.mode) == (0, "waived")
    assert "waiver" not in json.loads(op.payload)  # the category grants it: no waiver needed


async def test_supervisor_pin_is_cleared_on_leaving_the_screen_and_on_lock(make_app, store: Store) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot)
        await pilot.press("f5")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, VoidScreen)
        pin = screen.query_one("#ff-supervisor_pin").input
        pin.focus()
        await type_text(pilot, SUPERVISOR_PIN)
        assert pin.value == SUPERVISOR_PIN
        await pilot.press("escape")  # home
        await settle(pilot)
        await pilot.press("f5")
        await settle(pilot)
        assert app.screen is screen and pin.value == ""

        pin.focus()
        await type_text(pilot, SUPERVISOR_PIN)
        await pilot.press("ctrl+l")
        await settle(pilot)
        assert app.locked
        await type_text(pilot, "1234", then="enter")  # the operator unlocks
        await settle(pilot)
        assert app.screen is screen and pin.value == ""


async def test_ctrl_q_asks_first_when_a_form_is_half_filled(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot)
        await pilot.press("f2")
        await settle(pilot)
        await type_text(pilot, "Ram")
        await pilot.press("ctrl+q")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmQuit)
        assert "half filled" in str(app.screen.query_one("#confirm-reasons").render())
        await pilot.press("n")
        await settle(pilot)
        assert isinstance(app.screen, RegisterScreen)
        assert app.screen.query_one("#ff-name").input.value == "Ram"
        assert app.is_running
        await pilot.press("ctrl+q")
        await settle(pilot)
        await pilot.press("y")
        await pilot.pause()
        assert app.return_code is not None


async def test_ctrl_q_quits_at_once_with_nothing_to_lose(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot)
        await pilot.press("f2")
        await settle(pilot)
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmQuit)
        assert app.return_code is not None

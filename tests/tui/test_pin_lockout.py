"""The counter's login with real key presses: five wrong PINs lock the ID, the
screen says how long to wait, the right PIN does not get in meanwhile, and
each wrong PIN and the lockout are in the audit log."""

from __future__ import annotations

from sqlalchemy import text

from opd_fallback.store.engine import Store
from opd_fallback.tui.screens.home import HomeScreen
from opd_fallback.tui.screens.lock import LockScreen
from opd_fallback.tui.screens.login import LoginScreen

from .conftest import OPERATOR, OPERATOR_PIN, login, settle, type_text


def _pin_audit(store: Store) -> list[tuple[str, str]]:
    with store.read() as s:
        return [(r[0], r[1]) for r in s.execute(text(
            "SELECT actor, action FROM audit_log WHERE action LIKE 'operator.pin%' ORDER BY id"))]


def _msg(app, selector: str) -> str:
    return str(app.screen.query_one(selector).render())


async def test_wrong_pins_at_login_lock_the_id_and_are_audited(make_app, store: Store) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await login(pilot, pin="0000")
        assert "4 more wrong tries" in _msg(app, "#login-msg")
        for _ in range(3):
            await type_text(pilot, "0000")
            await pilot.press("enter")
            await settle(pilot)
        assert "1 more wrong try" in _msg(app, "#login-msg")
        await type_text(pilot, "0000")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, LoginScreen) and app.session is None
        assert "locked; wait 30 s" in _msg(app, "#login-msg")
        await type_text(pilot, OPERATOR_PIN)  # the right PIN, while locked
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, LoginScreen) and app.session is None
        assert "Too many wrong PINs for op1" in _msg(app, "#login-msg")
    assert _pin_audit(store) == [(OPERATOR, "operator.pin_wrong")] * 5 + [
        (OPERATOR, "operator.pin_lockout"), (OPERATOR, "operator.pin_while_locked")]


async def test_wrong_pins_at_unlock_count_too(make_app, store: Store) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot)
        assert isinstance(app.screen, HomeScreen)
        await pilot.press("ctrl+l")
        await settle(pilot)
        for _ in range(5):
            await type_text(pilot, "0000")
            await pilot.press("enter")
            await settle(pilot)
        assert isinstance(app.screen, LockScreen)
        assert "locked; wait 30 s" in _msg(app, "#lock-msg")
    assert [a for _o, a in _pin_audit(store)][-2:] == ["operator.pin_wrong", "operator.pin_lockout"]

"""Login, wrong PIN, lock on ctrl+l and on idle, unlock back to the same form."""

from __future__ import annotations

from textual.widgets import Input

from opd_fallback.tui.screens.home import HomeScreen
from opd_fallback.tui.screens.lock import LockScreen
from opd_fallback.tui.screens.login import LoginScreen
from opd_fallback.tui.screens.register import RegisterScreen

from .conftest import OPERATOR_PIN, login, settle, type_text


async def test_login_wrong_pin_then_right(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, LoginScreen)
        await login(pilot, pin="0000")
        assert isinstance(app.screen, LoginScreen)
        assert "Wrong operator ID or PIN" in str(app.screen.query_one("#login-msg").render())
        assert app.session is None
        await type_text(pilot, OPERATOR_PIN)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, HomeScreen)
        assert app.session is not None and app.session.operator_id == "op1"


async def test_login_pin_format_checked_before_hashing(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot, pin="12a")
        assert "PIN must be 4 to 8 digits" in str(app.screen.query_one("#login-msg").render())
        assert app.session is None


async def test_ctrl_l_locks_and_pin_returns_to_the_same_form(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot)
        await pilot.press("f2")
        await settle(pilot)
        assert isinstance(app.screen, RegisterScreen)
        await type_text(pilot, "Ram")
        await pilot.press("ctrl+l")
        await settle(pilot)
        assert isinstance(app.screen, LockScreen)
        await pilot.press("f3")  # flows are unreachable while locked
        assert isinstance(app.screen, LockScreen)
        await type_text(pilot, "1111")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, LockScreen)
        await type_text(pilot, OPERATOR_PIN)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, RegisterScreen)
        assert app.screen.query_one("#in-name", Input).value == "Ram"


async def test_idle_time_locks(make_app) -> None:
    app = make_app(idle_lock_s=0.3)
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot)
        assert isinstance(app.screen, HomeScreen)
        for _ in range(30):  # locked within 1.5 s (idle 0.3 s): looked at every 50 ms, not waited out
            if isinstance(app.screen, LockScreen):
                break
            await pilot.pause(0.05)
        assert isinstance(app.screen, LockScreen)
        await pilot.press("f2")  # switch operator
        await settle(pilot)
        assert isinstance(app.screen, LoginScreen) and app.session is None

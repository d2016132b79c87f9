"""The clock's confirmation at the counter (ctrl+t, tui/screens/clock.py): with the PC a
year off the hub's, the hints show ^T and a refused save says it; the screen shows the PC's
date beside the hub's, refuses a wrong PIN (nothing confirmed), and a supervisor's ID and PIN
confirm the date, audited as ``clock confirm`` does, after which F10 saves. At 80x24, in
English and in Hindi."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text

from opd_fallback.application import clock
from opd_fallback.store.engine import Store
from opd_fallback.tui.widgets.status_bar import StatusBar

from .conftest import OPERATOR, SUPERVISOR, SUPERVISOR_PIN, login, settle, type_text
from .test_register import counts, fill

FORM = {"name": "Ram Kumar", "sex": "m", "age_years": "42", "department": "med"}
YEAR = 365 * 86400.0


async def _clock_wrong_shown(pilot) -> None:
    app = pilot.app
    for _ in range(50):  # the status worker reads it from the store
        await pilot.pause(0.2)
        if "CLOCK WRONG" in str(app.screen.query_one(StatusBar).render()):
            break
    await settle(pilot)


def _text(app, selector: str) -> str:
    return str(app.screen.query_one(selector).render())


def _confirmations(store: Store) -> list[tuple[str, str]]:
    with store.read() as s:
        rows = s.execute(text("SELECT actor, subject FROM audit_log WHERE action='clock.confirmed'")).all()
    return [tuple(r) for r in rows]


def _inside(app, selector: str) -> bool:
    region = app.screen.query_one(selector).region
    return region.width > 0 and region.height > 0 and region.right <= 80 and region.bottom <= 24


async def test_a_supervisor_confirms_the_date_at_the_counter(make_app, store: Store) -> None:
    clock.observe(store, "hub", -YEAR)  # the last exchange: the hub's clock a year behind this PC's
    before = counts(store)
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot)
        await _clock_wrong_shown(pilot)
        await pilot.press("f2")
        await settle(pilot)
        assert "^T Clock" in _text(app, "#keys")  # the key, in the hints while the clock waits
        await fill(pilot, FORM)
        await pilot.press("f10")
        await settle(pilot)
        assert "^T: a supervisor confirms the date here" in _text(app, "#form-msg")
        assert counts(store) == before

        await pilot.press("ctrl+t")
        await settle(pilot)
        assert app.screen.__class__.__name__ == "ClockScreen"
        times = _text(app, "#clock-times")
        now = app.now()
        assert f"This PC:  {now:%d-%m-%Y}" in times, times
        assert f"LAN hub:  {now - timedelta(seconds=YEAR):%d-%m-%Y}" in times, times
        assert "365 days ahead of the LAN hub's" in _text(app, "#clock-why")
        for part in ("#clock-times", "#clock-sup", "#clock-pin", "#clock-msg"):
            assert _inside(app, part), part  # all of it in sight at 80x24

        await type_text(pilot, SUPERVISOR)
        await pilot.press("enter")
        await type_text(pilot, "111111")  # a wrong PIN: refused in words, nothing confirmed
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen.__class__.__name__ == "ClockScreen"
        assert "wrong" in _text(app, "#clock-msg").lower(), _text(app, "#clock-msg")
        assert _confirmations(store) == []

        await type_text(pilot, SUPERVISOR_PIN)
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen.__class__.__name__ != "ClockScreen"  # back on the form, as it was
        assert _confirmations(store) == [(SUPERVISOR, "hub")]  # audited, as 'opd-fallback clock confirm' does
        await pilot.press("f10")
        await settle(pilot)
        assert "Saved C07-" in _text(app, "#form-msg")
        for _ in range(50):
            await pilot.pause(0.2)
            if "clock confirmed" in str(app.screen.query_one(StatusBar).render()):
                break
        assert "^T" not in _text(app, "#keys")  # confirmed: the hint goes
    assert counts(store)[0] == before[0] + 1


async def test_an_operator_is_not_a_supervisor_and_hindi_fits(make_app, store: Store) -> None:
    clock.observe(store, "central", YEAR)  # central's clock a year ahead: this PC is behind
    app = make_app(lang="hi")
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot)
        await _clock_wrong_shown(pilot)
        await pilot.press("ctrl+t")
        await settle(pilot)
        assert "पीसी की घड़ी गलत है" in _text(app, ".title")
        times = _text(app, "#clock-times")
        assert "यह पीसी:" in times and f"केंद्र:    {app.now() + timedelta(seconds=YEAR):%d-%m-%Y}" in times, times
        for part in ("#clock-times", "#clock-sup", "#clock-pin", "#clock-msg"):
            assert _inside(app, part), part
        await type_text(pilot, OPERATOR)  # an operator's own PIN does not confirm the date
        await pilot.press("enter")
        await type_text(pilot, "1234")
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen.__class__.__name__ == "ClockScreen"
        assert _text(app, "#clock-msg").strip()
        assert _confirmations(store) == []
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen.__class__.__name__ != "ClockScreen"
    with store.read() as s:
        assert clock.report(s).confirmed_by is None

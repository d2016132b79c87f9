"""A counter whose PC clock is a year off the hub's shows CLOCK WRONG on the status bar and
will not save (F10 says why, nothing is written) until a supervisor confirms the date."""

from __future__ import annotations

from opd_fallback.application import clock
from opd_fallback.store.engine import Store
from opd_fallback.tui.widgets.status_bar import StatusBar

from .conftest import SUPERVISOR, SUPERVISOR_PIN, login, settle
from .test_register import counts, fill

FORM = {"name": "Ram Kumar", "sex": "m", "age_years": "42", "department": "med"}


async def test_save_refused_until_a_supervisor_confirms_the_date(make_app, store: Store) -> None:
    clock.observe(store, "hub", -365 * 86400.0)  # the last exchange: the hub's clock a year behind this PC's
    before = counts(store)
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot)
        for _ in range(50):  # the status worker reads it from the store
            await pilot.pause(0.2)
            if "CLOCK WRONG" in str(app.screen.query_one(StatusBar).render()):
                break
        assert "CLOCK WRONG" in str(app.screen.query_one(StatusBar).render())
        await pilot.press("f2")
        await settle(pilot)
        await fill(pilot, FORM)
        await pilot.press("f10")
        await settle(pilot)
        msg = str(app.screen.query_one("#form-msg").render())
        assert "365 days ahead of the LAN hub's" in msg and "supervisor must confirm" in msg, msg
        assert counts(store) == before  # nothing saved

        rep = clock.confirm(store, SUPERVISOR, SUPERVISOR_PIN)  # what 'opd-fallback clock confirm' does
        assert rep.confirmed_by == SUPERVISOR
        await pilot.press("f10")
        await settle(pilot)
        assert "Saved C07-" in str(app.screen.query_one("#form-msg").render())
        for _ in range(50):
            await pilot.pause(0.2)
            if "clock confirmed" in str(app.screen.query_one(StatusBar).render()):
                break
        assert "clock confirmed" in str(app.screen.query_one(StatusBar).render())
    assert counts(store)[0] == before[0] + 1

"""The clerk's screen (issue 19, item 5): each fix through the keys, failing before it."""

from __future__ import annotations

import time
from typing import Any

from textual.widgets import Input

from opd_fallback.tui.screens.reprint import ReprintScreen
from opd_fallback.tui.screens.revisit import RevisitScreen
from opd_fallback.tui.screens.void import VoidScreen

from .clerk import NEW_PATIENT, play
from .conftest import login, settle, type_text


async def test_the_queue_count_is_right_within_a_second_of_a_save(make_app: Any) -> None:
    app = make_app(status_interval_s=60.0)  # the periodic refresh never comes during the test
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot)
        assert app.status.ops_waiting == 0
        await play(pilot, NEW_PATIENT)
        if app.status.ops_waiting == 0:  # the possible-duplicates question: save anyway
            await pilot.press("f10")
        start = time.monotonic()
        while app.status.ops_waiting != 3 and time.monotonic() - start < 1.0:
            await pilot.pause(0.05)
        assert app.status.ops_waiting == 3  # patient, visit, fee


async def test_centrals_return_shows_within_ten_seconds(make_app: Any) -> None:
    up = [False]
    app = make_app(probe=lambda: up[0], status_interval_s=0.2)
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot)
        for _ in range(40):
            await settle(pilot, 1)
            if app.status.central is False and app.status.probed:
                break
            await pilot.pause(0.1)
        assert app.status.central is False
        await pilot.pause(1.0)
        up[0] = True  # central comes back
        start = time.monotonic()
        while not app.status.central and time.monotonic() - start < 10.0:
            await pilot.pause(0.2)
        assert app.status.central is True, f"still offline after {time.monotonic() - start:.1f} s"


async def test_f6_f5_and_revisit_start_empty_every_time(make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot)
        for key, screen_type, field in (("f6", ReprintScreen, "#reprint-filter"), ("f5", VoidScreen, "#in-receipt_no"),
                                        ("f3", RevisitScreen, "#search")):
            await pilot.press(key)
            await settle(pilot)
            assert isinstance(app.screen, screen_type)
            await type_text(pilot, "C07-R000042")
            await settle(pilot)
            await pilot.press("escape")
            await settle(pilot)
            if app.screen.query("#discard-box"):  # a half-filled form asks first (F5's receipt number)
                await pilot.press("y")
                await settle(pilot)
            await pilot.press(key)
            await settle(pilot)
            box = app.screen.query_one(field, Input)
            assert (box.value, app.focused) == ("", box), key  # empty, and the cursor in it


async def test_status_bar_is_one_row_at_80x24_in_both_languages(make_app: Any) -> None:
    from opd_fallback.tui.widgets.status_bar import StatusBar

    def devanagari(text: str) -> bool:
        return any("\u0900" <= c <= "\u097f" for c in text)

    app = make_app(status_interval_s=3600)  # no refresh from the store replaces the numbers set below
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot)
        app.status.ops_waiting, app.status.oldest_age_s, app.status.ops_flagged = 12, 754.0, 2
        for lang in ("en", "hi"):
            bar = app.screen.query_one(StatusBar)
            start = time.monotonic()  # the bar redraws every second: wait for the redraw, up to 5 s
            while time.monotonic() - start < 5.0:
                text = str(bar.render())
                if "12" in text and devanagari(text) == (lang == "hi"):
                    break
                await pilot.pause(0.05)
            assert bar.size.height == 1 and "\n" not in text, text
            assert "12" in text and "2" in text and "C07" in text, text  # the queue, the flagged, the counter
            assert devanagari(text) == (lang == "hi"), text
            await pilot.press("f9")


async def test_lab_screen_shows_the_tube_type_whole(make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot)
        await pilot.press("f4")
        await settle(pilot)
        app.screen.field("tests").input.focus()
        await type_text(pilot, "cbc", then="enter")
        await settle(pilot)
        assert "EDTA whole blood" in str(app.screen.query_one("#picked-tests").render())


async def test_the_saved_line_never_covers_a_field_at_80x24(make_app: Any) -> None:
    """The outcome line is docked below the scrolling form: the field the clerk
    types in, however far down, is never under it."""
    from textual.containers import VerticalScroll
    from textual.widgets import Static

    from opd_fallback.tui.widgets.form_field import FormField

    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot)
        for key in ("f2", "f4", "f5"):
            await pilot.press(key)
            await settle(pilot)
            screen = app.screen
            screen.say("Saved C07-000001 token 1")  # the line as a save leaves it
            await settle(pilot)
            msg = screen.query_one("#form-msg", Static)
            scroll = screen.query_one(VerticalScroll)
            assert not msg.region.overlaps(scroll.region), key
            fields = [ff for ff in screen.query(FormField) if ff.display and not ff.input.disabled]
            for ff in fields:  # walk down to the lowest field, each one in sight and clear of the line
                ff.input.focus()
                await settle(pilot)
                assert not msg.region.overlaps(ff.input.region), (key, ff.field)
            await pilot.press("escape")
            await settle(pilot)
            if not isinstance(app.screen, type(screen)) and app.screen.query("#discard-box"):
                await pilot.press("y")
                await settle(pilot)


async def test_esc_on_a_half_filled_form_asks_and_an_empty_one_leaves(make_app: Any) -> None:
    from opd_fallback.tui.screens.confirm import ConfirmDiscard
    from opd_fallback.tui.screens.home import HomeScreen
    from opd_fallback.tui.screens.register import RegisterScreen

    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot)
        await pilot.press("f2")
        await settle(pilot)
        await pilot.press("escape")  # nothing typed: straight home
        await settle(pilot)
        assert isinstance(app.screen, HomeScreen)
        for lang, question in (("en", "Discard this form? y/n"), ("hi", "यह फ़ॉर्म छोड़ दें? y/n")):
            await pilot.press("f2")
            await settle(pilot)
            await type_text(pilot, "Ram Kumar")
            await pilot.press("escape")
            await settle(pilot)
            assert isinstance(app.screen, ConfirmDiscard), lang
            assert question in str(app.screen.query_one("#discard-box TLabel").render()), lang
            await pilot.press("n")  # keep filling: still there, cursor in the name
            await settle(pilot)
            assert isinstance(app.screen, RegisterScreen)
            assert app.screen.field("name").input.value == "Ram Kumar"
            await pilot.press("escape")
            await settle(pilot)
            await pilot.press("y")  # discard: home, and the form empty next time
            await settle(pilot)
            assert isinstance(app.screen, HomeScreen), lang
            await pilot.press("f2")
            await settle(pilot)
            assert app.screen.field("name").input.value == ""
            await pilot.press("escape")
            await settle(pilot)
            await pilot.press("f9")
            await settle(pilot)


async def test_lab_keeps_its_title_and_payment_in_sight_with_six_tests(make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot)
        await pilot.press("f4")
        await settle(pilot)
        screen = app.screen
        screen.field("tests").input.focus()
        for code in ("cbc", "hb", "esr", "lft", "kft", "tsh", "fbs"):
            await type_text(pilot, code, then="enter")
            await settle(pilot)
        assert len(screen.tests) == 7
        await pilot.press("enter")  # the test field empty: on to priority, then the payment
        await pilot.press("enter")
        await settle(pilot)
        assert app.focused is screen.field("mode").input
        for widget in (screen.query_one(".title"), screen.field("fee").input, screen.field("mode").input):
            r = widget.region  # on screen, and what the screen shows there (nothing lies over it)
            assert r.area and screen.region.contains_region(r), widget
            assert screen.get_widget_at(r.x + 1, r.y)[0] is widget, widget
        assert "EDTA whole blood" in str(screen.query_one("#picked-tests").render())

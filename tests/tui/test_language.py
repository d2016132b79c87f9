"""English/Hindi at runtime: labels, key hints and validation messages."""

from __future__ import annotations

from opd_fallback.tui.i18n import STRINGS, message
from opd_fallback.tui.screens.register import RegisterScreen

from .conftest import login, settle, type_text


def test_every_string_has_both_languages() -> None:
    missing = [k for k, (en, hi) in STRINGS.items() if not en or not hi]
    assert missing == []
    assert message("must have 10 digits (got 5)", "hi") == "में 10 अंक होने चाहिए (5 लिखे)"


async def test_f9_switches_to_hindi_and_back(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot)
        assert "New registration" in str(app.screen.query_one(".menu-item").render())
        await pilot.press("f9")
        await settle(pilot)
        assert app.lang == "hi"
        assert "नया पंजीकरण" in str(app.screen.query_one(".menu-item").render())
        assert "केंद्र" in str(app.screen.query_one("#status").render())
        await pilot.press("f2")
        await settle(pilot)
        assert isinstance(app.screen, RegisterScreen)
        label = app.screen.query_one("#ff-mobile").query_one("TLabel")
        assert "मोबाइल" in str(label.render())
        for _ in range(3):  # to the mobile field
            await pilot.press("enter")
        await type_text(pilot, "5123456789")
        await pilot.press("enter")
        err = str(app.screen.query_one("#ff-mobile").query_one(".error").render())
        assert "मोबाइल: 6, 7, 8 या 9 से शुरू होना चाहिए" in err
        await pilot.press("f9")
        await settle(pilot)
        assert "Mobile: must start with 6, 7, 8 or 9" in str(app.screen.query_one("#ff-mobile").query_one(".error").render())
        assert "Mobile" in str(label.render())


async def test_fee_words_follow_the_language(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot)
        await pilot.press("f2")
        await settle(pilot)
        hint = app.screen.query_one("#ff-fee").query_one(".hint")
        assert "Fee from master data" in str(hint.render())
        await pilot.press("f9")
        await settle(pilot)
        assert "मास्टर डेटा से शुल्क" in str(hint.render())


async def test_table_headings_follow_the_language(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot)
        await pilot.press("f7")
        await settle(pilot)
        table = app.screen.query_one("#queue")
        assert [str(c.label) for c in table.columns.values()][:2] == ["Seq", "Kind"]
        await pilot.press("f9")
        await settle(pilot)
        assert [str(c.label) for c in table.columns.values()][:2] == ["क्रम", "प्रकार"]


async def test_f9_reaches_a_form_left_open_and_the_review_screen(make_app) -> None:
    """A half-filled form left for another flow (Esc would ask to discard it), F9, back to the form: its words are Hindi,
    the typing kept; the review screen's own words switch too."""
    from opd_fallback.tui.screens.review import ReviewScreen

    from .clerk import WAIT, play
    from .conftest import SUPERVISOR, SUPERVISOR_PIN

    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot)
        await play(pilot, ["<f2>", "Ram", "<f8>", WAIT, "<f9>", WAIT, "<f2>", WAIT])
        assert isinstance(app.screen, RegisterScreen)
        assert "मोबाइल" in str(app.screen.query_one("#ff-mobile").query_one("TLabel").render())
        assert app.screen.query_one("#ff-name").input.value == "Ram"
        await play(pilot, ["<f11>", WAIT, SUPERVISOR, "<enter>", SUPERVISOR_PIN, "<enter>", WAIT])
        screen = app.screen
        assert isinstance(screen, ReviewScreen)
        assert "निर्णय बाकी" in str(screen.query_one("#review-head").render())
        assert "सुपरवाइज़र" in str(screen.query_one("#review-head").render())
        await play(pilot, ["<f9>", WAIT])
        assert "need a decision" in str(screen.query_one("#review-head").render())
        assert "F5 reload" in str(screen.query_one(".keys").render())


def test_columns_line_up_in_terminal_cells_with_devanagari() -> None:
    from rich.cells import cell_len

    from opd_fallback.tui.widgets.tlabel import pad, wrap_pairs

    assert cell_len(pad("राम कुमार", 12)) == cell_len(pad("Ram Kumar", 12)) == 12
    lines = wrap_pairs("F2 नया  F3 पुनः  F4 लैब  F9 English  ^L लॉक  ^Q बंद", 20).splitlines()
    assert all(cell_len(line) <= 20 for line in lines)
    assert not any(line.endswith(("F2", "F3", "F4", "F9", "^L", "^Q")) for line in lines)  # key and word together

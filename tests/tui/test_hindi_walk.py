"""Every screen in Hindi shows no English UI word, and F9 back to English leaves no
Devanagari outside patient names (issue 19 item 5): the whole screen as drawn, read
through the app's compositor after real key presses."""

from __future__ import annotations

import re
from typing import Any

from .conftest import login, settle

FLOW_KEYS = ("f2", "f3", "f4", "f5", "f6", "f7", "f8", "f1", "f12")
# English words of the UI that must not be left in Hindi mode (the counter's own
# codes, C07, MED, UPI, OPD, PIN, F-keys and digits are not words of the UI, nor
# "cash", the payment code the clerk types, shown in the mode field as its value)
ENGLISH = ("Done", "waiting", "ALREADY VOIDED", "card", "waiver", "later", "Save", "Back", "Next",
           "Name", "Mobile", "Age", "Sex", "Department", "Fee", "Mode", "Receipt", "Token", "Status", "Kind",
           "Time", "Patient", "Tests", "Priority", "Total", "Online", "Offline", "To sync", "Queue", "Search")
DEVANAGARI = re.compile(r"[\u0900-\u097f]+")
# Hindi that belongs in English mode: the F9 key's own name (the language it
# switches to) and the example of a patient's Hindi name in that field
HINDI_ALLOWED = {"हिंदी", "राम", "कुमार"}


def screen_text(app: Any) -> str:
    """What the terminal shows now, row by row."""
    lines = app.screen._compositor.render_update(full=True).strips  # type: ignore[attr-defined]
    return "\n".join("".join(seg.text for seg in strip) for strip in lines)


async def walk(pilot: Any) -> dict[str, str]:
    app = pilot.app
    seen = {"home": screen_text(app)}
    for key in FLOW_KEYS:
        await pilot.press(key)
        await settle(pilot)
        await pilot.pause(0.3)
        seen[key] = screen_text(app)
    await pilot.press("escape")
    await settle(pilot)
    return seen


async def test_hindi_everywhere_then_english_everywhere(make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot)
        await pilot.press("f9")
        await settle(pilot)
        english_left = {}
        for where, text in (await walk(pilot)).items():
            found = [w for w in ENGLISH if re.search(rf"\b{re.escape(w)}\b", text)]
            if found:
                english_left[where] = found
        await pilot.press("f9")
        await settle(pilot)
        hindi_left = {}
        for where, text in (await walk(pilot)).items():
            found = [w for w in DEVANAGARI.findall(text) if w not in HINDI_ALLOWED]
            if found:
                hindi_left[where] = found
        assert (english_left, hindi_left) == ({}, {})

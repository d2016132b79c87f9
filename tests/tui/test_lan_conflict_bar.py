"""The counter's status bar shows the open LAN edit conflicts (a patient's field changed at two counters,
neither knowing of the other's change), in English and in Hindi, until this counter corrects the patient."""

from __future__ import annotations

from pathlib import Path

import pytest

from opd_fallback.application.services import CounterService
from opd_fallback.store.engine import Store
from opd_fallback.tui.widgets.status_bar import StatusBar
from tests.helpers.lan_conflict import flag_a_conflict

from .conftest import OPERATOR, login


async def _bar_shows(pilot, words: str, present: bool = True) -> str:
    bar = ""
    for _ in range(50):  # the status worker reads the store; the bar redraws every second
        bar = str(pilot.app.screen.query_one(StatusBar).render())
        if (words in bar) == present:
            break
        await pilot.pause(0.1)
    return bar


async def test_status_bar_shows_open_lan_edit_conflicts(make_app, store: Store, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    ref, at = flag_a_conflict(tmp_path, store, "C07", monkeypatch)
    app = make_app()
    async with app.run_test(size=(120, 24)) as pilot:
        await login(pilot)
        bar = await _bar_shows(pilot, "LAN edit conflicts: 1")
        assert "LAN edit conflicts: 1" in bar and "Need a person: 0" in bar, bar
        await pilot.press("f9")  # हिंदी
        bar = await _bar_shows(pilot, "LAN बदलाव टकराव: 1")
        assert "LAN बदलाव टकराव: 1" in bar, bar
        await pilot.press("f9")

        at(40)  # a person checked with her and corrects the record at this counter
        CounterService(store, "C07").update_patient(OPERATOR, ref, {"mobile": "9833333333"})
        app.refresh_status()
        bar = await _bar_shows(pilot, "LAN edit conflicts", present=False)
        assert "LAN edit conflicts" not in bar and "To sync:" in bar, bar

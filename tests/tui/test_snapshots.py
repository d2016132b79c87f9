"""Snapshots of the main screens (pytest-textual-snapshot), one with a
Devanagari name. Update with ``pytest tests/tui/test_snapshots.py --snapshot-update``."""

from __future__ import annotations

from typing import Any

import pytest

from opd_fallback.store import patient_index
from opd_fallback.store.engine import Store

from .conftest import FIXED_NOW, login, settle, type_text

SIZE = (110, 36)


@pytest.fixture
def snap_app(make_app, store: Store):
    with store.write() as s:
        patient_index.upsert_many(s, [
            {"uhid": "KGMU-0042", "name": "Mohd Ali", "sex": "M", "age_years": 61, "guardian_name": "Yusuf",
             "mobile": "9935012345", "district": "Lucknow", "version": 3, "updated_at": None},
            {"uhid": "KGMU-0043", "name": "Mohan Lal", "sex": "M", "age_years": 45, "guardian_name": "Ram Lal",
             "mobile": "9935099999", "district": "Barabanki", "version": 1, "updated_at": None},
        ])
    return make_app(clock=lambda: FIXED_NOW, status_interval_s=3600)


def _steady(pilot: Any) -> None:
    """Freeze what changes with wall time (the oldest op's age)."""
    pilot.app.status.oldest_age_s = None
    for field in pilot.app.screen.query("Input"):
        field.cursor_blink = False  # a blinking cursor makes the picture flaky
    for bar in pilot.app.screen.query("StatusBar"):
        bar.tick()


async def _logged_in(pilot: Any) -> None:
    await settle(pilot)
    await login(pilot)


def test_login_screen(snap_compare, snap_app) -> None:
    async def run_before(pilot: Any) -> None:
        await settle(pilot)
        await type_text(pilot, "op1")
        _steady(pilot)

    assert snap_compare(snap_app, run_before=run_before, terminal_size=SIZE)


def test_home_screen_hindi(snap_compare, snap_app) -> None:
    async def run_before(pilot: Any) -> None:
        await _logged_in(pilot)
        await pilot.press("f9")
        await settle(pilot)
        _steady(pilot)

    assert snap_compare(snap_app, run_before=run_before, terminal_size=SIZE)


def test_registration_with_devanagari_name_and_errors(snap_compare, snap_app) -> None:
    async def run_before(pilot: Any) -> None:
        await _logged_in(pilot)
        await pilot.press("f2")
        await settle(pilot)
        await type_text(pilot, "Ram Kumar")
        await pilot.press("enter")
        await type_text(pilot, "राम कुमार")
        await pilot.press("enter")
        await type_text(pilot, "m")
        await pilot.press("enter")
        await type_text(pilot, "142")
        for _ in range(5):
            await pilot.press("enter")
        await type_text(pilot, "12345")
        await pilot.press("enter")
        await settle(pilot)
        _steady(pilot)

    assert snap_compare(snap_app, run_before=run_before, terminal_size=SIZE)


def test_revisit_search_results(snap_compare, snap_app) -> None:
    async def run_before(pilot: Any) -> None:
        await _logged_in(pilot)
        await pilot.press("f3")
        await settle(pilot)
        await type_text(pilot, "moh")
        await pilot.pause(0.3)
        await settle(pilot)
        _steady(pilot)

    assert snap_compare(snap_app, run_before=run_before, terminal_size=SIZE)


def test_void_screen(snap_compare, snap_app) -> None:
    async def run_before(pilot: Any) -> None:
        await _logged_in(pilot)
        await pilot.press("f5")
        await settle(pilot)
        await pilot.press("f10")
        await settle(pilot)
        _steady(pilot)

    assert snap_compare(snap_app, run_before=run_before, terminal_size=SIZE)


def test_lab_screen_with_tests_picked(snap_compare, snap_app) -> None:
    async def run_before(pilot: Any) -> None:
        await _logged_in(pilot)
        await pilot.press("f4")
        await settle(pilot)
        pilot.app.screen.query_one("#ff-tests").input.focus()
        for code in ("cbc", "lipid", "urine routine"):
            await type_text(pilot, code)
            await settle(pilot)
            await pilot.press("enter")
            await settle(pilot)
        _steady(pilot)

    assert snap_compare(snap_app, run_before=run_before, terminal_size=SIZE)


def test_cash_summary(snap_compare, snap_app, store: Store) -> None:
    from opd_fallback.application.services import CounterService, PaymentInput

    svc = CounterService(store, "C07")
    for name, mode, ref in (("Ram", "cash", None), ("Sita", "upi", "UTR123"), ("Geeta", "cash", None)):
        svc.register_new("op1", {"name": name, "sex": "F", "age_years": 30}, department="MED",
                         payment=PaymentInput(mode=mode, mode_ref=ref))
    svc.register_new("op1", {"name": "Kamla", "sex": "F", "age_years": 60, "category": "bpl"}, department="MED",
                     payment=PaymentInput(mode="waived"))

    async def run_before(pilot: Any) -> None:
        await _logged_in(pilot)
        await pilot.press("f8")
        await settle(pilot)
        _steady(pilot)
        pilot.app.status.ops_waiting = 0  # the count is real, the age is not steady
        for bar in pilot.app.screen.query("StatusBar"):
            bar.tick()

    assert snap_compare(snap_app, run_before=run_before, terminal_size=SIZE)

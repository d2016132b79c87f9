"""A print failure is shown, the record stays saved, and F6 reprints it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlmodel import select
from textual.pilot import Pilot

from opd_fallback.printing.file import FilePrinter
from opd_fallback.store import audit
from opd_fallback.store.engine import Store
from opd_fallback.store.tables import Patient
from opd_fallback.tui.screens.reprint import ReprintScreen
from tests.helpers import db as db_helper

from .conftest import login, searched, settle, type_text


async def register_ram_kumar(pilot: Pilot[Any]) -> None:
    """On the registration form: fill the required fields and save (F10)."""
    for value in ("Ram Kumar", "M", "42"):
        await type_text(pilot, value)
        await pilot.press("enter")
    for _ in range(3):  # mobile, guardian relation and name: none
        await pilot.press("enter")
    await type_text(pilot, "MED")
    await pilot.press("f10")
    await settle(pilot)


async def test_failed_print_keeps_record_and_reprints(make_app, store: Store, tmp_path: Path) -> None:
    blocked = tmp_path / "printer-offline"
    blocked.write_text("a file where the print directory should be")
    app = make_app(printer=FilePrinter(blocked))
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot)
        await pilot.press("f2")
        await settle(pilot)
        await register_ram_kumar(pilot)
        assert app.last_print_errors and "could not write" in app.last_print_errors[0]
        with store.read() as s:
            (patient,) = s.exec(select(Patient)).all()
        assert patient.name == "Ram Kumar"

        app.printer = FilePrinter(tmp_path / "fixed")  # paper back in
        await pilot.press("f6")
        await settle(pilot)
        assert isinstance(app.screen, ReprintScreen)
        table = app.screen.query_one("#spool")
        rows = [table.get_row_at(i) for i in range(table.row_count)]
        assert {r[0] for r in rows} == {"slip", "receipt"}
        assert all("NOT PRINTED" in r[3] for r in rows)
        await type_text(pilot, "receipt")
        await searched(pilot)
        await pilot.press("enter")  # to the list
        await pilot.press("enter")  # reprint the selected receipt
        await settle(pilot)
        (printed,) = (tmp_path / "fixed").glob("*-receipt-*.txt")
        text = printed.read_text(encoding="utf-8")
        assert "Ram Kumar" in text
        # a reprint says so, with who reprinted it, and is in the audit log
        assert text.count("DUPLICATE") == 2 and f"by {app.session.operator_id}" in text
        with store.read() as s:
            (entry,) = audit.history(s, action_prefix="print.reprint")
        assert entry.actor == app.session.operator_id and entry.subject in text
        assert "Sent to printer" in str(app.screen.query_one("#form-msg").render())


async def test_a_crashing_print_job_never_says_not_saved(make_app, store: Store, tmp_path: Path) -> None:
    """Whatever breaks while printing, the clerk reads "print failed (record is
    saved)", never "NOT SAVED" (which would make them register the patient twice)."""
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot)

        class BrokenSpool:
            def add(self, doc: object) -> Path:
                raise ValueError("spool index corrupt")

        app.spool = BrokenSpool()  # type: ignore[assignment]
        await pilot.press("f2")
        await settle(pilot)
        await register_ram_kumar(pilot)
        with store.read() as s:
            (patient,) = s.exec(select(Patient)).all()
        assert patient.name == "Ram Kumar"
        assert app.last_print_errors == ["ValueError: spool index corrupt"]
        shown = [str(n.message) for n in app._notifications]
        assert any("PRINT FAILED (record is saved" in m and "spool index corrupt" in m for m in shown)
        assert not any("NOT SAVED" in m for m in shown)


async def test_reprint_of_a_vanished_spool_copy_is_reported(make_app, tmp_path: Path) -> None:
    """The spooled copy is read in a worker: a missing copy is a message, not a crash."""
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot)
        await pilot.press("f2")
        await settle(pilot)
        await register_ram_kumar(pilot)
        await pilot.press("f6")
        await settle(pilot)
        assert isinstance(app.screen, ReprintScreen) and len(app.screen.entries) == 2
        with db_helper.connect(tmp_path / "spool" / "spool.db") as con:  # the spooled copies vanish
            assert con.execute("DELETE FROM doc").rowcount == 2
        await pilot.press("tab")  # to the list
        await pilot.press("enter")
        await settle(pilot)
        assert app.is_running and isinstance(app.screen, ReprintScreen)
        assert "PRINT FAILED" in str(app.screen.query_one("#form-msg").render())
        assert app.screen.entries == []  # the list was read again

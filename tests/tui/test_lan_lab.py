"""The lab counter orders tests on a visit registered at another counter of the
LAN (pulled from the hub): found by name in the counter's search, the visit
picked up from the LAN's records, and the op carries the other counter's
offline numbers."""

from __future__ import annotations

from pathlib import Path

import orjson
from sqlmodel import select

from opd_fallback.domain.shared import ref_key
from opd_fallback.store.engine import Store
from opd_fallback.store.tables import Op
from opd_fallback.tui.screens.lab import LabScreen

from .conftest import login, registered_at_another_counter, searched, settle, type_text


async def test_lab_order_on_another_counters_visit(make_app, store: Store, tmp_path: Path) -> None:
    reg = registered_at_another_counter(  # what a share with the hub leaves here
        store, tmp_path, {"name": "Sita Devi", "sex": "F", "age_years": 34, "mobile": "9123456780"})

    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot)
        await pilot.press("f4")
        await settle(pilot)
        assert isinstance(app.screen, LabScreen)
        await type_text(pilot, "sita devi")
        await searched(pilot)
        await pilot.press("enter", "enter")
        await settle(pilot)
        assert app.screen.visit == reg.visit.local_ref
        await type_text(pilot, "cbc")
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("f10")
        await settle(pilot)
        assert "Lab order C07-" in str(app.screen.query_one("#form-msg").render())
    with store.read() as s:
        op = s.exec(select(Op).where(Op.kind == "lab.order")).one()
    body = orjson.loads(op.payload)
    assert ref_key(body["visit"]) == reg.visit.local_ref and ref_key(body["patient"]) == reg.patient.local_ref
    assert op.device_id == "C07"

"""The counter built from config against the reference server over real HTTP:
the status bar goes online and the background sync pushes a saved record."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import select

from opd_fallback.application.services import CounterService, PaymentInput
from opd_fallback.config import load_settings, write_config, write_token
from opd_fallback.store.engine import open_store
from opd_fallback.store.operators import add_operator
from opd_fallback.store.tables import Op
from opd_fallback.tui.wiring import app_from_settings
from tests.helpers.central import run_central

from .conftest import put_master_data, settle


async def test_background_sync_pushes_and_status_shows_online(tmp_path: Path) -> None:
    with run_central(tmp_path / "central", devices=("C07",)) as central:
        settings = load_settings(tmp_path / "counter")
        write_config(settings, {"device_id": "C07", "hospital": "KGMU", "central_url": central.url})
        write_token(settings, central.tokens["C07"])
        settings = load_settings(tmp_path / "counter")
        store = open_store(settings.db_path)
        put_master_data(store)
        add_operator(store, "op1", "Asha", "1234")
        CounterService(store, "C07").register_new(
            "op1", {"name": "Ram Kumar", "sex": "M", "age_years": 40}, department="MED",
            payment=PaymentInput(mode="cash"))
        app = app_from_settings(settings, status_interval_s=0.2)
        async with app.run_test(size=(120, 40)) as pilot:
            for _ in range(100):
                await settle(pilot, 1)
                with store.read() as s:
                    states = {o.state for o in s.exec(select(Op)).all()}
                if states == {"synced"} and app.status.ops_waiting == 0:
                    break
                await pilot.pause(0.1)
            assert app.status.central is True
            assert states == {"synced"}
            assert app.status.ops_waiting == 0 and app.status.last_sync
        store.close()

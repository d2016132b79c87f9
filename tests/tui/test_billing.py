"""The billing desk, through the keys a clerk presses: a patient registered at
C01 and a lab order saved there "pay at billing" are shared through a real LAN
hub; at C02 (a billing desk) the clerk finds her by the last four digits of her
mobile, sees the order due, takes the payment, and the receipt and the tube
labels come out of the printer with the patient as C01 registered her."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.widgets import DataTable
from textual.worker import WorkerCancelled

from opd_fallback.config import load_settings, write_config, write_hub_token
from opd_fallback.store.engine import Store, open_store
from opd_fallback.store.operators import add_operator
from opd_fallback.tui.app import CounterApp
from opd_fallback.tui.screens.billing import BillingScreen
from opd_fallback.tui.screens.home import HomeScreen
from opd_fallback.tui.screens.lab import LabScreen
from opd_fallback.tui.screens.register import RegisterScreen
from opd_fallback.tui.wiring import app_from_settings
from tests.helpers.hub import run_hub

from . import clerk
from .conftest import OPERATOR, OPERATOR_PIN, SUPERVISOR, SUPERVISOR_PIN, put_master_data, searched, type_text
from .conftest import login as _login
from .conftest import settle as _settle


async def settle(pilot: Any, rounds: int = 3) -> None:
    """conftest's settle, where an exclusive worker (a search replaced by the next) may be cancelled."""
    for _ in range(5):
        try:
            await _settle(pilot, rounds)
            return
        except WorkerCancelled:
            await pilot.pause(0.05)


async def login(pilot: Any) -> None:
    try:
        await _login(pilot)
    except WorkerCancelled:
        pass
    await settle(pilot)


async def play(pilot: Any, steps: list[str]) -> None:
    await clerk.play(pilot, steps, wait_for_workers=False)
    await settle(pilot)

KAMLA = ["<f2>", "Kamla Devi", "<enter>", "f", "<enter>", "60", "<enter>", "9415001234", "<enter>",
         "w", "<enter>", "Ram Lal", "<enter>", "ME", "<enter>"]


def counter(tmp_path: Path, device: str, hub: Any, **config: Any) -> tuple[CounterApp, Store]:
    settings = load_settings(tmp_path / device)
    write_config(settings, {"device_id": device, "hospital": "KGMU", "hub_url": hub.url, "hub_fingerprint": hub.fingerprint,
                             **config})
    write_hub_token(settings, hub.tokens[device])
    settings = load_settings(tmp_path / device)
    store = open_store(settings.db_path)
    put_master_data(store)
    add_operator(store, OPERATOR, "Asha Verma", OPERATOR_PIN)
    add_operator(store, SUPERVISOR, "Suresh Singh", SUPERVISOR_PIN, role="supervisor")
    return app_from_settings(settings, background_sync=False, status_interval_s=0.2, share_interval_s=0.2), store


async def started(pilot: Any) -> None:
    """The login screen is up and the store open behind it."""
    for _ in range(100):
        await settle(pilot, 1)
        if pilot.app.backend is not None and pilot.app.screen_stack:
            return
        await pilot.pause(0.05)


async def shared(pilot: Any, app: CounterApp, records: int) -> None:
    """Wait (at most ~20 s) until the background share has this many records of other counters."""
    for _ in range(200):
        await settle(pilot, 1)
        if app.status.hub and app.status.hub_records >= records:
            return
        await pilot.pause(0.1)
    raise AssertionError(f"the LAN share brought {app.status.hub_records} records, not {records}")


async def pushed(pilot: Any, store: Store) -> None:
    """Wait (at most ~20 s) until the background share has taken every op of this counter to the hub."""
    from opd_fallback.application.status import hub_status

    for _ in range(200):
        await settle(pilot, 1)
        left = hub_status(store, configured=True)["ops_not_yet_shared"]
        if left == 0:
            return
        await pilot.pause(0.1)
    raise AssertionError(f"{left} op(s) of this counter never reached the hub")


def printed(folder: Path, kind: str) -> list[str]:
    return [p.read_text(encoding="utf-8") for p in sorted(folder.glob(f"*-{kind}-*.txt"))]


async def test_billing_walk_across_counters_through_a_real_hub(tmp_path: Path) -> None:
    with run_hub(tmp_path / "hub", devices=("C01", "C02")) as hub:
        c01, s01 = counter(tmp_path, "C01", hub)
        async with c01.run_test(size=(80, 24)) as pilot:
            await started(pilot)
            await login(pilot)
            await play(pilot, [*KAMLA, "<f10>"])
            assert isinstance(c01.screen, RegisterScreen)
            await settle(pilot)
            if "Possible" in str(c01.screen.query_one("#form-msg").render()):
                await pilot.press("f10")
                await settle(pilot)
            await pilot.press("f4")
            await settle(pilot)
            assert isinstance(c01.screen, LabScreen)
            await type_text(pilot, "9415001234")
            await searched(pilot)
            await pilot.press("enter", "enter")
            await settle(pilot)
            await type_text(pilot, "cbc", then="enter")
            await settle(pilot)
            await type_text(pilot, "lft", then="enter")
            await settle(pilot)
            mode = c01.screen.field("mode")
            mode.input.focus()
            mode.set_text("")
            await type_text(pilot, "billing")
            await pilot.press("f10")
            await settle(pilot)
            said = str(c01.screen.query_one("#form-msg").render())
            assert "to pay at billing" in said, said
            order = said.split()[2]
            await shared(pilot, c01, 0)
            await pushed(pilot, s01)
        assert printed(tmp_path / "C01" / "prints", "labels") == []  # the labels print where she pays
        s01.close()

        c02, s02 = counter(tmp_path, "C02", hub, desk="billing")
        async with c02.run_test(size=(80, 24)) as pilot:
            await started(pilot)
            await login(pilot)
            await settle(pilot)
            assert isinstance(c02.screen, BillingScreen)  # the billing desk opens on billing
            await shared(pilot, c02, 4)  # patient, visit, its fee, the lab order
            await type_text(pilot, "1234")  # the last four digits of her mobile
            await searched(pilot)
            await pilot.press("enter", "enter")  # to the list, pick her
            await settle(pilot)
            screen = c02.screen
            assert isinstance(screen, BillingScreen)
            table = screen.query_one("#orders", DataTable)
            assert [str(c) for c in table.get_row_at(table.cursor_row)] == [
                order, "C01", "CBC LFT", "₹400.00", "₹0.00", "₹400.00"]
            assert "Kamla Devi 60/F" in str(screen.query_one("#account-head").render())
            await pilot.press("enter")  # choose the order; the cursor goes to the payment mode (cash)
            await pilot.press("f10")
            await settle(pilot)
            said = str(screen.query_one("#form-msg").render())
            assert said.startswith(f"Paid ₹400.00 for {order} · receipt C02-R") and "2 label(s)" in said, said
            await pilot.pause(0.3)
            await settle(pilot)
            # the same patient again: the order shows paid, nothing is due, F10 takes nothing twice
            await type_text(pilot, "1234")
            await searched(pilot)
            await pilot.press("enter", "enter")
            await settle(pilot)
            assert [str(c) for c in table.get_row_at(0)][4:] == ["₹400.00", "-"]
            await pilot.press("f10")
            await settle(pilot)
            assert "already paid" in str(screen.query_one("#form-msg").render())
            await pilot.press("escape")
            await settle(pilot)
            assert isinstance(c02.screen, HomeScreen)  # every screen stays one key away
        s02.close()
        # C01's own papers for this order, had she paid there: what C02 printed must be the same labels
        from opd_fallback.application.printouts import Printouts
        from opd_fallback.printing.text import render_text

        s01 = open_store(tmp_path / "C01" / "counter.db")
        at_c01 = [render_text(d, 42) for d in Printouts(s01, device_id="C01", hospital="KGMU").for_lab_order(order)
                  if d.kind == "labels"]
        s01.close()
    prints = tmp_path / "C02" / "prints"
    (receipt,) = printed(prints, "receipt")
    assert "Kamla Devi" in receipt and "₹400.00" in receipt and "CASH" in receipt.upper()
    labels = printed(prints, "labels")
    assert sorted(labels) == sorted(at_c01) and len(labels) == 2  # one per tube: EDTA blood (CBC), serum (LFT)
    for label in labels:
        assert "Kamla Devi  60Y/F" in label, label


async def test_another_counters_patient_prints_as_registered_there(make_app, store: Store, tmp_path: Path) -> None:
    """Item 4: a lab order and a revisit at C07 for a patient C01 registered (pulled from the hub):
    the labels, receipt and slip print her age/sex, Hindi name and guardian as C01 registered them
    (before, the labels said ``Kamla Devi  ?/?``)."""
    from .conftest import registered_at_another_counter

    registered_at_another_counter(store, tmp_path, {
        "name": "Kamla Devi", "name_local": "कमला देवी", "sex": "F", "age_years": 60, "mobile": "9415001234",
        "guardian_relation": "W/O", "guardian_name": "Ram Lal", "category": "bpl"})
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot)
        await pilot.press("f4")
        await settle(pilot)
        await type_text(pilot, "kamla")
        await searched(pilot)
        await pilot.press("enter", "enter")
        await settle(pilot)
        await type_text(pilot, "cbc", then="enter")
        await settle(pilot)
        await pilot.press("f10")
        await settle(pilot)
        assert "Lab order C07-" in str(app.screen.query_one("#form-msg").render())
        await pilot.press("f3")
        await settle(pilot)
        await type_text(pilot, "1234")
        await searched(pilot)
        await pilot.press("enter", "enter")
        await settle(pilot)
        await type_text(pilot, "ME", then="enter")
        await settle(pilot)
        await pilot.press("f10")
        await settle(pilot)
        await pilot.pause(0.3)
        await settle(pilot)
    prints = tmp_path / "prints"
    (label,) = printed(prints, "labels")
    assert "Kamla Devi  60Y/F" in label and "कमला देवी" in label, label
    receipts = printed(prints, "receipt")
    assert receipts and all("कमला देवी" in r for r in receipts)
    (slip,) = printed(prints, "slip")
    assert "W/O Ram Lal" in slip and "कमला देवी" in slip and "60Y/F" in slip.replace(" / ", "/"), slip

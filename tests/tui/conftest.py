"""A real counter for the UI tests: a SQLite store in tmp_path with the demo
master data, an operator and a supervisor, and the file printer."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

import opd_fallback.central as central_pkg
from opd_fallback.domain.clock import IST, now_iso
from opd_fallback.store.engine import Store, open_store
from opd_fallback.store.operators import add_operator
from opd_fallback.store.tables import MasterDataCache
from opd_fallback.tui.app import CounterApp, create_app
from opd_fallback.tui.backend import StoreBackend

MASTER = Path(central_pkg.__file__).parent / "demo_master_data.json"
OPERATOR, OPERATOR_PIN = "op1", "1234"
SUPERVISOR, SUPERVISOR_PIN = "sup1", "999999"


def put_master_data(store: Store) -> None:
    body = MASTER.read_text(encoding="utf-8")
    with store.write() as s:
        s.merge(MasterDataCache(id=1, version=json.loads(body)["version"], etag=None, body=body, fetched_at=now_iso()))


@pytest.fixture(scope="session")
def seeded_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One seeded database file, copied per test (PIN hashing is slow on purpose)."""
    path = tmp_path_factory.mktemp("seed") / "counter.db"
    store = open_store(path)
    put_master_data(store)
    add_operator(store, OPERATOR, "Asha Verma", OPERATOR_PIN)
    add_operator(store, SUPERVISOR, "Suresh Singh", SUPERVISOR_PIN, role="supervisor")
    with store.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    return path


@pytest.fixture
def store(seeded_db: Path, tmp_path: Path) -> Store:
    path = tmp_path / "counter.db"
    path.write_bytes(seeded_db.read_bytes())
    s = open_store(path)
    yield s
    s.close()


FIXED_NOW = datetime(2026, 11, 26, 10, 30, 0, tzinfo=IST)


@pytest.fixture
def make_app(store: Store, tmp_path: Path) -> Callable[..., CounterApp]:
    def make(**kwargs: Any) -> CounterApp:
        backend = StoreBackend(store, device_id="C07", hospital="KGMU Lucknow")
        kwargs.setdefault("print_dir", tmp_path / "prints")
        kwargs.setdefault("spool_dir", tmp_path / "spool")
        return create_app(backend, **kwargs)

    return make


async def settle(pilot: Pilot[Any], rounds: int = 3) -> None:
    """Let workers finish and their callbacks (which may start workers) run.

    Returns after two pauses in a row with no worker running and no message
    waiting for the app: a worker's callback runs on the event loop before the
    worker ends (``call_from_thread`` waits for it), and the second pause catches
    keys of a burst still on their way from the driver. (Each pause waits for the
    screen's messages and for the process to go idle, >= 20 ms: four of them on
    every call, however idle the app, were a large part of the UI tests' time.)"""
    app = pilot.app
    quiet = 0
    for _ in range(rounds + 2):
        await pilot.pause()
        if all(w.is_finished for w in app.workers) and app._message_queue.empty():
            quiet += 1
            if quiet == 2:
                return
        else:
            quiet = 0
            await app.workers.wait_for_complete()


async def searched(pilot: Pilot[Any], timeout_s: float = 10.0) -> None:
    """Wait until every patient search on the screen has been asked for the text
    now in its box and answered (the picker asks 0.12 s after the last key): a
    fixed pause either wastes time or, on a busy machine, is too short. Fails if
    a search never runs."""
    import asyncio

    from textual.widgets import Input
    from textual.worker import WorkerCancelled

    from opd_fallback.tui.widgets.patient_picker import PatientPicker

    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while True:
        try:
            await settle(pilot, 1)
        except WorkerCancelled:  # a search replaced by the next one
            pass
        behind = [p for p in pilot.app.screen.query(PatientPicker) if p._asked != p.query_one("#search", Input).value]
        if not behind:
            return
        if loop.time() > end:
            raise AssertionError(f"no search ran for {behind[0].query_one('#search', Input).value!r} in {timeout_s} s")
        await pilot.pause(0.02)


async def type_text(pilot: Pilot[Any], text: str, *, then: str | None = None) -> None:
    """Type like a clerk: one key event per character, sent through the driver
    as a burst the way a terminal delivers fast typing, then let the app catch
    up. (Pilot.press waits for idle after every key, which is slow, and loses
    the character of Devanagari vowel signs.)"""
    from textual import events
    from textual.app import _character_to_key

    driver = pilot.app._driver
    assert driver is not None
    for ch in text:
        key = "space" if ch == " " else (ch if ch.isalnum() and ch.isascii() else _character_to_key(ch))
        event = events.Key(key, ch)
        event.set_sender(pilot.app)
        driver.send_message(event)
    if then is not None:  # a named key (e.g. "enter") in the same burst
        event = events.Key(then, "\r" if then == "enter" else None)
        event.set_sender(pilot.app)
        driver.send_message(event)
    await pilot.pause()


async def login(pilot: Pilot[Any], op: str = OPERATOR, pin: str = OPERATOR_PIN) -> None:
    await type_text(pilot, op)
    await pilot.press("enter")
    await type_text(pilot, pin)
    await pilot.press("enter")
    await settle(pilot)


def registered_at_another_counter(store: Store, tmp_path: Path, patient: dict[str, Any], device: str = "C01",
                                  own: str = "C07") -> Any:
    """``device`` registered ``patient`` (visit and fee); a share with the hub left its ops here.
    Returns that counter's saved registration."""
    from sqlmodel import select

    from opd_fallback.application.services import CounterService, PaymentInput
    from opd_fallback.store import outbox
    from opd_fallback.store import shared as shared_records
    from opd_fallback.store.tables import Op

    other = open_store(tmp_path / f"{device.lower()}.db")
    put_master_data(other)
    reg = CounterService(other, device).register_new(
        "op-1", patient, department="MED", payment=PaymentInput(mode="cash", amount_paise=1000))
    with other.read() as s:
        pulled = [{"hub_seq": i + 1, "op": outbox.envelope(op)} for i, op in enumerate(s.exec(select(Op)).all())]
    other.close()
    with store.write() as s:
        shared_records.store_page(s, own, pulled, [])
    return reg

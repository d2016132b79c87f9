"""Refresh: master data (If-None-Match), the patient index by cursor, id blocks."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from opd_fallback.application.services import CounterService, PaymentInput
from opd_fallback.store import Store, meta, open_store, reserved
from opd_fallback.store.patient_index import count
from opd_fallback.store.search import search
from opd_fallback.sync.client import CentralClient
from opd_fallback.sync.engine import SyncEngine
from opd_fallback.sync.refresh import INDEX_CURSOR, refresh_all, refresh_patient_index, top_up_ids
from opd_fallback.sync.retry import CircuitBreaker, call_with_retries
from tests.helpers.central import run_central

from .daygen import make_day


def test_refresh_fills_the_offline_caches_and_resumes_by_cursor(tmp_path: Path, store: Store) -> None:
    with run_central(tmp_path, devices=("C07", "L02")) as central:
        day_store = open_store(tmp_path / "l02.db")
        make_day(day_store, "L02", 12, seed=31)
        with CentralClient(central.url, central.tokens["L02"]) as c:
            assert SyncEngine(day_store, c).run().outcome == "ok"
        day_store.close()
        with CentralClient(central.url, central.tokens["C07"]) as client:
            def call(fn):  # type: ignore[no-untyped-def]
                return call_with_retries(fn, CircuitBreaker(client.health))

            # a refresh stopped after two small pages keeps its place
            got, pages, done = refresh_patient_index(store, client, call, page=5, max_pages=2)
            assert (got, pages, done) == (10, 2, False)
            with store.read() as s:
                assert meta.get(s, INDEX_CURSOR) and count(s) == 10
            got, _, done = refresh_patient_index(store, client, call, page=5)
            assert got == 2 and done
            first = refresh_all(store, client)
            assert first.ok and first.master_data == "updated" and first.patients_received == 0
            assert first.ids_added == {"uhid": 1000, "receipt": 1000, "sample": 1000}
            again = refresh_all(store, client)
            assert again.master_data == "unchanged" and again.ids_added == {}
            with store.read() as s:
                assert count(s) == 12
                uhid, mobile, name = s.execute(text(
                    "SELECT uhid, mobile, name FROM patient_index WHERE mobile IS NOT NULL LIMIT 1")).one()
                assert uhid in {h.uhid for h in search(s, mobile)}  # offline lookup by mobile
                assert uhid in {h.uhid for h in search(s, name.split()[0][:3], limit=50)}  # by name prefix
            # reserved numbers are used offline and topped up when they run low
            svc = CounterService(store, "C07")
            reg = svc.register_new("op-1", {"name": "Ravi Shankar", "sex": "M", "age_years": 33},
                                   department="MED", payment=PaymentInput(mode="cash"))
            assert reg.patient.extra["uhid"] is not None
            assert reg.payment is not None and not reg.payment.extra["receipt_no"].startswith("C07-")
            with store.write() as s:
                s.execute(text("UPDATE id_reservation SET state='abandoned' WHERE kind='sample'"))
            added, free = top_up_ids(store, client, call, target=50, low_water=10)
            assert added == {"sample": 50} and free["sample"] == 50
            with store.read() as s:
                assert reserved.free_count(s, "uhid") == 999
            assert SyncEngine(store, client).run().outcome == "ok"  # the reserved uhid is accepted


def test_refresh_reports_a_refused_token(tmp_path: Path, store: Store) -> None:
    with run_central(tmp_path) as central, CentralClient(central.url, "nope") as client:
        result = refresh_all(store, client)
    assert not result.ok and result.unauthorized and "token" in result.message


def test_patient_index_pages_that_do_not_advance_are_an_error_not_a_loop(store: Store) -> None:
    from typing import Any

    from .scripted import Scripted, js

    def answer(method: str, path: str, headers: dict[str, str], body: bytes) -> Any:
        if "/patients/changes" in path:  # always the same page and cursor, never done
            return js(200, {"patients": [], "next_cursor": "c1", "done": False})
        return js(200, {"status": "ok"})

    with Scripted(answer) as srv, CentralClient(srv.url, "t") as client:
        with pytest.raises(RuntimeError, match="do not advance past cursor 'c1'"):
            refresh_patient_index(store, client, lambda fn: fn(), page=5, max_pages=50)
        asked = sum(1 for r in srv.requests if "/patients/changes" in r[1])
    assert asked == 2  # the first page, then the repeat that gave the bug away
    with store.read() as s:
        assert meta.get(s, INDEX_CURSOR) == "c1"  # the place it got to is kept

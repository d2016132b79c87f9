"""Another counter's offline number finds the patient (contract 1.1 ``local_refs``).

End to end with the real reference server: counter C03 registers a patient
offline and syncs; counter C07 refreshes its patient index; a patient who
brings C03's slip to C07 is found by that number (search and services), and
a visit opened for them at C07 refers to the central id and syncs applied.
"""

from __future__ import annotations

from pathlib import Path

import orjson
from sqlmodel import select

from opd_fallback.application.services import CounterService, PaymentInput
from opd_fallback.store import Store, open_store
from opd_fallback.store.tables import Op
from opd_fallback.sync.client import CentralClient
from opd_fallback.sync.engine import SyncEngine
from opd_fallback.sync.refresh import refresh_all
from tests.helpers.central import run_central


def test_a_slip_from_another_counter_is_found_by_its_offline_number(tmp_path: Path, store: Store) -> None:
    with run_central(tmp_path, devices=("C03", "C07")) as central:
        c03 = open_store(tmp_path / "c03.db")
        try:
            reg = CounterService(c03, "C03").register_new(
                "op-3", {"name": "Gulab Chand", "sex": "M", "age_years": 61, "mobile": "9415012345"},
                department="MED", payment=PaymentInput(mode="cash", amount_paise=1000))
            with CentralClient(central.url, central.tokens["C03"]) as client:
                assert SyncEngine(c03, client).run().outcome == "ok"
        finally:
            c03.close()
        slip_no = reg.patient.local_ref
        assert slip_no.startswith("C03-")

        svc = CounterService(store, "C07")
        assert svc.search_patients(slip_no) == []  # before a refresh, C07 knows nothing of it
        with CentralClient(central.url, central.tokens["C07"]) as client:
            summary = refresh_all(store, client, ids=False)
            assert summary.ok, summary.message
            hits = svc.search_patients(slip_no.lower())
            assert len(hits) == 1 and hits[0].name == "Gulab Chand" and hits[0].uhid
            uhid = hits[0].uhid
            with svc.transaction("op-7") as tx:
                info = tx.patient(slip_no)
            assert info.uhid == uhid and info.name == "Gulab Chand" and info.ref.wire() == {"central_id": uhid}
            visit = svc.revisit("op-7", slip_no, department="MED", payment=PaymentInput(mode="cash"))
            assert visit.info.uhid == uhid
            with store.read() as s:
                payload = orjson.loads(s.exec(select(Op).where(Op.op_id == visit.visit.op_id)).one().payload)
            assert payload["patient"] == {"central_id": uhid}
            assert SyncEngine(store, client).run().outcome == "ok"
            with store.read() as s:
                states = {op.kind: op.state for op in s.exec(select(Op))}
            assert states == {"visit.open": "synced", "payment.record": "synced"}

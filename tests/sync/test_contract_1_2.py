"""The counter's side of contract 1.2, against the reference server (real processes):
a back-entered slip's ``origin`` travels with its ops; after a restore the reserved
ids central lists as used are marked used; a deferred op flagged for waiting too
long says what it waits for, as looked up with ``GET /refs``."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest
from sqlalchemy import text

from opd_fallback.application.review import ReviewService
from opd_fallback.application.services import CounterService
from opd_fallback.store import Store, readiness, reserved
from opd_fallback.sync.client import CentralClient
from opd_fallback.sync.engine import SyncEngine
from tests.helpers.central import CentralHandle, run_central

PATIENT = {"name": "Sita Devi", "sex": "F", "age_years": 33}


@pytest.fixture(scope="module")
def central(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CentralHandle]:
    with run_central(tmp_path_factory.mktemp("central"), devices=("C03",)) as handle:
        yield handle


_DEVICES = iter(range(10, 100))


@pytest.fixture
def device(central: CentralHandle) -> str:
    """Each test is its own counter (its offline numbers are its own)."""
    dev = f"C{next(_DEVICES)}"
    central.add_device(dev)
    return dev


@pytest.fixture
def client(central: CentralHandle, device: str) -> Iterator[CentralClient]:
    with CentralClient(central.url, central.tokens[device]) as c:
        yield c


def test_a_back_entered_slips_origin_travels_with_its_ops(store: Store, central: CentralHandle, device: str,
                                                          client: CentralClient) -> None:
    svc = CounterService(store, device)
    slip = {"written_by": "op-17", "device_id": "C03", "slip_no": "42"}
    with svc.transaction("op-1", source="backentry", origin=slip) as tx:
        first = tx.register_patient(PATIENT)
        with tx.from_paper({"slip_no": "43", "written_by": None}):
            second = tx.register_patient({**PATIENT, "name": "Ram Prasad", "sex": "M"})
        visit = tx.open_visit(first.local_ref, "MED")
    plain = svc.register_new("op-1", {**PATIENT, "name": "Geeta Devi"}, department="MED")
    summary = SyncEngine(store, client).run()
    assert summary.outcome == "ok", summary.reasons
    got = dict(central.query("SELECT op_id, origin FROM op_outcome WHERE device_id = ?", (device,)))
    assert {k: (orjson.loads(v) if v else None) for k, v in got.items()
            if k in (first.op_id, second.op_id, visit.op_id, plain.patient.op_id, plain.visit.op_id)} == {
        first.op_id: slip, second.op_id: {"slip_no": "43"}, visit.op_id: slip,
        plain.patient.op_id: None, plain.visit.op_id: None}


def test_after_a_restore_the_ids_central_saw_used_are_marked_used(store: Store, device: str,
                                                                  client: CentralClient) -> None:
    ids = client.id_block("uhid", 3).ids
    with store.write() as s:
        reserved.add_block(s, "uhid", ids)
    svc = CounterService(store, device)
    reg = svc.register_new("op-1", PATIENT, department="MED")
    assert reg.patient.extra["uhid"] == ids[0]
    assert SyncEngine(store, client).run().outcome == "ok"
    # a backup from before that registration comes back: the id it used was free then
    with store.write() as s:
        s.execute(text("UPDATE id_reservation SET state='free', used_by_op=NULL, used_at=NULL WHERE value=:v"),
                  {"v": ids[0]})
    readiness.mark_restored(store, source="a backup of this morning")
    assert readiness.is_ready(store)[0] is False
    SyncEngine(store, client).run()
    assert readiness.is_ready(store)[0] is True
    with store.read() as s:
        states = dict(s.execute(text("SELECT value, state || ':' || COALESCE(used_by_op, '') FROM id_reservation "
                                     "WHERE kind='uhid'")).all())
    assert states == {ids[0]: "used:central", ids[1]: "abandoned:", ids[2]: "abandoned:"}


def test_a_deferred_op_says_what_it_waits_for(store: Store, device: str, client: CentralClient) -> None:
    svc = CounterService(store, device)
    other = "C03-261201-000777"  # counter C03's patient, not synced by C03
    svc.revisit("op-1", other, department="MED")
    SyncEngine(store, client, max_deferred_wait_s=0).run()
    (item,) = [i for i in ReviewService(store).items() if i.kind == "visit.open"]
    assert item.category == "waited_too_long"
    assert item.error["waiting_for"] == {"local_ref": other}
    assert item.error["looked_up"] == {"found": False}
    assert (f"It waits for {other} (made at counter C03): central does not know it yet "
            "(counter C03 has not synced it).") in item.explanation

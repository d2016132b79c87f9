"""Review end to end: two counters, the reference central server over real HTTP,
the real sync engine, and a supervisor's decisions flowing back on the next sync."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import text

from opd_fallback.application.review import ReviewService, summary
from opd_fallback.application.services import CounterService, PaymentInput
from opd_fallback.domain.errors import DomainError
from opd_fallback.store import outbox, reserved
from opd_fallback.store.engine import Store, open_store
from opd_fallback.store.operators import add_operator
from opd_fallback.sync.client import CentralClient
from opd_fallback.sync.engine import SyncEngine, SyncSummary
from tests.helpers.central import CentralHandle, run_central

RAM = {"name": "Ram Kumar", "sex": "M", "age_years": 40, "mobile": "9876543210", "district": "Lucknow",
       "guardian_relation": "S/O", "guardian_name": "Shyam Lal"}


# One server for the module; each test uses its own devices, since a fresh
# counter numbers its records from seq 1 and central refuses a reused local_ref.
@pytest.fixture(scope="module")
def central(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CentralHandle]:
    with run_central(tmp_path_factory.mktemp("central"), devices=("C07", "C09", "C17", "C19", "C27")) as handle:
        yield handle


def counter(tmp_path: Path, device: str) -> tuple[Store, CounterService]:
    store = open_store(tmp_path / f"{device}.db")
    add_operator(store, "clerk1", "Clerk One", "1111")
    add_operator(store, "sup1", "Sup One", "222222", role="supervisor")
    return store, CounterService(store, device)


def sync(store: Store, central: CentralHandle, device: str) -> SyncSummary:
    with CentralClient(central.url, central.tokens[device]) as client:
        return SyncEngine(store, client, round_pause_s=0.01, give_up_after_s=10).run()


def op(store: Store, op_id: str) -> Any:
    with store.read() as s:
        return outbox.get(s, op_id)


def central_row(central: CentralHandle, sql: str, *args: Any) -> tuple[Any, ...]:
    conn = sqlite3.connect(central.db_path)
    try:
        return tuple(conn.execute(sql, args).fetchone())
    finally:
        conn.close()


def audit_actions(store: Store) -> list[tuple[str, str, str | None]]:
    with store.read() as s:
        rows = s.execute(text("SELECT actor, action, subject FROM audit_log WHERE action LIKE 'review.%' "
                              "ORDER BY id")).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def test_duplicate_at_two_counters_linked_and_dependents_follow(tmp_path: Path, central: CentralHandle) -> None:
    s9, c9 = counter(tmp_path, "C09")
    first = c9.register_new("clerk1", RAM, department="MED", payment=PaymentInput(mode="cash", amount_paise=1000))
    assert sync(s9, central, "C09").synced == 3
    uhid = op(s9, first.patient.op_id).result and orjson.loads(op(s9, first.patient.op_id).result)["uhid"]

    s7, c7 = counter(tmp_path, "C07")  # the same man walks up to another counter, offline
    reg = c7.register_new("clerk1", {**RAM, "name": "Ram Kumaar", "age_years": 41}, department="MED",
                          payment=PaymentInput(mode="cash", amount_paise=1000))
    run = sync(s7, central, "C07")
    assert run.conflict == 1 and run.synced == 0 and run.needs_person == 1
    assert op(s7, reg.patient.op_id).state == "conflict"
    for dep in (reg.visit.op_id, reg.payment.op_id):
        waiting = op(s7, dep)
        assert waiting.state == "pending" and waiting.wait_reason  # waiting, with the reason in words
    assert summary(s7)[0] == 1

    rs = ReviewService(s7)
    [item] = rs.items()
    assert item.category == "possible_duplicate" and [c.key for c in item.comparisons] == [uhid]
    assert {r.field for r in item.comparisons[0].rows if r.differs} == {"name", "age_years"}
    with pytest.raises(DomainError) as refused:  # an operator without the supervisor role
        rs.authenticate("clerk1", "1111")
    assert refused.value.code == "not_supervisor"
    rs.link(rs.authenticate("sup1", "222222"), item.op_id, uhid, note="same father and mobile")

    run = sync(s7, central, "C07")
    assert run.synced == 3 and run.needs_person == 0 and run.still_waiting == 0
    assert orjson.loads(op(s7, reg.patient.op_id).result) == {"uhid": uhid, "linked": True}
    visit_id = orjson.loads(op(s7, reg.visit.op_id).result)["visit_id"]
    receipt_id = orjson.loads(op(s7, reg.payment.op_id).result)["receipt_id"]
    assert central_row(central, "SELECT uhid FROM visit WHERE visit_id=?", visit_id) == (uhid,)
    assert central_row(central, "SELECT uhid, visit_id, amount_paise FROM payment WHERE receipt_id=?",
                       receipt_id) == (uhid, visit_id, 1000)
    assert central_row(central, "SELECT count(*) FROM patient WHERE mobile=?", RAM["mobile"]) == (1,)
    with s7.read() as s:  # the counter's own records now carry the existing patient's uhid
        assert s.execute(text("SELECT uhid FROM patient")).one() == (uhid,)
        assert s.execute(text("SELECT patient_uhid FROM payment")).one() == (uhid,)
    assert audit_actions(s7) == [("clerk1", "review.refused", None), ("sup1", "review.link", reg.patient.op_id)]
    assert summary(s7) == (0, None)


def test_stale_update_merged_per_field(tmp_path: Path, central: CentralHandle) -> None:
    s9, c9 = counter(tmp_path, "C19")
    reg = c9.register_new("clerk1", {**RAM, "name": "Geeta Devi", "sex": "F", "mobile": "9811111111",
                                     "guardian_relation": "W/O"}, department="MED")
    assert sync(s9, central, "C19").synced == 2
    uhid = orjson.loads(op(s9, reg.patient.op_id).result)["uhid"]

    s7, c7 = counter(tmp_path, "C17")  # C07 saw version 1 and changes mobile and district
    upd = c7.update_patient("clerk1", uhid, {"mobile": "9822222222", "district": "Kanpur"}, base_version=1)
    c9.update_patient("clerk1", reg.patient.local_ref, {"mobile": "9833333333"}, base_version=1)
    sync(s9, central, "C19")  # central is now at version 2
    run = sync(s7, central, "C17")
    assert run.conflict == 1 and op(s7, upd.op_id).state == "conflict"

    rs = ReviewService(s7)
    [item] = rs.items()
    rows = {r.field: r for r in item.comparisons[0].rows}
    assert rows["mobile"].right == "9833333333" and rows["mobile"].differs and rows["district"].differs
    d = rs.merge(rs.authenticate("sup1", "222222"), item.op_id, {"mobile": "central", "district": "counter"},
                 note="patient confirmed the new mobile at C09")
    assert d.new_op_id is not None
    run = sync(s7, central, "C17")
    assert run.synced == 1 and run.needs_person == 0
    assert orjson.loads(op(s7, d.new_op_id).result) == {"uhid": uhid, "version": 3}
    assert op(s7, upd.op_id).state == "cancelled"
    assert central_row(central, "SELECT mobile, district, version FROM patient WHERE uhid=?", uhid) == (
        "9833333333", "Kanpur", 3)
    [(actor, action, subject)] = audit_actions(s7)
    assert (actor, action, subject) == ("sup1", "review.merge", upd.op_id)


def test_rejected_registration_corrected_and_waiting_payment_synced(tmp_path: Path,
                                                                    central: CentralHandle) -> None:
    s7, c7 = counter(tmp_path, "C27")
    with s7.write() as s:  # a uhid block this counter thinks it holds, never issued to it
        reserved.add_block(s, "uhid", ["KGMU999999990"])
    reg = c7.register_new("clerk1", {**RAM, "name": "Mohan Lal", "mobile": "9844444444"}, department="MED",
                          payment=PaymentInput(mode="upi", amount_paise=1000, mode_ref="UTR123456789"))
    run = sync(s7, central, "C27")
    assert run.rejected == 1 and op(s7, reg.patient.op_id).state == "rejected"
    assert op(s7, reg.payment.op_id).state == "pending"

    rs = ReviewService(s7)
    [item] = rs.items()
    assert item.code == "reserved_id_not_owned" and item.field_errors[0]["field"] == "uhid"
    d = rs.correct(rs.authenticate("sup1", "222222"), item.op_id, {"uhid": None},
                   note="stale uhid block from an old backup")
    assert set(d.affected) == {reg.visit.op_id, reg.payment.op_id}
    run = sync(s7, central, "C27")
    assert run.synced == 3 and run.needs_person == 0 and run.still_waiting == 0
    new_uhid = orjson.loads(op(s7, d.new_op_id).result)["uhid"]
    assert new_uhid != "KGMU999999990"
    receipt_id = orjson.loads(op(s7, reg.payment.op_id).result)["receipt_id"]
    assert central_row(central, "SELECT uhid, amount_paise, mode FROM payment WHERE receipt_id=?", receipt_id) == (
        new_uhid, 1000, "upi")
    assert op(s7, reg.patient.op_id).state == "cancelled"  # kept, with why
    assert d.new_op_id in (op(s7, reg.patient.op_id).wait_reason or "")
    with s7.read() as s:
        assert s.execute(text("SELECT count(*) FROM op")).one() == (4,)  # nothing disappeared
    [(actor, action, subject)] = audit_actions(s7)
    assert (actor, action, subject) == ("sup1", "review.correct", reg.patient.op_id)

"""Numbers that never repeat, reserved central ids, the outbox's reads and the patient index."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy.exc import IntegrityError

from opd_fallback.domain.clock import IST
from opd_fallback.store import Store, numbers, outbox, patient_index, reserved, search


def test_seq_increments_and_floor_never_lowers(store: Store) -> None:
    with store.write() as s:
        assert [numbers.next_seq(s) for _ in range(3)] == [1, 2, 3]
        assert numbers.raise_floor(s, numbers.SEQ, 100) == 100
        assert numbers.next_seq(s) == 101
        assert numbers.raise_floor(s, numbers.SEQ, 5) == 101  # never lowered
        assert numbers.peek(s, numbers.SEQ) == 101


def test_rolled_back_seq_is_not_committed(store: Store) -> None:
    with pytest.raises(RuntimeError):
        with store.write() as s:
            numbers.next_seq(s)
            raise RuntimeError
    with store.write() as s:
        assert numbers.next_seq(s) == 1  # nothing committed used it, so nothing printed can repeat


def test_printed_number_formats() -> None:
    when = datetime(2026, 11, 26, 10, 0, tzinfo=IST)
    assert numbers.local_ref("C07", 42, when) == "C07-261126-000042"
    assert numbers.local_receipt_no("C07", 43) == "C07-R000043"
    assert numbers.local_sample_id("C07", 44) == "C07-S000044"


def test_reserved_ids_used_once_and_abandoned_after_restore(store: Store) -> None:
    with store.write() as s:
        assert reserved.add_block(s, "receipt", ["R1", "R2", "R2"]) == 3
        assert reserved.free_count(s, "receipt") == 2
        assert reserved.take(s, "receipt", "op-a") == "R1"
        assert reserved.abandon_free(s) == 1
        assert reserved.take(s, "receipt", "op-b") is None


def test_outbox_reads(store: Store) -> None:
    with store.write() as s:
        for seq, kind in [(1, "patient.register"), (2, "visit.open"), (3, "payment.record")]:
            outbox.enqueue(s, seq=seq, kind=kind, device_id="C07", operator_id="op1",
                           payload={"x": seq}, depends_on=["b", "a", "a"], record_kind="patient", record_ref=f"r{seq}")
    with store.write() as s:
        op2 = outbox.pending(s)[1]
        outbox.transition_one(s, op2.op_id, "synced", st="applied", res="{}")
    with store.read() as s:
        assert [o.seq for o in outbox.pending(s)] == [1, 3]
        assert outbox.counts_by_state(s)["synced"] == 1
        assert outbox.counts_by_state_and_kind(s)["pending"] == {"patient.register": 1, "payment.record": 1}
        env = outbox.envelope(outbox.pending(s)[0])
        assert env["depends_on"] == ["a", "b"] and env["payload"] == {"x": 1}
        assert outbox.unsynced_op_ids(s, [op2.op_id, env["op_id"]]) == [env["op_id"]]
    with pytest.raises(IntegrityError):
        with store.write() as s:  # a seq is never used twice
            outbox.enqueue(s, seq=1, kind="visit.open", device_id="C07", operator_id="op1", payload={})


def test_patient_index_search(store: Store) -> None:
    with store.write() as s:
        patient_index.upsert_many(s, [
            {"uhid": "KGMU1", "name": "Ram Kumar Verma", "mobile": "9876543210", "version": 2},
            {"uhid": "KGMU2", "name": "Ramesh Singh", "version": 1},
        ])
        patient_index.upsert_many(s, [{"uhid": "KGMU1", "name": "Old Name", "version": 1}])  # older: ignored
    with store.read() as s:
        assert {h.uhid for h in search.search(s, "ram")} == {"KGMU1", "KGMU2"}
        assert [h.uhid for h in search.search(s, "ram ver")] == ["KGMU1"]
        assert [h.uhid for h in search.search(s, "+91 98765 43210")] == ["KGMU1"]
        assert [h.uhid for h in search.search(s, "kgmu2")] == ["KGMU2"]
        assert search.search(s, "   ") == []
        assert patient_index.count(s) == 2

"""The collection desk's service: a scanned tube collected or refused, each
event saved with its ``lab.sample_collect`` op in one transaction."""

from __future__ import annotations

from collections.abc import Callable

import orjson
import pytest
from sqlalchemy import text
from sqlmodel import select

from opd_fallback.application.collection import CollectionDesk
from opd_fallback.application.services import CounterService, PaymentInput
from opd_fallback.domain.errors import DomainError
from opd_fallback.store import Store, outbox
from opd_fallback.store import shared as shared_records
from opd_fallback.store.tables import Op

PATIENT = {"name": "Kamla Devi", "name_local": "कमला देवी", "sex": "F", "age_years": 52}


def _ops(store: Store, kind: str) -> list[Op]:
    with store.read() as s:
        return list(s.exec(select(Op).where(Op.kind == kind).order_by(Op.seq)))


def test_a_tube_of_this_counter_is_collected_once_paid_and_a_refusal_needs_a_reason(
        store: Store, svc: CounterService, with_master_data: Callable[..., None]) -> None:
    with_master_data(store)
    reg = svc.register_new("op1", PATIENT, department="MED", unit="MED-U1", payment=PaymentInput(mode="cash"))
    lab = svc.lab_request("op1", reg.patient.local_ref, reg.visit.local_ref, ["CBC", "LFT"])  # not paid yet
    edta, serum = (t["sample_id"] for t in lab.order.extra["samples"])
    desk = CollectionDesk(store, "C07", svc=svc)

    tube = desk.tube(edta.lower() + " ")  # a scanner's case and a stray space
    assert (tube.sample_id, tube.sample_type, tube.tests, tube.order_ref) == (edta, "EDTA", ["CBC"],
                                                                             lab.order.local_ref)
    assert (tube.patient.name, tube.patient.name_local, tube.patient.sex, tube.patient.age) == (
        "Kamla Devi", "कमला देवी", "F", (52, None, None))
    assert (tube.paid, tube.state) == (False, "ordered")
    with pytest.raises(DomainError, match="is not paid: send the patient to billing") as unpaid:
        desk.collect("lab1", edta)
    assert unpaid.value.code == "unpaid"
    assert _ops(store, "lab.sample_collect") == []

    svc.pay_lab_order("op1", lab.order.local_ref, PaymentInput(mode="cash"))
    got = desk.collect("lab1", edta)
    with pytest.raises(DomainError, match=f"tube {edta} was already collected at .* by lab1 \\(C07\\)"):
        desk.collect("lab2", edta)
    with pytest.raises(DomainError, match="give the reason the tube is refused") as no_reason:
        desk.refuse("lab1", serum, "")
    assert no_reason.value.code == "required"
    refused = desk.refuse("lab1", serum, "haemolysed", note="  lipaemic too ")

    ops = _ops(store, "lab.sample_collect")
    assert [(o.record_kind, o.record_ref, o.operator_id, o.state) for o in ops] == [
        ("sample_event", edta, "lab1", "pending"), ("sample_event", serum, "lab1", "pending")]
    assert [orjson.loads(o.payload) for o in ops] == [
        {"sample_id": edta, "status": "collected", "collected_at": got.collected_at},
        {"sample_id": serum, "status": "rejected", "collected_at": refused.collected_at, "reason": "haemolysed",
         "note": "lipaemic too"}]
    order_op = lab.order.op_id
    assert [orjson.loads(o.depends_on) for o in ops] == [[order_op], [order_op]]  # the order is not synced yet
    for o in ops:
        outbox.as_envelope_model(o)
    with store.read() as s:
        rows = s.execute(text("SELECT op_id, sample_id, order_ref, status, reason, source FROM sample_event "
                              "ORDER BY id")).all()
    assert [tuple(r) for r in rows] == [
        (ops[0].op_id, edta, lab.order.local_ref, "collected", None, "here"),
        (ops[1].op_id, serum, lab.order.local_ref, "rejected", "haemolysed", "here")]
    # the refused tube is still to draw, the collected one is not; its label prints again for the new draw
    assert [(t.sample_id, t.state) for t in desk.to_collect()] == [(serum, "rejected")]
    label = desk.label(desk.tube(serum))
    assert label.kind == "labels" and label.ref == serum
    # a new draw of the refused tube is collected (a later event)
    desk.collect("lab1", serum)
    assert desk.to_collect() == []
    with pytest.raises(DomainError, match="no tube C07-S999999 in this counter's or the LAN's lab orders"):
        desk.collect("lab1", "C07-S999999")


def test_another_counters_tube_from_the_hub_depends_on_that_counters_order(
        store: Store, with_master_data: Callable[..., None], tmp_path) -> None:
    """C01 registered, ordered and was paid; C02's desk sees the patient as registered and the tube."""
    from opd_fallback.store import open_store

    with_master_data(store)
    c01_store = open_store(tmp_path / "c01.db")
    with_master_data(c01_store)
    c01 = CounterService(c01_store, "C01")
    reg = c01.register_new("op1", {**PATIENT, "age_years": None, "age_months": 7}, department="MED",
                           payment=PaymentInput(mode="cash"))
    lab = c01.lab_request("op1", reg.patient.local_ref, reg.visit.local_ref, ["CBC"], payment=PaymentInput(mode="upi",
                          mode_ref="UTR123456789"))
    with c01_store.read() as s:
        page = [{"hub_seq": i + 1, "op": outbox.envelope(o)} for i, o in enumerate(s.exec(select(Op).order_by(Op.seq)))]
    c01_store.close()
    with store.write() as s:
        shared_records.store_page(s, "C07", page, [])
    desk = CollectionDesk(store, "C07")
    sid = lab.order.extra["sample_id"]
    tube = desk.tube(sid)
    assert (tube.own_order, tube.order_device, tube.paid, tube.patient.name_local, tube.patient.age) == (
        False, "C01", True, "कमला देवी", (None, 7, None))
    desk.collect("lab1", sid)
    (op,) = _ops(store, "lab.sample_collect")
    assert orjson.loads(op.depends_on) == [lab.order.op_id]

    # the event goes to the hub; a third counter pulling it sees the tube collected
    other = tmp_path / "c03.db"
    c03 = open_store(other)
    try:
        with c03.write() as s:
            shared_records.store_page(s, "C03", [*page, {"hub_seq": 99, "op": outbox.envelope(op)}], [])
        seen = CollectionDesk(c03, "C03").tube(sid)
        assert (seen.state, seen.last and seen.last.operator_id, seen.last and seen.last.device_id) == (
            "collected", "lab1", "C07")
    finally:
        c03.close()

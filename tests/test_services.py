"""The services: each record with its op in one transaction, dependencies,
and the numbers printed for people."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlmodel import select

from opd_fallback.application.services import CounterService, ModeTotal, PaymentInput
from opd_fallback.domain.clock import IST
from opd_fallback.domain.errors import DomainError
from opd_fallback.store import Store, outbox, reserved
from opd_fallback.store.operators import add_operator
from opd_fallback.store.tables import Op

PATIENT = {"name": "Ram Kumar", "name_local": "राम कुमार", "sex": "M", "age_years": 40, "mobile": "09876543210"}


def _ops(store: Store) -> list[Op]:
    with store.read() as s:
        return list(s.exec(select(Op).order_by(Op.seq)))


def test_register_new_writes_three_records_and_ops(store: Store, svc: CounterService,
                                                    with_master_data: Callable[..., None]) -> None:
    with_master_data(store)
    reg = svc.register_new("op1", PATIENT, department="med", unit="med-u1", payment=PaymentInput(mode="cash"))
    assert reg.payment is not None
    assert re.fullmatch(r"C07-\d{6}-000001", reg.patient.local_ref)
    assert reg.payment.extra["receipt_no"] == "C07-R000003"
    assert reg.payment.extra["amount_paise"] == 1000  # the OPD-NEW fee from master data
    assert reg.visit.extra["token_no"] == 1
    ops = _ops(store)
    assert [o.kind for o in ops] == ["patient.register", "visit.open", "payment.record"]
    assert [o.seq for o in ops] == [1, 2, 3]
    assert {o.state for o in ops} == {"pending"}
    deps = [orjson.loads(o.depends_on) for o in ops]
    assert deps[0] == [] and deps[1] == [ops[0].op_id]
    assert set(deps[2]) == {ops[0].op_id, ops[1].op_id}  # payment waits for its visit (and patient)
    payload = orjson.loads(ops[0].payload)
    assert payload["mobile"] == "9876543210" and payload["local_ref"] == reg.patient.local_ref
    for o in ops:
        outbox.as_envelope_model(o)  # a valid contract envelope


def test_revisit_has_no_registration_op_and_depends_only_on_unsynced(store: Store, svc: CounterService) -> None:
    r = svc.revisit("op1", "KGMU000123", department="MED", payment=PaymentInput(mode="cash", amount_paise=0))
    ops = _ops(store)
    assert [o.kind for o in ops] == ["visit.open", "payment.record"]
    assert orjson.loads(ops[0].payload)["patient"]["central_id"] == "KGMU000123"
    assert orjson.loads(ops[0].depends_on) == []
    assert orjson.loads(ops[1].depends_on) == [ops[0].op_id]
    assert r.visit.extra["visit_type"] == "revisit"


def test_visit_of_a_synced_registration_needs_no_dependency(store: Store, svc: CounterService) -> None:
    reg = svc.register_new("op1", PATIENT, department="MED")
    with store.write() as s:
        s.execute(text("UPDATE op SET state='synced' WHERE op_id=:i"), {"i": reg.patient.op_id})
    v = svc.revisit("op1", reg.patient.local_ref, department="SURG")
    with store.read() as s:
        op = outbox.get(s, v.visit.op_id)
    assert op is not None and orjson.loads(op.depends_on) == []


def test_failed_flow_saves_nothing(store: Store, svc: CounterService,
                                   with_master_data: Callable[..., None]) -> None:
    with_master_data(store)
    with pytest.raises(DomainError) as exc:
        svc.register_new("op1", PATIENT, department="XYZ", payment=PaymentInput(mode="cash"))
    assert exc.value.problems[0].field == "department"
    with pytest.raises(DomainError) as exc:
        svc.register_new("op1", PATIENT, department="MED", payment=PaymentInput(mode="upi"))
    assert "UTR" in str(exc.value)
    assert _ops(store) == []
    with store.read() as s:
        assert s.execute(text("SELECT count(*) FROM patient")).scalar() == 0
        assert s.execute(text("SELECT count(*) FROM counter")).scalar() == 0


def test_bad_fields_named(svc: CounterService) -> None:
    with pytest.raises(DomainError) as exc:
        svc.register_new("op1", {**PATIENT, "mobile": "12345", "sex": "Z"}, department="MED")
    assert {p.field for p in exc.value.problems} == {"mobile", "sex"}


def test_numbers_never_reused_after_rollback(store: Store, svc: CounterService) -> None:
    a = svc.register_new("op1", PATIENT, department="MED")
    with pytest.raises(RuntimeError):
        with svc.transaction("op1") as tx:
            tx.register_patient(PATIENT)
            raise RuntimeError("power cut")
    b = svc.register_new("op1", PATIENT, department="MED")
    assert b.patient.seq == a.visit.seq + 1
    refs = [o.record_ref for o in _ops(store)]
    assert len(refs) == len(set(refs))


def test_tokens_per_department_per_day(svc: CounterService) -> None:
    t = [svc.register_new("op1", PATIENT, department=d).visit.extra["token_no"] for d in ["MED", "MED", "SURG"]]
    assert t == [1, 2, 1]


def test_reserved_central_ids_are_used_first(store: Store, svc: CounterService) -> None:
    with store.write() as s:
        reserved.add_block(s, "uhid", ["KGMU900001"])
        reserved.add_block(s, "receipt", ["R-55"])
    reg = svc.register_new("op1", PATIENT, department="MED", payment=PaymentInput(mode="cash", amount_paise=500))
    assert reg.patient.extra["uhid"] == "KGMU900001"
    assert reg.payment is not None and reg.payment.extra["receipt_no"] == "R-55"
    reg2 = svc.register_new("op1", PATIENT, department="MED", payment=PaymentInput(mode="cash", amount_paise=500))
    assert reg2.patient.extra["uhid"] is None
    assert reg2.payment is not None and reg2.payment.extra["receipt_no"] == f"C07-R{reg2.payment.seq:06d}"


def test_exempt_category_pays_nothing(store: Store, svc: CounterService,
                                      with_master_data: Callable[..., None]) -> None:
    with_master_data(store)
    reg = svc.register_new("op1", {**PATIENT, "category": "bpl"}, department="MED",
                           payment=PaymentInput(mode="waived"))
    assert reg.payment is not None and reg.payment.extra["amount_paise"] == 0


def test_lab_request_amount_must_match_price_list(store: Store, svc: CounterService,
                                                  with_master_data: Callable[..., None]) -> None:
    with_master_data(store)
    reg = svc.register_new("op1", PATIENT, department="MED")
    lab = svc.lab_request("op1", reg.patient.local_ref, reg.visit.local_ref, ["cbc", "LFT"],
                          payment=PaymentInput(mode="cash"))
    assert lab.payment is not None and lab.payment.extra["amount_paise"] == 55000
    # CBC (EDTA) and LFT (serum) go in two tubes, each with its own id from the op's seq
    assert lab.order.extra["sample_id"] == f"C07-S{lab.order.seq:06d}-1"
    assert [(t["sample_id"], t["sample_type"], t["tests"]) for t in lab.order.extra["samples"]] == [
        (f"C07-S{lab.order.seq:06d}-1", "EDTA", ["CBC"]), (f"C07-S{lab.order.seq:06d}-2", "Serum", ["LFT"])]
    with store.read() as s:
        op = outbox.get(s, lab.payment.op_id)
    assert op is not None and lab.order.op_id in orjson.loads(op.depends_on)
    with pytest.raises(DomainError, match="tests' total"):
        svc.lab_request("op1", reg.patient.local_ref, reg.visit.local_ref, ["CBC"],
                        payment=PaymentInput(mode="cash", amount_paise=100))
    with pytest.raises(DomainError, match="unknown test"):
        svc.lab_request("op1", reg.patient.local_ref, reg.visit.local_ref, ["XRAY"])


def test_void_needs_a_supervisor_and_happens_once(store: Store, svc: CounterService) -> None:
    add_operator(store, "sup1", "Meena", "999999", role="supervisor")
    add_operator(store, "op1", "Asha", "1234")
    reg = svc.register_new("op1", PATIENT, department="MED", payment=PaymentInput(mode="cash", amount_paise=1000))
    assert reg.payment is not None
    receipt = reg.payment.extra["receipt_no"]
    with pytest.raises(DomainError, match="supervisor"):
        svc.void("op1", receipt, "typo", approved_by="op1")
    v = svc.void("op1", receipt, "wrong patient", approved_by="sup1")
    assert v.extra["amount_paise"] == 1000
    with store.read() as s:
        vop = outbox.get(s, v.op_id)
    assert vop is not None and vop.kind == "payment.void"
    assert orjson.loads(vop.payload)["payment"]["local_ref"] == reg.payment.local_ref
    assert orjson.loads(vop.depends_on) == [reg.payment.op_id]  # the unsynced payment goes first
    with pytest.raises(DomainError, match="already voided"):
        svc.void("op1", receipt, "again", approved_by="sup1")
    with pytest.raises(DomainError, match="no payment"):
        svc.void("op1", "C07-R999999", "x", approved_by="sup1")
    summary = svc.cash_summary("op1")
    assert summary.by_mode["cash"].total_paise == 1000 and summary.collected_paise == 0
    with store.read() as s:
        actions = [r[0] for r in s.execute(text("SELECT action FROM audit_log"))]
    assert "payment.void" in actions


def test_update_patient_changes_local_record(store: Store, svc: CounterService) -> None:
    reg = svc.register_new("op1", PATIENT, department="MED")
    u = svc.update_patient("op1", reg.patient.local_ref, {"mobile": "+91 91234 56789"})
    assert u.extra["changes"] == {"mobile": "9123456789"}
    with store.read() as s:
        assert s.execute(text("SELECT mobile FROM patient")).scalar() == "9123456789"
        op = outbox.get(s, u.op_id)
    assert op is not None and reg.patient.op_id in orjson.loads(op.depends_on)


def test_update_patient_registered_under_an_earlier_device_id(store: Store, svc: CounterService) -> None:
    from opd_fallback.store.readiness import move_to_new_device

    reg = svc.register_new("op1", PATIENT, department="MED")
    move_to_new_device(store, "C07", "C08", actor="sup1")
    CounterService(store, "C08").update_patient("op1", reg.patient.local_ref, {"mobile": "9123456789"})
    with store.read() as s:
        assert s.execute(text("SELECT mobile FROM patient")).scalar() == "9123456789"


def test_recorded_at_and_source_for_back_entry(store: Store, svc: CounterService) -> None:
    when = datetime(2026, 11, 20, 9, 15, tzinfo=IST)
    with svc.transaction("op1", recorded_at=when, source="backentry") as tx:
        p = tx.register_patient(PATIENT)
    assert p.local_ref.startswith("C07-261120-")
    op = _ops(store)[0]
    assert op.recorded_at == "2026-11-20T09:15:00+05:30" and op.source == "backentry"


def test_search_finds_local_registrations(svc: CounterService) -> None:
    reg = svc.register_new("op1", PATIENT, department="MED")
    assert [h.local_ref for h in svc.search_patients("ram")] == [reg.patient.local_ref]
    assert [h.local_ref for h in svc.search_patients("98765 43210")] == [reg.patient.local_ref]
    assert [h.local_ref for h in svc.search_patients(reg.patient.local_ref.lower())] == [reg.patient.local_ref]


# --- property: odd input through the services fails only with DomainError, saving nothing ---------

ODD_VALUE = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=15) | st.lists(
    st.integers(), max_size=2)
PATIENT_KEYS = st.sampled_from(["name", "name_local", "sex", "age_years", "age_months", "birth_date", "mobile",
                                "abha_number", "pin", "category", "guardian_relation", "guardian_name", "uhid",
                                "local_ref", "colour"])


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.dictionaries(PATIENT_KEYS, ODD_VALUE, max_size=6), st.text(max_size=8), ODD_VALUE)
def test_odd_registrations_raise_only_domain_errors(svc: CounterService, fields: dict, dept: str,
                                                    amount: object) -> None:
    before = len(_ops(svc.store))
    pay = PaymentInput(mode="cash", amount_paise=amount if isinstance(amount, int) else None)
    try:
        svc.register_new("op1", {**PATIENT, **fields}, department=dept, payment=pay)
    except DomainError as exc:
        assert exc.problems and all(p.message for p in exc.problems)
        assert len(_ops(svc.store)) == before
        return
    assert len(_ops(svc.store)) == before + 3


def test_cash_summary_leaves_out_what_review_cancelled(store: Store, svc: CounterService) -> None:
    from opd_fallback.application.review import ReviewService

    add_operator(store, "sup1", "Meena", "999999", role="supervisor")
    kept = svc.register_new("op1", PATIENT, department="MED", payment=PaymentInput(mode="cash", amount_paise=1000))
    gone = svc.register_new("op1", PATIENT, department="MED", payment=PaymentInput(mode="upi", amount_paise=500,
                                                                                    mode_ref="UTR77"))
    assert kept.payment is not None and gone.payment is not None
    with store.write() as s:  # as if central had rejected the UPI payment
        s.execute(text("UPDATE op SET state='rejected', last_status='rejected', "
                       "last_error='{\"code\":\"validation_failed\",\"message\":\"x\"}' WHERE op_id=:i"),
                  {"i": gone.payment.op_id})
    rs = ReviewService(store)
    sup = rs.authenticate("sup1", "999999")
    rs.cancel(sup, gone.payment.op_id, "UTR never credited", money="refunded in cash at the counter")
    summary = svc.cash_summary("op1")
    assert summary.by_mode["cash"] == ModeTotal(1, 1000)
    assert summary.by_mode["upi"] == ModeTotal(0, 0)
    assert summary.cancelled == ModeTotal(1, 500)
    assert summary.collected_paise == 1000


@pytest.mark.parametrize(("key", "wire"), [
    # another counter's offline number, and this counter's own one it no longer
    # holds (restored from an older backup): central knows both by local_ref
    ("c09-261126-000001", {"local_ref": "C09-261126-000001"}),
    ("C07-261126-000099", {"local_ref": "C07-261126-000099"}),
    # a central uhid, with or without hyphens, that the index has not seen yet
    ("KGMU000777", {"central_id": "KGMU000777"}),
    ("KGMU-0042", {"central_id": "KGMU-0042"}),
])
def test_unknown_patient_keys_by_shape(store: Store, svc: CounterService, key: str,
                                       wire: dict[str, str]) -> None:
    v = svc.revisit("op1", key, department="MED")
    with store.read() as s:
        op = outbox.get(s, v.visit.op_id)
    assert op is not None
    assert {k: x for k, x in orjson.loads(op.payload)["patient"].items() if x is not None} == wire
    assert v.info.ref.wire() == wire


def test_unknown_visit_keys_by_shape(store: Store, svc: CounterService) -> None:
    local = svc.lab_request("op1", "KGMU000777", "c09-261126-000002", ["CBC"])
    central = svc.lab_request("op1", "KGMU000777", "V-123", ["CBC"])
    with store.read() as s:
        ops = [outbox.get(s, r.order.op_id) for r in (local, central)]
    assert [{k: x for k, x in orjson.loads(o.payload)["visit"].items() if x is not None}
            for o in ops if o] == [
        {"local_ref": "C09-261126-000002"}, {"central_id": "V-123"}]


def test_lab_order_and_payment_refuse_another_patients_visit(store: Store, svc: CounterService) -> None:
    ram = svc.register_new("op1", PATIENT, department="MED")
    sita = svc.register_new("op1", {"name": "Sita Devi", "sex": "F", "age_years": 30}, department="MED")
    with pytest.raises(DomainError, match="not this patient") as err:
        svc.lab_request("op1", sita.patient.local_ref, ram.visit.local_ref, ["CBC"])
    assert err.value.problems[0].field == "visit"
    with pytest.raises(DomainError, match="not this patient"):
        with svc.transaction("op1") as tx:
            tx.record_payment(sita.patient.local_ref, PaymentInput(mode="cash", amount_paise=100),
                              visit=ram.visit.local_ref, due_items=[{"code": "OPD-NEW", "qty": 1, "amount_paise": 100}])
    with store.read() as s:  # nothing of the refused requests was written
        assert s.execute(text("SELECT count(*) FROM op")).scalar() == 4
    ok = svc.lab_request("op1", sita.patient.local_ref, sita.visit.local_ref, ["CBC"])
    assert ok.order.local_ref


def test_without_a_price_list_a_fee_must_be_entered(store: Store, svc: CounterService) -> None:
    with pytest.raises(DomainError, match="no price list") as err:
        svc.register_new("op1", PATIENT, department="MED", payment=PaymentInput(mode="cash"))
    assert err.value.problems[0].field == "amount_paise"
    with store.read() as s:
        assert s.execute(text("SELECT count(*) FROM op")).scalar() == 0  # nothing half-written
    paid = svc.register_new("op1", PATIENT, department="MED", payment=PaymentInput(mode="cash", amount_paise=1000))
    waived = svc.register_new("op1", {**PATIENT, "category": "bpl"}, department="MED",
                              payment=PaymentInput(mode="waived"))
    assert paid.payment is not None and paid.payment.extra["amount_paise"] == 1000
    assert waived.payment is not None and waived.payment.extra["amount_paise"] == 0


def test_a_waiver_the_category_does_not_grant_needs_a_supervisor_and_a_reason(store: Store, svc: CounterService) -> None:
    """A general patient's fee waived: refused without a supervisor and a reason; with them,
    nothing is collected and the waiver (list price, reason, approver) is in the audit log."""
    import json

    from opd_fallback.store.audit import history

    add_operator(store, "sup1", "Meena", "999999", role="supervisor")
    add_operator(store, "op2", "Asha", "1234")
    for approver in (None, "op2"):  # nobody, or an operator who is not a supervisor
        with pytest.raises(DomainError) as err:
            svc.register_new("op1", PATIENT, department="MED",
                             payment=PaymentInput(mode="waived", waiver_reason="poor", approved_by=approver))
        assert "supervisor" in [p.field for p in err.value.problems]
    with pytest.raises(DomainError) as err:
        svc.register_new("op1", PATIENT, department="MED", payment=PaymentInput(mode="waived", approved_by="sup1"))
    assert [p.field for p in err.value.problems] == ["waiver_reason"]
    with store.read() as s:
        assert s.execute(text("SELECT count(*) FROM op")).scalar() == 0
    reg = svc.register_new("op1", PATIENT, department="MED", payment=PaymentInput(
        mode="waived", amount_paise=1000, waiver_reason=" destitute ", approved_by="sup1"))
    assert reg.payment is not None
    assert (reg.payment.extra["amount_paise"], reg.payment.extra["mode"]) == (0, "waived")
    with store.read() as s:
        (entry,) = history(s, action_prefix="payment.waive")
        summary = svc.cash_summary("op1")
    assert json.loads(entry.detail)["reason"] == "destitute" and entry.subject == reg.payment.local_ref
    assert [(w.reason, w.who, w.count, w.total_paise) for w in summary.approvals.waivers] == \
        [("destitute", "sup1", 1, 1000)]
    assert summary.collected_paise == 0

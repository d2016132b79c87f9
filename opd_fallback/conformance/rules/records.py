"""Rules of the records: deferred ops, conflicts, updates, visits, lab orders and payments."""

from __future__ import annotations

import copy
import secrets

from opd_fallback.conformance.context import Ctx
from opd_fallback.conformance.http import Exchange
from opd_fallback.conformance.jsontypes import UncheckedJSON, UncheckedObject
from opd_fallback.conformance.rules.base import _error, rule
from opd_fallback.conformance.rules.protocol import _visit_with


# ---- deferred --------------------------------------------------------------------------------
@rule("deferred.dependency", "an op whose dependency is not applied is deferred / dependency_missing, "
      "error.waiting_for {op_id} (1.2), and is not remembered")
def _dependency(c: Ctx) -> None:
    reg, _ = c.patient()
    missing = f"CT{c.stamp}MISSING{secrets.token_hex(4).upper()}"
    op = _visit_with(c, {"local_ref": reg["payload"]["local_ref"]})
    op["depends_on"] = [missing]
    res, ex = c.one(c.a, op)
    c.status(res, ex, "deferred", "dependency_missing")
    c.expect(_error(res).get("waiting_for") == {"op_id": missing}, f"error.waiting_for {{op_id: {missing}}}", ex)
    got = c.get(c.a, f"/ops/{op['op_id']}")
    c.expect(got.status == 404, "HTTP 404: a deferred op is not remembered", got)


@rule("deferred.cross_device", "an op referring to another device's local_ref not synced yet is deferred / "
      "reference_pending with error.waiting_for {local_ref} (1.2); once that device syncs it, the op applies")
def _cross_device(c: Ctx) -> None:
    other = c.register_payload(c.b)
    lref = other["local_ref"]
    op = _visit_with(c, {"local_ref": lref})
    res, ex = c.one(c.a, op)
    c.status(res, ex, "deferred", "reference_pending")
    c.expect(_error(res).get("waiting_for") == {"local_ref": lref}, f"error.waiting_for {{local_ref: {lref}}}", ex)
    reg = c.op(c.b, "patient.register", other)
    r2, ex2 = c.one(c.b, reg)
    c.status(r2, ex2, "applied")
    again, ex3 = c.one(c.a, op)
    c.status(again, ex3, "applied")


@rule("deferred.cross_device_dependency", "an op may depend on another device's op")
def _cross_dependency(c: Ctx) -> None:
    reg, _ = c.patient()
    op = c.op(c.b, "visit.open", {**_visit_with(c, {"local_ref": reg["payload"]["local_ref"]})["payload"],
                                  "local_ref": c.ref(c.b)}, [reg["op_id"]])
    res, ex = c.one(c.b, op)
    c.status(res, ex, "applied")


# ---- conflicts -----------------------------------------------------------------------------
@rule("conflict.possible_duplicate", "a registration with the ABHA number of a known patient is conflict / "
      "possible_duplicate listing the candidate; resubmitted with resolution link it is applied, linked")
def _possible_duplicate(c: Ctx) -> None:
    abha = str(secrets.randbelow(9 * 10**13) + 10**13)
    _, uhid = c.registered(c.a, abha_number=abha)
    second = c.op(c.a, "patient.register", c.register_payload(c.a, abha_number=abha))
    res, ex = c.one(c.a, second)
    c.status(res, ex, "conflict", "possible_duplicate")
    cands = _error(res).get("candidates") or []
    c.expect(any(isinstance(x, dict) and x.get("uhid") == uhid for x in cands), f"candidates listing {uhid}", ex)
    keys = ("uhid", "name", "sex", "age_years", "guardian_name", "mobile", "district")
    c.expect(all(isinstance(x, dict) and all(k in x for k in keys) for x in cands),
             "each candidate with " + ", ".join(keys), ex)
    got = c.get(c.a, f"/ops/{second['op_id']}")
    c.expect(got.status == 404, "HTTP 404: a conflict is not remembered", got)
    linked = {**second, "resolution": {"action": "link", "uhid": uhid}}
    r2, ex2 = c.one(c.a, linked)
    c.status(r2, ex2, "applied")
    c.expect(r2.get("result") == {"uhid": uhid, "linked": True}, f"result {{uhid: {uhid}, linked: true}}", ex2)
    ref = c.get(c.a, f"/refs/{second['payload']['local_ref']}")
    c.expect(ref.status == 200 and isinstance(ref.body, dict) and ref.body.get("central_id") == uhid,
             "the linked local_ref maps to the patient", ref)


@rule("conflict.stale_update", "an update with a base_version the patient has moved past is conflict / "
      "stale_update with error.current; resubmitted with resolution apply it is applied")
def _stale(c: Ctx) -> None:
    reg, _ = c.registered(c.a)
    pref = {"local_ref": reg["payload"]["local_ref"]}
    first = c.op(c.a, "patient.update", {"patient": pref, "base_version": 1, "changes": {"district": "Test District A"}})
    r1, ex1 = c.one(c.a, first)
    c.status(r1, ex1, "applied")
    v = (r1.get("result") or {}).get("version")
    c.expect(type(v) is int and v >= 2, "result.version above 1", ex1)
    assert isinstance(v, int)
    stale = c.op(c.a, "patient.update", {"patient": pref, "base_version": 1, "changes": {"district": "Test District B"}})
    r2, ex2 = c.one(c.a, stale)
    c.status(r2, ex2, "conflict", "stale_update")
    current = _error(r2).get("current")
    c.expect(isinstance(current, dict) and current.get("version") == v, f"error.current with version {v}", ex2)
    r3, ex3 = c.one(c.a, {**stale, "resolution": {"action": "apply", "base_version": v}})
    c.status(r3, ex3, "applied")
    c.expect((r3.get("result") or {}).get("version") == v + 1, f"result.version {v + 1}", ex3)


@rule("update.null_clears", "in patient.update's changes a null clears the field, and a resend without "
      "that key is another payload: idempotency_mismatch (1.2)")
def _null_clears(c: Ctx) -> None:
    reg, uhid = c.registered(c.a)
    pref = {"local_ref": reg["payload"]["local_ref"]}
    op = c.op(c.a, "patient.update", {"patient": pref, "base_version": 1,
                                       "changes": {"district": None, "state": "Test State B"}})
    res, ex = c.one(c.a, op)
    c.status(res, ex, "applied")
    other = copy.deepcopy(op)
    del other["payload"]["changes"]["district"]
    r2, ex2 = c.one(c.a, other)
    c.status(r2, ex2, "rejected", "idempotency_mismatch")
    c.notes["cleared"] = uhid


# ---- the other kinds -------------------------------------------------------------------------
@rule("visit.applied", "visit.open is applied with result {visit_id}")
def _visit(c: Ctx) -> None:
    c.visit(own=True)


@rule("visit.unknown_department", "a department not in the master data is rejected / unknown_department")
def _unknown_dept(c: Ctx) -> None:
    reg, _ = c.patient()
    op = _visit_with(c, {"local_ref": reg["payload"]["local_ref"]})
    op["payload"]["department"] = "CTNOSUCHDEPT"
    op["payload"].pop("unit", None)
    res, ex = c.one(c.a, op)
    c.status(res, ex, "rejected", "unknown_department")


@rule("lab.applied", "lab.order with one tube per test is applied with result {order_id, accession}")
def _lab(c: Ctx) -> None:
    c.lab_order(own=True)


@rule("lab.unknown_test", "a test not in the master data is rejected / unknown_test")
def _unknown_test(c: Ctx) -> None:
    op = c.op(c.a, "lab.order", c.lab_payload(codes=["CTNOSUCHTEST"]))
    res, ex = c.one(c.a, op)
    c.status(res, ex, "rejected", "unknown_test")


@rule("lab.sample_id_reused", "a sample id another op's tube has is rejected / sample_id_reused (1.2)")
def _reused(c: Ctx) -> None:
    _, _, tubes = c.lab_order()
    code = tubes[0]["tests"][0]
    op = c.op(c.a, "lab.order", c.lab_payload([{**tubes[0], "tests": [code]}], [code]))
    res, ex = c.one(c.a, op)
    c.status(res, ex, "rejected", "sample_id_reused")


@rule("lab.every_test_in_one_tube", "a lab.order whose samples leave a test without a tube is "
      "rejected / validation_failed (1.2)")
def _tube_missing(c: Ctx) -> None:
    codes = [str(t["code"]) for t in c.tests(2)]
    op = c.op(c.a, "lab.order", c.lab_payload(c.tubes(codes[:1]), codes))
    res, ex = c.one(c.a, op)
    c.status(res, ex, "rejected", "validation_failed")


@rule("payment.applied", "payment.record at the list price is applied with {receipt_id, warnings: []}")
def _payment(c: Ctx) -> None:
    op, _ = c.payment(own=True)
    got = c.get(c.a, f"/ops/{op['op_id']}")
    body = c.answered(got)
    c.expect(isinstance(body, dict) and (body.get("result") or {}).get("warnings") == [], "result.warnings []", got)


def _pay(c: Ctx, items: list[tuple[str, int]], mode: str = "cash",
         **extra: UncheckedJSON) -> tuple[UncheckedObject, list[UncheckedJSON], Exchange]:
    reg, _ = c.patient()
    op = c.op(c.a, "payment.record", c.payment_payload(c.a, {"local_ref": reg["payload"]["local_ref"]}, items,
                                                       mode, **extra))
    res, ex = c.one(c.a, op)
    c.status(res, ex, "applied")
    warnings = (res.get("result") or {}).get("warnings")
    c.expect(isinstance(warnings, list), "result.warnings, a list", ex)
    assert isinstance(warnings, list)  # checked just above
    return op, warnings, ex


def _codes(warnings: list[UncheckedJSON]) -> list[str]:
    return [str(w.get("code")) for w in warnings if isinstance(w, dict)]


@rule("payment.amount_mismatch", "a payment at another price is applied with the warning amount_mismatch "
      "and expected_paise")
def _amount_mismatch(c: Ctx) -> None:
    fee = c.fee()
    _, warnings, ex = _pay(c, [(str(fee["code"]), int(fee["price_paise"]) + 1)])
    c.expect(any(isinstance(w, dict) and w.get("code") == "amount_mismatch"
                 and w.get("expected_paise") == fee["price_paise"] for w in warnings),
             f"warning amount_mismatch with expected_paise {fee['price_paise']}", ex)


@rule("payment.unknown_item", "a payment for an item code central does not know is applied with the warning "
      "unknown_item")
def _unknown_item(c: Ctx) -> None:
    _, warnings, ex = _pay(c, [("CTNOSUCHFEE", 100)])
    c.expect(any(isinstance(w, dict) and w.get("code") == "unknown_item" and w.get("item") == "CTNOSUCHFEE"
                 for w in warnings), "warning unknown_item for CTNOSUCHFEE", ex)


@rule("payment.waiver_unapproved", "a waived payment of a fee the category does not exempt is applied; without "
      "a waiver with the warning waiver_unapproved, with a waiver without it (1.2)")
def _waiver(c: Ctx) -> None:
    fee = c.fee()
    _, warnings, ex = _pay(c, [(str(fee["code"]), 0)], "waived")
    c.expect("waiver_unapproved" in _codes(warnings), "warning waiver_unapproved", ex)
    _, warnings, ex = _pay(c, [(str(fee["code"]), 0)], "waived",
                           waiver={"reason": "conformance test waiver", "approved_by": "conformance-test"})
    c.expect("waiver_unapproved" not in _codes(warnings), "no waiver_unapproved when a waiver is given", ex)


@rule("payment.mode_ref", "a upi payment without mode_ref is rejected / validation_failed")
def _mode_ref(c: Ctx) -> None:
    reg, _ = c.patient()
    fee = c.fee()
    op = c.op(c.a, "payment.record", c.payment_payload(c.a, {"local_ref": reg["payload"]["local_ref"]},
                                                       [(str(fee["code"]), int(fee["price_paise"]))], "upi"))
    res, ex = c.one(c.a, op)
    c.status(res, ex, "rejected", "validation_failed")


@rule("payment.void", "payment.void is applied with {receipt_id, voided: true}; voiding it again or a receipt "
      "that does not exist is rejected / void_target_missing")
def _void(c: Ctx) -> None:
    pay, receipt = c.payment()
    void = c.op(c.a, "payment.void", {"payment": {"local_ref": pay["payload"]["local_ref"]},
                                       "reason": "conformance test void"})
    res, ex = c.one(c.a, void)
    c.status(res, ex, "applied")
    c.expect(res.get("result") == {"receipt_id": receipt, "voided": True}, f"result {{receipt_id: {receipt}, "
             "voided: true}", ex)
    again = c.op(c.a, "payment.void", {"payment": {"central_id": receipt}, "reason": "conformance test void"})
    r2, ex2 = c.one(c.a, again)
    c.status(r2, ex2, "rejected", "void_target_missing")
    none = c.op(c.a, "payment.void", {"payment": {"central_id": f"CT-NO-SUCH-{c.stamp}"},
                                       "reason": "conformance test void"})
    r3, ex3 = c.one(c.a, none)
    c.status(r3, ex3, "rejected", "void_target_missing")



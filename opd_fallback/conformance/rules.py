"""The rules of the central sync contract (1.2), each checked from outside.

A rule is a function of the run's :class:`~opd_fallback.conformance.context.Ctx`
that returns when the server kept it and raises ``Failed`` (with what was sent
and what came back) or ``Skipped`` (with why). Rules run in the order written
here; a rule that needs a record another made (the test patient, its visit)
gets it from the context, made once, and is skipped if it could not be made.
Each rule's text is the contract's sentence it checks, in short.
"""

from __future__ import annotations

import copy
import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from opd_fallback.conformance.context import IST, Ctx, Skipped

MAX_INT = 2**53 - 1


@dataclass(frozen=True)
class Rule:
    id: str
    text: str
    check: Callable[[Ctx], None]


RULES: list[Rule] = []


def rule(rule_id: str, text: str) -> Callable[[Callable[[Ctx], None]], Callable[[Ctx], None]]:
    def add(fn: Callable[[Ctx], None]) -> Callable[[Ctx], None]:
        RULES.append(Rule(rule_id, text, fn))
        return fn
    return add


def _fields(res: dict[str, Any]) -> list[str]:
    err = res.get("error") if isinstance(res.get("error"), dict) else {}
    return [str(f.get("field")) for f in (err or {}).get("fields") or [] if isinstance(f, dict)]


def _error(res: dict[str, Any]) -> dict[str, Any]:
    err = res.get("error")
    return err if isinstance(err, dict) else {}


# ---- authentication and health ----------------------------------------------------
@rule("auth.no_token", "a request without a token gets 401")
def _no_token(c: Ctx) -> None:
    ex = c.anonymous.get("/health")
    c.expect(ex.status == 401, "HTTP 401", ex)


@rule("auth.bad_token", "a request with a token the server does not know gets 401")
def _bad_token(c: Ctx) -> None:
    ex = c.bad_token.get("/devices/me")
    c.expect(ex.status == 401, "HTTP 401", ex)


@rule("health", "GET /health is 200 {status: ok, server_time} with a Date header")
def _health(c: Ctx) -> None:
    ex = c.get(c.a, "/health")
    body = c.answered(ex)
    c.expect(isinstance(body, dict) and body.get("status") == "ok", "status ok", ex)
    c.expect("date" in ex.headers, "a Date header", ex)
    try:
        when = datetime.fromisoformat(str(body.get("server_time")))
    except ValueError:
        when = None
    c.expect(when is not None and when.tzinfo is not None, "server_time in RFC 3339 with an offset", ex)


@rule("devices.me", "GET /devices/me names the token's device with max_seq, ops_applied, "
      "last_recorded_at and (1.2) reserved_used for uhid, receipt and sample")
def _devices_me(c: Ctx) -> None:
    for d in (c.a, c.b):
        ex = c.get(d, "/devices/me")
        body = c.answered(ex)
        c.expect(isinstance(body, dict) and body.get("device_id") == d.device_id,
                 f"device_id {d.device_id} (is this the token of {d.device_id}?)", ex)
        c.expect(all(type(body.get(k)) is int for k in ("max_seq", "ops_applied")), "integer max_seq, ops_applied", ex)
        used = body.get("reserved_used")
        c.expect(isinstance(used, dict) and all(type(used.get(k)) is int for k in ("uhid", "receipt", "sample")),
                 "reserved_used {uhid, receipt, sample} as integers (1.2)", ex)


@rule("master_data", "GET /master-data has version, departments, tests and fees, an ETag, "
      "and 304 for a matching If-None-Match")
def _master_data(c: Ctx) -> None:
    ex = c.get(c.a, "/master-data")
    body = c.answered(ex)
    c.expect(isinstance(body, dict) and all(k in body for k in ("version", "departments", "tests", "fees")),
             "version, departments, tests, fees", ex)
    etag = ex.headers.get("etag")
    c.expect(bool(etag), "an ETag header", ex)
    again = c.get(c.a, "/master-data", headers={"If-None-Match": str(etag)})
    c.expect(again.status == 304, "HTTP 304 for If-None-Match with the ETag", again)


@rule("changes.pages", "GET /patients/changes pages with next_cursor until done")
def _changes_pages(c: Ctx) -> None:
    c.need("changes_cursor", own=True)


# ---- the envelope and the batch ---------------------------------------------------------
@rule("ops.applied", "patient.register is applied with result {uhid, linked: false}")
def _register(c: Ctx) -> None:
    reg, _ = c.need("patient", own=True)
    ex = c.get(c.a, f"/ops/{reg['op_id']}")
    res = c.answered(ex)
    c.expect(isinstance(res, dict) and (res.get("result") or {}).get("linked") is False, "result.linked false", ex)


@rule("idempotency.duplicate", "the same op sent again is duplicate with the original result")
def _duplicate(c: Ctx) -> None:
    reg, uhid = c.need("patient")
    res, ex = c.one(c.a, reg)
    c.status(res, ex, "duplicate")
    c.expect(res.get("result") == {"uhid": uhid, "linked": False}, f"the original result {{uhid: {uhid}, linked: false}}",
             ex)


@rule("idempotency.canonical", "a resend whose payload differs only in key order and null-valued keys "
      "is duplicate (canonical JSON, absent equals null)")
def _canonical(c: Ctx) -> None:
    reg, uhid = c.need("patient")
    resend = copy.deepcopy(reg)
    resend["payload"] = dict(reversed(list(reg["payload"].items())))
    resend["payload"]["name_local"] = None
    resend["payload"]["pin"] = None
    del resend["payload"]["mobile"]  # was null
    res, ex = c.one(c.a, resend)
    c.status(res, ex, "duplicate")
    c.expect((res.get("result") or {}).get("uhid") == uhid, "the original result", ex)


@rule("idempotency.mismatch", "the same op_id with another payload is rejected / idempotency_mismatch")
def _mismatch(c: Ctx) -> None:
    reg, _ = c.need("patient")
    other = copy.deepcopy(reg)
    other["payload"]["age_years"] = 41
    res, ex = c.one(c.a, other)
    c.status(res, ex, "rejected", "idempotency_mismatch")


@rule("ops.outcome", "GET /ops/{op_id} gives the remembered outcome of an applied op")
def _outcome(c: Ctx) -> None:
    reg, uhid = c.need("patient")
    ex = c.get(c.a, f"/ops/{reg['op_id']}")
    body = c.answered(ex)
    c.expect(isinstance(body, dict) and body.get("status") in ("applied", "duplicate")
             and (body.get("result") or {}).get("uhid") == uhid, "the applied outcome with the same result", ex)


@rule("ops.rejected_remembered", "a rejected op is a final outcome: remembered (GET /ops/{op_id}) and "
      "answered the same when sent again")
def _rejected_remembered(c: Ctx) -> None:
    op = c.op(c.a, "patient.register", c.register_payload(c.a, sex="X"))
    res, ex = c.one(c.a, op)
    c.status(res, ex, "rejected", "validation_failed")
    got = c.get(c.a, f"/ops/{op['op_id']}")
    body = c.answered(got)
    c.expect(isinstance(body, dict) and body.get("status") == "rejected"
             and _error(body).get("code") == "validation_failed", "the remembered rejection", got)
    again, ex2 = c.one(c.a, op)
    c.status(again, ex2, "rejected", "validation_failed")


@rule("ops.unknown_404", "GET /ops/{op_id} of an op never sent is 404")
def _unknown_op(c: Ctx) -> None:
    ex = c.get(c.a, f"/ops/CT{c.stamp}NEVERSENT{secrets.token_hex(4)}")
    c.expect(ex.status == 404, "HTTP 404", ex)


@rule("ops.device_mismatch", "an op whose device_id is not the token's device is rejected / device_mismatch")
def _device_mismatch(c: Ctx) -> None:
    op = c.op(c.b, "patient.register", c.register_payload(c.b))
    res, ex = c.one(c.a, op)  # the second device's op, with the first device's token
    c.status(res, ex, "rejected", "device_mismatch")


@rule("batch.envelope_422", "a body that is not {ops: [objects]} is 422")
def _envelope_422(c: Ctx) -> None:
    c.current = c.a
    bodies: tuple[dict[str, Any], ...] = ({"ops": "not a list"}, {"ops": [1, 2]}, {"nothing": []})
    for body in bodies:
        ex = c.a.api.post("/ops:batch", json=body)
        c.expect(ex.status == 422, "HTTP 422", ex)


@rule("batch.too_many_413", "more than 500 ops in a batch is 413")
def _too_many(c: Ctx) -> None:
    c.current = c.a
    ops = [{"op_id": f"CT{c.stamp}TOOMANY{i:04d}"} for i in range(501)]
    ex = c.a.api.post("/ops:batch", json={"ops": ops}, shown={"ops": ["... 501 op objects ..."]})
    c.expect(ex.status == 413, "HTTP 413", ex)


@rule("batch.malformed_alone", "a malformed op is rejected on its own and never blocks the others of its batch")
def _malformed_alone(c: Ctx) -> None:
    bad = c.op(c.a, "patient.register", {"local_ref": c.ref(c.a)})
    good = c.op(c.a, "patient.register", c.register_payload(c.a))
    results, ex = c.push(c.a, bad, good)
    c.expect([r.get("status") for r in results] == ["rejected", "applied"], "[rejected, applied]", ex)


@rule("batch.same_batch_dependency", "ops are handled in order; an op may depend on an earlier op of its batch")
def _same_batch(c: Ctx) -> None:
    reg = c.op(c.a, "patient.register", c.register_payload(c.a))
    dept, unit = c.department()
    payload: dict[str, Any] = {"local_ref": c.ref(c.a), "patient": {"local_ref": reg["payload"]["local_ref"]},
                               "department": dept, "visit_type": "new",
                               "visit_date": datetime.now(IST).date().isoformat(), "token_no": 2}
    if unit:
        payload["unit"] = unit
    vis = c.op(c.a, "visit.open", payload, [reg["op_id"]])
    results, ex = c.push(c.a, reg, vis)
    c.expect([r.get("status") for r in results] == ["applied", "applied"], "[applied, applied]", ex)


# ---- values (1.2) --------------------------------------------------------------------------
@rule("values.null_is_absent", "a field without a value may be sent as null: a registration with every "
      "optional field null is applied (1.2)")
def _nulls(c: Ctx) -> None:
    payload = c.register_payload(c.a, name_local=None, age_months=None, age_days=None, birth_date=None,
                                 abha_number=None, pin=None, district=None, state=None)
    op = c.op(c.a, "patient.register", payload, depends_on=None)
    op["depends_on"] = []
    res, ex = c.one(c.a, op)
    c.status(res, ex, "applied")


@rule("values.integer_bound", "an integer above 2^53 - 1 is rejected / validation_failed naming the field (1.2)")
def _integer_bound(c: Ctx) -> None:
    reg, _ = c.need("patient")
    op = c.op(c.a, "patient.update", {"patient": {"local_ref": reg["payload"]["local_ref"]},
                                       "base_version": MAX_INT + 1, "changes": {"state": "Test State"}})
    res, ex = c.one(c.a, op)
    c.status(res, ex, "rejected", "validation_failed")
    c.expect(any(f.split(".")[-1] == "base_version" for f in _fields(res)), "error.fields naming base_version", ex)


# ---- references ----------------------------------------------------------------------------
def _visit_with(c: Ctx, patient: Any) -> dict[str, Any]:
    dept, unit = c.department()
    payload: dict[str, Any] = {"local_ref": c.ref(c.a), "patient": patient, "department": dept, "visit_type": "revisit",
                               "visit_date": datetime.now(IST).date().isoformat(), "token_no": 3}
    if unit:
        payload["unit"] = unit
    return c.op(c.a, "visit.open", payload)


def _bad_reference(c: Ctx, patient: Any) -> None:
    res, ex = c.one(c.a, _visit_with(c, patient))
    c.status(res, ex, "rejected", "validation_failed")
    c.expect(any(f == "patient" or f.startswith("patient.") for f in _fields(res)),
             "error.fields naming patient", ex)


@rule("refs.two_keys", "a reference with both central_id and local_ref is rejected / validation_failed")
def _two_keys(c: Ctx) -> None:
    reg, uhid = c.need("patient")
    _bad_reference(c, {"central_id": uhid, "local_ref": reg["payload"]["local_ref"]})


@rule("refs.null_key", "a reference with a null-valued key is rejected / validation_failed")
def _null_key(c: Ctx) -> None:
    reg, _ = c.need("patient")
    _bad_reference(c, {"central_id": None, "local_ref": reg["payload"]["local_ref"]})


@rule("refs.no_key", "a reference with neither key is rejected / validation_failed")
def _no_key(c: Ctx) -> None:
    _bad_reference(c, {})


@rule("refs.central_id", "a reference by central_id is applied")
def _by_central_id(c: Ctx) -> None:
    _, uhid = c.need("patient")
    res, ex = c.one(c.a, _visit_with(c, {"central_id": uhid}))
    c.status(res, ex, "applied")


@rule("refs.unknown_central_id", "a central_id that does not exist is rejected / unknown_reference")
def _unknown_central(c: Ctx) -> None:
    res, ex = c.one(c.a, _visit_with(c, {"central_id": f"CT-NO-SUCH-{c.stamp}"}))
    c.status(res, ex, "rejected", "unknown_reference")


@rule("refs.lookup", "GET /refs/{local_ref} (1.2) gives {local_ref, kind, central_id, op_id}, "
      "for another device's local_ref too")
def _ref_lookup(c: Ctx) -> None:
    reg, uhid = c.need("patient")
    lref = reg["payload"]["local_ref"]
    ex = c.get(c.b, f"/refs/{lref}")
    body = c.answered(ex)
    c.expect(body == {"local_ref": lref, "kind": "patient", "central_id": uhid, "op_id": reg["op_id"]} or (
        isinstance(body, dict) and {k: body.get(k) for k in ("local_ref", "kind", "central_id", "op_id")}
        == {"local_ref": lref, "kind": "patient", "central_id": uhid, "op_id": reg["op_id"]}),
        f"{{local_ref: {lref}, kind: patient, central_id: {uhid}, op_id: {reg['op_id']}}}", ex)


@rule("refs.unknown_404", "GET /refs/{local_ref} is 404 while no applied op made it (1.2)")
def _ref_unknown(c: Ctx) -> None:
    ex = c.get(c.a, f"/refs/{c.a.device_id}-CT{c.stamp}-NEVER")
    c.expect(ex.status == 404, "HTTP 404", ex)


# ---- deferred --------------------------------------------------------------------------------
@rule("deferred.dependency", "an op whose dependency is not applied is deferred / dependency_missing, "
      "error.waiting_for {op_id} (1.2), and is not remembered")
def _dependency(c: Ctx) -> None:
    reg, _ = c.need("patient")
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
    reg, _ = c.need("patient")
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
    c.cache["cleared"] = uhid


# ---- the other kinds -------------------------------------------------------------------------
@rule("visit.applied", "visit.open is applied with result {visit_id}")
def _visit(c: Ctx) -> None:
    c.need("visit", own=True)


@rule("visit.unknown_department", "a department not in the master data is rejected / unknown_department")
def _unknown_dept(c: Ctx) -> None:
    reg, _ = c.need("patient")
    op = _visit_with(c, {"local_ref": reg["payload"]["local_ref"]})
    op["payload"]["department"] = "CTNOSUCHDEPT"
    op["payload"].pop("unit", None)
    res, ex = c.one(c.a, op)
    c.status(res, ex, "rejected", "unknown_department")


@rule("lab.applied", "lab.order with one tube per test is applied with result {order_id, accession}")
def _lab(c: Ctx) -> None:
    c.need("lab_order", own=True)


@rule("lab.unknown_test", "a test not in the master data is rejected / unknown_test")
def _unknown_test(c: Ctx) -> None:
    op = c.op(c.a, "lab.order", c.lab_payload(codes=["CTNOSUCHTEST"]))
    res, ex = c.one(c.a, op)
    c.status(res, ex, "rejected", "unknown_test")


@rule("lab.sample_id_reused", "a sample id another op's tube has is rejected / sample_id_reused (1.2)")
def _reused(c: Ctx) -> None:
    _, _, tubes = c.need("lab_order")
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
    op, _ = c.need("payment", own=True)
    got = c.get(c.a, f"/ops/{op['op_id']}")
    body = c.answered(got)
    c.expect(isinstance(body, dict) and (body.get("result") or {}).get("warnings") == [], "result.warnings []", got)


def _pay(c: Ctx, items: list[tuple[str, int]], mode: str = "cash", **extra: Any) -> tuple[dict[str, Any], Any, Any]:
    reg, _ = c.need("patient")
    op = c.op(c.a, "payment.record", c.payment_payload(c.a, {"local_ref": reg["payload"]["local_ref"]}, items,
                                                       mode, **extra))
    res, ex = c.one(c.a, op)
    c.status(res, ex, "applied")
    warnings = (res.get("result") or {}).get("warnings")
    c.expect(isinstance(warnings, list), "result.warnings, a list", ex)
    return op, warnings, ex


def _codes(warnings: list[Any]) -> list[str]:
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
    reg, _ = c.need("patient")
    fee = c.fee()
    op = c.op(c.a, "payment.record", c.payment_payload(c.a, {"local_ref": reg["payload"]["local_ref"]},
                                                       [(str(fee["code"]), int(fee["price_paise"]))], "upi"))
    res, ex = c.one(c.a, op)
    c.status(res, ex, "rejected", "validation_failed")


@rule("payment.void", "payment.void is applied with {receipt_id, voided: true}; voiding it again or a receipt "
      "that does not exist is rejected / void_target_missing")
def _void(c: Ctx) -> None:
    pay, receipt = c.need("payment")
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


@rule("origin", "an op may carry an origin (1.2): applied; the same origin again is duplicate, another "
      "origin is idempotency_mismatch")
def _origin(c: Ctx) -> None:
    reg, _ = c.need("patient")
    fee = c.fee()
    op = c.op(c.a, "payment.record", c.payment_payload(c.a, {"local_ref": reg["payload"]["local_ref"]},
                                                       [(str(fee["code"]), int(fee["price_paise"]))]),
              origin={"written_by": "conformance-test", "device_id": c.a.device_id, "slip_no": "CT1"})
    res, ex = c.one(c.a, op)
    c.status(res, ex, "applied")
    r2, ex2 = c.one(c.a, op)
    c.status(r2, ex2, "duplicate")
    other = {**op, "origin": {**op["origin"], "slip_no": "CT2"}}
    r3, ex3 = c.one(c.a, other)
    c.status(r3, ex3, "rejected", "idempotency_mismatch")


# ---- reserved ids (1.2 reserved_used, /id-blocks/used) ------------------------------------------
@rule("id_blocks", "POST /id-blocks gives new ids of the device; a registration with one is applied with that "
      "uhid; devices/me reserved_used and GET /id-blocks/used then count and list it (1.2)")
def _id_blocks(c: Ctx) -> None:
    before = c.answered(c.get(c.a, "/devices/me"))
    ex = c.a.api.post("/id-blocks", json={"kind": "uhid", "count": 2})
    c.current = c.a
    body = c.answered(ex)
    ids = body.get("ids") if isinstance(body, dict) else None
    c.expect(isinstance(ids, list) and len(ids) == 2 and len(set(ids)) == 2, "2 different ids", ex)
    assert isinstance(ids, list)
    _, uhid = c.registered(c.a, uhid=ids[0])
    c.expect(uhid == ids[0], f"result.uhid {ids[0]}")
    after_ex = c.get(c.a, "/devices/me")
    after = c.answered(after_ex)
    was = (before.get("reserved_used") or {}).get("uhid", 0) if isinstance(before, dict) else 0
    now = (after.get("reserved_used") or {}).get("uhid") if isinstance(after, dict) else None
    c.expect(now == was + 1, f"reserved_used.uhid {was + 1}", after_ex)
    used, _ = c.page_all(c.a, "/id-blocks/used", "ids", {"kind": "uhid"})
    c.expect(ids[0] in used and ids[1] not in used, f"/id-blocks/used listing {ids[0]}, not {ids[1]}", c.a.api.last)
    c.cache["unused_uhid"] = ids[1]


@rule("id_blocks.not_owned", "a reserved id issued to another device is rejected / reserved_id_not_owned")
def _not_owned(c: Ctx) -> None:
    uhid = c.cache.get("unused_uhid")
    if uhid is None:
        raise Skipped("needs the id block of rule id_blocks")
    op = c.op(c.b, "patient.register", c.register_payload(c.b, uhid=uhid))
    res, ex = c.one(c.b, op)
    c.status(res, ex, "rejected", "reserved_id_not_owned")


# ---- /patients/changes ------------------------------------------------------------------------
@rule("changes.fields", "/patients/changes lists a new patient with its local_refs and (1.2) name_local, "
      "guardian_relation, age_months, age_days and category; a cleared field is null")
def _changes_fields(c: Ctx) -> None:
    cursor = c.need("changes_cursor")
    reg, uhid = c.registered(c.a, name_local="परीक्षण रोगी", age_years=0, age_months=5, age_days=3,
                             guardian_relation="D/O", category="bpl")
    seen = {p.get("uhid"): p for p in c.changes_since(cursor)}
    ex = c.a.api.last
    p = seen.get(uhid)
    c.expect(p is not None, f"patient {uhid} in the changes after the run's first cursor", ex)
    assert p is not None
    want = {"name_local": "परीक्षण रोगी", "guardian_relation": "D/O", "age_months": 5, "age_days": 3,
            "category": "bpl", "name": "Conformance Test Patient", "sex": "O", "age_years": 0}
    got = {k: p.get(k) for k in want}
    c.expect(got == want, f"the patient's fields {want}", ex)
    c.expect(reg["payload"]["local_ref"] in (p.get("local_refs") or []), "local_refs with its offline number", ex)
    cleared = c.cache.get("cleared")
    if cleared is not None:
        c.expect(cleared in seen and seen[cleared].get("district") is None, f"district null for {cleared}", ex)


@rule("changes.late_commit", "/patients/changes never skips a change that commits after a later one: a reader "
      "following next_cursor while both devices write sees every patient written")
def _late_commit(c: Ctx) -> None:
    cursor = c.need("changes_cursor")
    big = [c.op(c.a, "patient.register", c.register_payload(c.a)) for _ in range(20)]
    big_results: dict[str, Any] = {}

    def push_big() -> None:
        try:
            big_results["r"] = c.a.api.post("/ops:batch", json={"ops": big})
        except Exception as exc:  # reported below
            big_results["e"] = exc

    t = threading.Thread(target=push_big, daemon=True)
    t.start()
    small_uhids: list[str] = []
    seen: set[str] = set()
    read_from = cursor
    time.sleep(0.2)
    for _ in range(8):
        _, uhid = c.registered(c.b)
        small_uhids.append(uhid)
        params: dict[str, Any] = {"limit": 5000}
        if read_from is not None:
            params["cursor"] = read_from
        ex = c.get(c.b, "/patients/changes", params=params)
        body = c.answered(ex)
        seen |= {str(p.get("uhid")) for p in body.get("patients") or [] if isinstance(p, dict)}
        read_from = body.get("next_cursor") or read_from
        time.sleep(0.15)
    t.join(timeout=max(1.0, c.a.api.clock.left()))
    ex_big = big_results.get("r")
    c.expect(ex_big is not None and ex_big.status == 200, "the batch of 20 registrations answered 200", ex_big)
    assert ex_big is not None
    big_uhids = [(r.get("result") or {}).get("uhid") for r in (ex_big.body or {}).get("results") or []]
    c.expect(len(big_uhids) == 20 and all(big_uhids), "20 registrations applied", ex_big)
    for op in big:
        c.a.applied.append(op["op_id"])
    rest = c.changes_since(read_from)
    seen |= {str(p.get("uhid")) for p in rest}
    missing = [u for u in big_uhids + small_uhids if u not in seen]
    c.expect(not missing, f"every patient written seen by the reader; missed {missing[:5]}", c.b.api.last)


# ---- the collection desk (1.2) -------------------------------------------------------------------
def _collect(c: Ctx, sample_id: str, status: str, when: datetime, **extra: Any) -> tuple[dict[str, Any], Any]:
    payload = {"sample_id": sample_id, "status": status, "collected_at": when.isoformat(timespec="seconds"), **extra}
    return c.one(c.a, c.op(c.a, "lab.sample_collect", payload))


@rule("samples.ordered", "GET /samples/{sample_id} (1.2) of a tube just ordered is {sample_id, order_id, "
      "sample_type, tests, status: ordered, collected_at: null}")
def _sample_ordered(c: Ctx) -> None:
    _, order_id, tubes = c.need("lab_order")
    t = tubes[1]
    ex = c.get(c.a, f"/samples/{t['sample_id']}")
    body = c.answered(ex)
    want = {"sample_id": t["sample_id"], "order_id": order_id, "sample_type": t["sample_type"], "tests": t["tests"],
            "status": "ordered", "collected_at": None}
    c.expect(isinstance(body, dict) and {k: body.get(k) for k in want} == want, f"{want}", ex)


@rule("samples.collect", "lab.sample_collect (1.2) collected is applied with {sample_id, order_id, status}; "
      "GET /samples/{sample_id} then says collected with collected_at")
def _sample_collect(c: Ctx) -> None:
    _, order_id, tubes = c.need("lab_order")
    sid = tubes[0]["sample_id"]
    res, ex = _collect(c, sid, "collected", datetime.now(IST).replace(microsecond=0))
    c.status(res, ex, "applied")
    c.expect(res.get("result") == {"sample_id": sid, "order_id": order_id, "status": "collected"},
             f"result {{sample_id: {sid}, order_id: {order_id}, status: collected}}", ex)
    got = c.get(c.a, f"/samples/{sid}")
    body = c.answered(got)
    c.expect(isinstance(body, dict) and body.get("status") == "collected" and body.get("collected_at") is not None,
             "status collected with collected_at", got)


@rule("samples.latest_event", "a later event for a tube applies too; the tube's state is that of the event "
      "with the latest collected_at, whatever the order they arrive in (1.2)")
def _sample_latest(c: Ctx) -> None:
    _, _, tubes = c.need("lab_order")
    sid = tubes[1]["sample_id"]
    now = datetime.now(IST).replace(microsecond=0)
    from datetime import timedelta

    r1, ex1 = _collect(c, sid, "rejected", now - timedelta(minutes=10), reason="haemolysed")
    c.status(r1, ex1, "applied")
    r2, ex2 = _collect(c, sid, "collected", now)
    c.status(r2, ex2, "applied")
    r3, ex3 = _collect(c, sid, "rejected", now - timedelta(minutes=5), reason="clotted",
                       note="conformance test: an older event arriving late")
    c.status(r3, ex3, "applied")
    got = c.get(c.a, f"/samples/{sid}")
    body = c.answered(got)
    c.expect(isinstance(body, dict) and body.get("status") == "collected", "status collected (the latest event)", got)


@rule("samples.reason_required", "lab.sample_collect rejected without a reason is rejected / validation_failed (1.2)")
def _sample_reason(c: Ctx) -> None:
    _, _, tubes = c.need("lab_order")
    res, ex = _collect(c, tubes[0]["sample_id"], "rejected", datetime.now(IST).replace(microsecond=0))
    c.status(res, ex, "rejected", "validation_failed")
    c.expect("kind" not in _fields(res), "rejected for the missing reason (not for an unknown kind)", ex)


@rule("samples.unknown", "lab.sample_collect of a tube no applied order has is rejected / unknown_sample, and "
      "GET /samples/{sample_id} of it is 404 (1.2)")
def _sample_unknown(c: Ctx) -> None:
    sid = f"{c.a.device_id}-CT{c.stamp}-SNONE"
    res, ex = _collect(c, sid, "collected", datetime.now(IST).replace(microsecond=0))
    c.status(res, ex, "rejected", "unknown_sample")
    got = c.get(c.a, f"/samples/{sid}")
    c.expect(got.status == 404, "HTTP 404", got)


# ---- the device's numbers and the reconciliation ---------------------------------------------------
@rule("devices.max_seq", "max_seq is at least the highest seq received from the device, whatever its outcome")
def _max_seq(c: Ctx) -> None:
    for d in (c.a, c.b):
        ex = c.get(d, "/devices/me")
        body = c.answered(ex)
        c.expect(isinstance(body, dict) and type(body.get("max_seq")) is int
                 and body["max_seq"] >= d.max_seq_sent, f"max_seq at least {d.max_seq_sent}", ex)


@rule("reconciliation", "GET /reconciliation for today and the device has the totals; its "
      "op_ids_sha256 is the SHA-256 of the op_ids /reconciliation/ops lists, which include every op this run "
      "had applied")
def _reconciliation(c: Ctx) -> None:
    day = datetime.now(IST).date().isoformat()
    q = {"date": day, "device_id": c.a.device_id}
    ex = c.get(c.a, "/reconciliation", params=q)
    body = c.answered(ex)
    c.expect(isinstance(body, dict) and all(k in body for k in ("date", "device_id", "ops_applied", "by_kind",
                                                                  "payments", "voids", "op_ids_sha256")),
             "date, device_id, ops_applied, by_kind, payments, voids, op_ids_sha256", ex)
    ids, _ = c.page_all(c.a, "/reconciliation/ops", "op_ids", dict(q))
    digest = hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()
    c.expect(digest == body["op_ids_sha256"], f"op_ids_sha256 {digest} (of the listed op_ids)", ex)
    c.expect(body.get("ops_applied") == len(ids), f"ops_applied {len(ids)}", ex)
    missing = sorted(set(c.a.applied) - set(ids))
    c.expect(not missing, f"every op this run had applied listed; missing {missing[:3]}", c.a.api.last)


@rule("reconciliation.samples", "the reconciliation counts the tubes collected and refused that day (1.2 samples)")
def _reconciliation_samples(c: Ctx) -> None:
    day = datetime.now(IST).date().isoformat()
    ex = c.get(c.a, "/reconciliation", params={"date": day, "device_id": c.a.device_id})
    body = c.answered(ex)
    samples = body.get("samples") if isinstance(body, dict) else None
    c.expect(isinstance(samples, dict) and all(type(samples.get(k)) is int for k in ("collected", "rejected")),
             "samples {collected, rejected} (1.2)", ex)
    if isinstance(samples, dict) and "samples.latest_event" in c.cache.get("passed", set()):
        # whether it counts events or tubes by their last state the text leaves open (docs/contract-notes.md)
        c.expect(samples["collected"] >= 1, "at least the tubes this run collected", ex)

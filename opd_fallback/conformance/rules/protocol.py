"""Rules of the protocol: authentication, health, the device, master data, ops and
batches, idempotency, values and references."""

from __future__ import annotations

import copy
import secrets
from datetime import datetime

from opd_fallback.conformance.context import IST, Ctx
from opd_fallback.conformance.jsontypes import UncheckedJSON, UncheckedObject
from opd_fallback.conformance.rules.base import MAX_INT, _error, _fields, rule


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
    c.changes_cursor(own=True)


# ---- the envelope and the batch ---------------------------------------------------------
@rule("ops.applied", "patient.register is applied with result {uhid, linked: false}")
def _register(c: Ctx) -> None:
    reg, _ = c.patient(own=True)
    ex = c.get(c.a, f"/ops/{reg['op_id']}")
    res = c.answered(ex)
    c.expect(isinstance(res, dict) and (res.get("result") or {}).get("linked") is False, "result.linked false", ex)


@rule("idempotency.duplicate", "the same op sent again is duplicate with the original result")
def _duplicate(c: Ctx) -> None:
    reg, uhid = c.patient()
    res, ex = c.one(c.a, reg)
    c.status(res, ex, "duplicate")
    c.expect(res.get("result") == {"uhid": uhid, "linked": False}, f"the original result {{uhid: {uhid}, linked: false}}",
             ex)


@rule("idempotency.canonical", "a resend whose payload differs only in key order and null-valued keys "
      "is duplicate (canonical JSON, absent equals null)")
def _canonical(c: Ctx) -> None:
    reg, uhid = c.patient()
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
    reg, _ = c.patient()
    other = copy.deepcopy(reg)
    other["payload"]["age_years"] = 41
    res, ex = c.one(c.a, other)
    c.status(res, ex, "rejected", "idempotency_mismatch")


@rule("ops.outcome", "GET /ops/{op_id} gives the remembered outcome of an applied op")
def _outcome(c: Ctx) -> None:
    reg, uhid = c.patient()
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
    bodies: tuple[UncheckedObject, ...] = ({"ops": "not a list"}, {"ops": [1, 2]}, {"nothing": []})
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
    payload: UncheckedObject = {
        "local_ref": c.ref(c.a), "patient": {"local_ref": reg["payload"]["local_ref"]},
        "department": dept, "visit_type": "new", "visit_date": datetime.now(IST).date().isoformat(), "token_no": 2}
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
    reg, _ = c.patient()
    op = c.op(c.a, "patient.update", {"patient": {"local_ref": reg["payload"]["local_ref"]},
                                       "base_version": MAX_INT + 1, "changes": {"state": "Test State"}})
    res, ex = c.one(c.a, op)
    c.status(res, ex, "rejected", "validation_failed")
    c.expect(any(f.split(".")[-1] == "base_version" for f in _fields(res)), "error.fields naming base_version", ex)


# ---- references ----------------------------------------------------------------------------
def _visit_with(c: Ctx, patient: UncheckedJSON) -> UncheckedObject:
    dept, unit = c.department()
    payload: UncheckedObject = {
        "local_ref": c.ref(c.a), "patient": patient, "department": dept, "visit_type": "revisit",
        "visit_date": datetime.now(IST).date().isoformat(), "token_no": 3}
    if unit:
        payload["unit"] = unit
    return c.op(c.a, "visit.open", payload)


def _bad_reference(c: Ctx, patient: UncheckedJSON) -> None:
    res, ex = c.one(c.a, _visit_with(c, patient))
    c.status(res, ex, "rejected", "validation_failed")
    c.expect(any(f == "patient" or f.startswith("patient.") for f in _fields(res)),
             "error.fields naming patient", ex)


@rule("refs.two_keys", "a reference with both central_id and local_ref is rejected / validation_failed")
def _two_keys(c: Ctx) -> None:
    reg, uhid = c.patient()
    _bad_reference(c, {"central_id": uhid, "local_ref": reg["payload"]["local_ref"]})


@rule("refs.null_key", "a reference with a null-valued key is rejected / validation_failed")
def _null_key(c: Ctx) -> None:
    reg, _ = c.patient()
    _bad_reference(c, {"central_id": None, "local_ref": reg["payload"]["local_ref"]})


@rule("refs.no_key", "a reference with neither key is rejected / validation_failed")
def _no_key(c: Ctx) -> None:
    _bad_reference(c, {})


@rule("refs.central_id", "a reference by central_id is applied")
def _by_central_id(c: Ctx) -> None:
    _, uhid = c.patient()
    res, ex = c.one(c.a, _visit_with(c, {"central_id": uhid}))
    c.status(res, ex, "applied")


@rule("refs.unknown_central_id", "a central_id that does not exist is rejected / unknown_reference")
def _unknown_central(c: Ctx) -> None:
    res, ex = c.one(c.a, _visit_with(c, {"central_id": f"CT-NO-SUCH-{c.stamp}"}))
    c.status(res, ex, "rejected", "unknown_reference")


@rule("refs.lookup", "GET /refs/{local_ref} (1.2) gives {local_ref, kind, central_id, op_id}, "
      "for another device's local_ref too")
def _ref_lookup(c: Ctx) -> None:
    reg, uhid = c.patient()
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



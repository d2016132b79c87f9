"""Rules of what central keeps: origins, id blocks, patient changes, samples,
max_seq and the reconciliation."""

from __future__ import annotations

import hashlib
import threading
import time
from datetime import datetime

from opd_fallback.conformance.context import IST, Ctx, Query, Skipped
from opd_fallback.conformance.http import Exchange
from opd_fallback.conformance.jsontypes import UncheckedJSON, UncheckedObject
from opd_fallback.conformance.rules.base import _fields, rule


@rule("origin", "an op may carry an origin (1.2): applied; the same origin again is duplicate, another "
      "origin is idempotency_mismatch")
def _origin(c: Ctx) -> None:
    reg, _ = c.patient()
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
    c.notes["unused_uhid"] = ids[1]


@rule("id_blocks.not_owned", "a reserved id issued to another device is rejected / reserved_id_not_owned")
def _not_owned(c: Ctx) -> None:
    uhid = c.notes.get("unused_uhid")
    if uhid is None:
        raise Skipped("needs the id block of rule id_blocks")
    op = c.op(c.b, "patient.register", c.register_payload(c.b, uhid=uhid))
    res, ex = c.one(c.b, op)
    c.status(res, ex, "rejected", "reserved_id_not_owned")


# ---- /patients/changes ------------------------------------------------------------------------
@rule("changes.fields", "/patients/changes lists a new patient with its local_refs and (1.2) name_local, "
      "guardian_relation, age_months, age_days and category; a cleared field is null")
def _changes_fields(c: Ctx) -> None:
    cursor = c.changes_cursor()
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
    cleared = c.notes.get("cleared")
    if cleared is not None:
        c.expect(cleared in seen and seen[cleared].get("district") is None, f"district null for {cleared}", ex)


@rule("changes.late_commit", "/patients/changes never skips a change that commits after a later one: a reader "
      "following next_cursor while both devices write sees every patient written")
def _late_commit(c: Ctx) -> None:
    cursor = c.changes_cursor()
    big = [c.op(c.a, "patient.register", c.register_payload(c.a)) for _ in range(20)]
    big_results: dict[str, Exchange] = {}
    big_errors: list[Exception] = []  # reported below: no answer

    def push_big() -> None:
        try:
            big_results["r"] = c.a.api.post("/ops:batch", json={"ops": big})
        except Exception as exc:  # reported below
            big_errors.append(exc)

    t = threading.Thread(target=push_big, daemon=True)
    t.start()
    small_uhids: list[str] = []
    seen: set[str] = set()
    read_from = cursor
    time.sleep(0.2)
    for _ in range(8):
        _, uhid = c.registered(c.b)
        small_uhids.append(uhid)
        params: Query = {"limit": 5000}
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
def _collect(c: Ctx, sample_id: str, status: str, when: datetime,
             **extra: UncheckedJSON) -> tuple[UncheckedObject, Exchange]:
    payload = {"sample_id": sample_id, "status": status, "collected_at": when.isoformat(timespec="seconds"), **extra}
    return c.one(c.a, c.op(c.a, "lab.sample_collect", payload))


@rule("samples.ordered", "GET /samples/{sample_id} (1.2) of a tube just ordered is {sample_id, order_id, "
      "sample_type, tests, status: ordered, collected_at: null}")
def _sample_ordered(c: Ctx) -> None:
    _, order_id, tubes = c.lab_order()
    t = tubes[1]
    ex = c.get(c.a, f"/samples/{t['sample_id']}")
    body = c.answered(ex)
    want = {"sample_id": t["sample_id"], "order_id": order_id, "sample_type": t["sample_type"], "tests": t["tests"],
            "status": "ordered", "collected_at": None}
    c.expect(isinstance(body, dict) and {k: body.get(k) for k in want} == want, f"{want}", ex)


@rule("samples.collect", "lab.sample_collect (1.2) collected is applied with {sample_id, order_id, status}; "
      "GET /samples/{sample_id} then says collected with collected_at")
def _sample_collect(c: Ctx) -> None:
    _, order_id, tubes = c.lab_order()
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
    _, _, tubes = c.lab_order()
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
    _, _, tubes = c.lab_order()
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
    if isinstance(samples, dict) and "samples.latest_event" in c.passed:
        # whether it counts events or tubes by their last state the text leaves open (docs/contract-notes.md)
        c.expect(samples["collected"] >= 1, "at least the tubes this run collected", ex)

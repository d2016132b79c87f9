"""What the rules share: the two test devices, the server's master data, the
test records made so far, and the ways a rule ends (failed, skipped).

Every record the kit writes is its own and says so: patients are named
``Conformance Test ...`` with the run's date and time in their address
(``conformance test record 2026-12-01 22:40 UTC, not a real patient``), every
offline number is ``P01-CT261201224005-0001`` (device, ``CT`` for the kit, the
run's date and time), receipts and sample ids likewise. Mobiles are never
sent (no real person's number can be matched); possible duplicates are made
with an ABHA number drawn at random for the run.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import TypeVar, Unpack, cast

from opd_fallback.conformance.http import Api, CallOptions, Exchange
from opd_fallback.conformance.jsontypes import UncheckedJSON, UncheckedObject
from opd_fallback.domain.exits import OpdError

IST = timezone(timedelta(hours=5, minutes=30))
T = TypeVar("T")
Query = dict[str, str | int]  # a query's parameters


class Failed(OpdError):
    """A rule's expectation was not met; ``exchange`` is what was sent and what came back.
    (An OpdError like every error with words for people; the runner reports it as
    the rule's line and the command ends 1.)"""

    def __init__(self, expected: str, exchange: Exchange | None) -> None:
        super().__init__(expected)
        self.expected = expected
        self.exchange = exchange


class Skipped(OpdError):
    """A rule cannot be checked (a rule it needs failed, the server lacks data, ...)."""


@dataclass
class Device:
    device_id: str
    api: Api
    seq: int = 0
    n: int = 0
    max_seq_sent: int = 0
    applied: list[str] = field(default_factory=list)  # op_ids applied by this run


class Ctx:
    """One run: two devices, the run's stamp, lazily made shared records."""

    def __init__(self, first: Device, second: Device, anonymous: Api, bad_token: Api) -> None:
        self.a, self.b = first, second
        self.anonymous, self.bad_token = anonymous, bad_token
        self.started = datetime.now(UTC)
        self.stamp = self.started.astimezone(IST).strftime("%y%m%d%H%M%S")
        self.label = f"conformance test record {self.started:%Y-%m-%d %H:%M} UTC, not a real patient"
        self.cache: dict[str, object] = {}  # name -> what _make_<name> made (see need)
        self.passed: set[str] = set()  # the ids of the rules passed so far
        self.notes: dict[str, str] = {}  # what a rule leaves for a later one (cleared, unused_uhid)
        self.failed_needs: dict[str, str] = {}
        self.current: Device = first

    # ---- expectations -----------------------------------------------------------
    def expect(self, ok: bool, expected: str, ex: Exchange | None = None) -> None:
        if not ok:
            raise Failed(expected, ex if ex is not None else self.current.api.last)

    def answered(self, ex: Exchange, status: int = 200) -> UncheckedJSON:
        """The JSON body of an answer that must have ``status``."""
        if ex.error is not None:
            raise Failed(f"an answer ({status})", ex)
        self.expect(ex.status == status, f"HTTP {status}", ex)
        return ex.body

    # ---- numbers ----------------------------------------------------------------
    def ref(self, d: Device, tag: str = "") -> str:
        d.n += 1
        return f"{d.device_id}-CT{self.stamp}-{tag}{d.n:04d}"

    def op(self, d: Device, kind: str, payload: UncheckedObject, depends_on: list[str] | None = None,
           **extra: UncheckedJSON) -> UncheckedObject:
        d.seq += 1
        d.max_seq_sent = max(d.max_seq_sent, d.seq)
        return {
            "op_id": f"CT{self.stamp}{secrets.token_hex(6).upper()}",
            "kind": kind,
            "device_id": d.device_id,
            "operator_id": "conformance-test",
            "seq": d.seq,
            "recorded_at": datetime.now(IST).isoformat(timespec="seconds"),
            "depends_on": depends_on or [],
            "payload": payload,
            "resolution": None,
            **extra,
        }

    def push(self, d: Device, *ops: UncheckedObject,
             raw: UncheckedJSON = None) -> tuple[list[UncheckedObject], Exchange]:
        """POST ops:batch; the results, checked to be one per op in order."""
        self.current = d
        ex = d.api.post("/ops:batch", json=raw if raw is not None else {"ops": list(ops)})
        body = self.answered(ex)
        results = body.get("results") if isinstance(body, dict) else None
        self.expect(isinstance(results, list) and len(results) == len(ops)
                    and all(isinstance(r, dict) for r in results), "one result per op, in order", ex)
        assert isinstance(results, list)
        self.expect([r.get("op_id") for r in results] == [o.get("op_id") for o in ops],
                    "results in the order of the ops, each with its op_id", ex)
        for o, r in zip(ops, results, strict=True):
            if r.get("status") == "applied":
                d.applied.append(str(o.get("op_id")))
        return results, ex

    def one(self, d: Device, op: UncheckedObject) -> tuple[UncheckedObject, Exchange]:
        results, ex = self.push(d, op)
        return results[0], ex

    def status(self, res: UncheckedObject, ex: Exchange, status: str, code: str | None = None) -> None:
        got = (res.get("status"), (res.get("error") or {}).get("code") if isinstance(res.get("error"), dict) else None)
        want = status if code is None else f"{status} / {code}"
        self.expect(got[0] == status and (code is None or got[1] == code), want, ex)

    def get(self, d: Device, path: str, **kw: Unpack[CallOptions]) -> Exchange:
        self.current = d
        return d.api.get(path, **kw)

    # ---- records shared by several rules ------------------------------------------
    def need(self, name: str, make: Callable[[], T], *, own: bool = False) -> T:
        """A shared record made once by ``make`` (``_make_<name>``); if making it failed, the
        rule is skipped (``own``: the rule that checks the making itself fails instead)."""
        if name in self.failed_needs:
            raise Skipped(f"needs {name}, which could not be made: {self.failed_needs[name]}")
        if name not in self.cache:
            try:
                self.cache[name] = make()
            except Failed as exc:
                self.failed_needs[name] = str(exc.expected)
                if own:
                    raise
                raise Skipped(f"needs {name}, which could not be made: {exc.expected}") from exc
        return cast(T, self.cache[name])  # made by make, under this name only

    # the shared records, each made by its _make_ method below
    def patient(self, *, own: bool = False) -> tuple[UncheckedObject, str]:
        """The run's test patient: its register op and its uhid."""
        return self.need("patient", self._make_patient, own=own)

    def visit(self, *, own: bool = False) -> tuple[UncheckedObject, str]:
        return self.need("visit", self._make_visit, own=own)

    def lab_order(self, *, own: bool = False) -> tuple[UncheckedObject, str, list[UncheckedObject]]:
        return self.need("lab_order", self._make_lab_order, own=own)

    def payment(self, *, own: bool = False) -> tuple[UncheckedObject, str]:
        return self.need("payment", self._make_payment, own=own)

    def changes_cursor(self, *, own: bool = False) -> str | None:
        return self.need("changes_cursor", self._make_changes_cursor, own=own)

    def master(self) -> UncheckedObject:
        return self.need("master_data", self._make_master_data)

    def _make_master_data(self) -> UncheckedObject:
        body = self.answered(self.get(self.a, "/master-data"))
        self.expect(isinstance(body, dict), "master data as a JSON object")
        return dict(body)

    def department(self) -> tuple[str, str | None]:
        depts = [d for d in self.master().get("departments") or [] if isinstance(d, dict) and d.get("code")]
        if not depts:
            raise Skipped("the master data has no department")
        units = [u for u in depts[0].get("units") or [] if isinstance(u, dict) and u.get("code")]
        return str(depts[0]["code"]), (str(units[0]["code"]) if units else None)

    def tests(self, n: int = 2) -> list[UncheckedObject]:
        tests = [t for t in self.master().get("tests") or [] if isinstance(t, dict) and t.get("code")]
        if len(tests) < n:
            raise Skipped(f"the master data has fewer than {n} tests")
        return tests[:n]

    def fee(self) -> UncheckedObject:
        """A fee a general patient pays (not exempt), with a price above zero."""
        m = self.master()
        exempt = {c for e in m.get("exemptions") or [] if isinstance(e, dict) and e.get("category") == "general"
                  for c in e.get("fee_codes") or []}
        fees = [f for f in m.get("fees") or [] if isinstance(f, dict) and f.get("code")
                and isinstance(f.get("price_paise"), int) and f["price_paise"] > 0 and f["code"] not in exempt]
        if not fees:
            raise Skipped("the master data has no fee with a price that a general patient pays")
        return fees[0]

    def register_payload(self, d: Device, **fields: UncheckedJSON) -> UncheckedObject:
        return {
            "local_ref": self.ref(d), "uhid": None, "name": "Conformance Test Patient", "sex": "O",
            "age_years": 40, "guardian_relation": "C/O", "guardian_name": "Conformance Test Guardian",
            "mobile": None, "address_line": self.label, "district": "Test District", "state": "Test State",
            "category": "general", **fields,
        }

    def registered(self, d: Device, **fields: UncheckedJSON) -> tuple[UncheckedObject, str]:
        """A new test patient of device ``d``: its op and the uhid central gave."""
        op = self.op(d, "patient.register", self.register_payload(d, **fields))
        res, ex = self.one(d, op)
        self.status(res, ex, "applied")
        uhid = (res.get("result") or {}).get("uhid")
        self.expect(isinstance(uhid, str) and bool(uhid), "result.uhid", ex)
        return op, str(uhid)

    def _make_patient(self) -> tuple[UncheckedObject, str]:
        return self.registered(self.a)

    def _make_visit(self) -> tuple[UncheckedObject, str]:
        reg, _ = self.patient()
        dept, unit = self.department()
        payload: UncheckedObject = {
            "local_ref": self.ref(self.a), "patient": {"local_ref": reg["payload"]["local_ref"]},
            "department": dept, "visit_type": "new", "visit_date": datetime.now(IST).date().isoformat(), "token_no": 1}
        if unit:
            payload["unit"] = unit
        op = self.op(self.a, "visit.open", payload)
        res, ex = self.one(self.a, op)
        self.status(res, ex, "applied")
        visit_id = (res.get("result") or {}).get("visit_id")
        self.expect(isinstance(visit_id, str) and bool(visit_id), "result.visit_id", ex)
        return op, str(visit_id)

    def lab_payload(self, samples: list[UncheckedObject] | None = None,
                    codes: list[str] | None = None) -> UncheckedObject:
        reg, _ = self.patient()
        vis, _ = self.visit()
        codes = codes or [str(t["code"]) for t in self.tests(2)]
        payload: UncheckedObject = {
            "local_ref": self.ref(self.a), "patient": {"local_ref": reg["payload"]["local_ref"]},
            "visit": {"local_ref": vis["payload"]["local_ref"]}, "tests": [{"code": c} for c in codes],
            "priority": "routine", "ordered_by": "conformance-test",
        }
        if samples is not None:
            payload["samples"] = samples
            payload["sample_id"] = samples[0]["sample_id"]
        return payload

    def tubes(self, codes: list[str]) -> list[UncheckedObject]:
        return [{"sample_id": self.ref(self.a, "S"), "sample_type": "Test tube", "tests": [c]} for c in codes]

    def _make_lab_order(self) -> tuple[UncheckedObject, str, list[UncheckedObject]]:
        """A lab order of two tests, one tube each (the sample rules use its tubes)."""
        codes = [str(t["code"]) for t in self.tests(2)]
        tubes = self.tubes(codes)
        op = self.op(self.a, "lab.order", self.lab_payload(tubes, codes))
        res, ex = self.one(self.a, op)
        self.status(res, ex, "applied")
        order_id = (res.get("result") or {}).get("order_id")
        accession = (res.get("result") or {}).get("accession")
        self.expect(isinstance(order_id, str) and bool(order_id) and isinstance(accession, str) and bool(accession),
                    "result {order_id, accession}", ex)
        return op, str(order_id), tubes

    def payment_payload(self, d: Device, patient_ref: dict[str, str], items: list[tuple[str, int]],
                        mode: str = "cash", **extra: UncheckedJSON) -> UncheckedObject:
        return {
            "local_ref": self.ref(d), "receipt_no": self.ref(d, "R"), "patient": patient_ref,
            "amount_paise": sum(a for _, a in items), "mode": mode,
            "items": [{"code": c, "qty": 1, "amount_paise": a} for c, a in items], **extra,
        }

    def _make_payment(self) -> tuple[UncheckedObject, str]:
        reg, _ = self.patient()
        fee = self.fee()
        op = self.op(self.a, "payment.record", self.payment_payload(
            self.a, {"local_ref": reg["payload"]["local_ref"]}, [(str(fee["code"]), int(fee["price_paise"]))]))
        res, ex = self.one(self.a, op)
        self.status(res, ex, "applied")
        receipt = (res.get("result") or {}).get("receipt_id")
        self.expect(isinstance(receipt, str) and bool(receipt), "result.receipt_id", ex)
        return op, str(receipt)

    def page_all(self, d: Device, path: str, key: str, params: Query, *,
                 budget_s: float = 60.0) -> tuple[list[UncheckedJSON], str | None]:
        """Follow ``next_cursor`` until ``done``; the items under ``key`` and the last cursor."""
        import time

        end = time.monotonic() + budget_s
        items: list[UncheckedJSON] = []
        given = params.pop("cursor", None)
        cursor = None if given is None else str(given)
        while True:
            if time.monotonic() > end:
                raise Skipped(f"{path} has more pages than can be read in {budget_s:.0f} s")
            q = dict(params)
            if cursor is not None:
                q["cursor"] = cursor
            ex = self.get(d, path, params=q)
            body = self.answered(ex)
            self.expect(isinstance(body, dict) and isinstance(body.get(key), list)
                        and isinstance(body.get("done"), bool), f"{{{key}: [...], next_cursor, done}}", ex)
            items += body[key]
            if body["done"]:
                return items, body.get("next_cursor") or cursor
            self.expect(bool(body.get("next_cursor")) and body.get("next_cursor") != cursor,
                        "a new next_cursor on a page that is not the last", ex)
            cursor = str(body["next_cursor"])

    def _make_changes_cursor(self) -> str | None:
        """Where /patients/changes ends now, so later rules read only what this run changed."""
        _, cursor = self.page_all(self.a, "/patients/changes", "patients", {"limit": 5000})
        return cursor

    def changes_since(self, cursor: str | None) -> list[UncheckedObject]:
        params: Query = {"limit": 5000}
        if cursor is not None:
            params["cursor"] = cursor
        items, _ = self.page_all(self.a, "/patients/changes", "patients", params)
        return [p for p in items if isinstance(p, dict)]

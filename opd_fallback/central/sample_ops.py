"""Realistic op streams for the benchmark, the tests and drills.

``OpFactory`` makes envelopes the way a counter would (ULID op_ids, per-device
seq, local_refs ``C07-261126-000042``, depends_on chains), without the
counter's store, so the server can be exercised on its own.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime
from typing import NotRequired, TypedDict, Unpack

from ulid import ULID

from opd_fallback.central.jsontypes import JSONObject, JSONValue
from opd_fallback.domain.clock import IST

FIRST = ["Ram", "Sita", "Mohd", "Anita", "Suresh", "Pooja", "Rajesh", "Sunita", "Amit", "Geeta",
         "Vijay", "Kavita", "Arjun", "Neha", "Imran", "Farida", "Manoj", "Rekha", "Deepak", "Shabana"]
LAST = ["Kumar", "Devi", "Ali", "Singh", "Yadav", "Verma", "Gupta", "Khan", "Mishra", "Pandey",
        "Tiwari", "Srivastava", "Ansari", "Maurya", "Shukla", "Chauhan", "Rawat", "Saxena"]
DISTRICTS = ["Lucknow", "Barabanki", "Sitapur", "Unnao", "Rae Bareli", "Hardoi", "Kanpur Nagar", "Bahraich"]


class Op(TypedDict):
    """An op envelope as a counter sends it (``OpEnvelope`` in domain/contract.py checks it)."""

    op_id: str
    kind: str
    device_id: str
    operator_id: str
    seq: int
    recorded_at: str
    depends_on: list[str]
    payload: JSONObject
    resolution: JSONObject | None
    origin: NotRequired[JSONObject]


Ref = JSONObject  # a reference to a record: {"local_ref": ...} or {"central_id": ...}


class OpExtra(TypedDict, total=False):
    """The envelope's optional parts a caller may give ``OpFactory.op``."""

    resolution: JSONObject | None
    origin: JSONObject


@dataclass
class OpFactory:
    """Makes ops for one device; ``recorded_at`` defaults to now in IST."""

    device_id: str = "C07"
    operator_id: str = "op-114"
    seq: int = 0
    when: datetime | None = None
    rng: random.Random = field(default_factory=lambda: random.Random(7))

    def op(self, kind: str, payload: JSONObject, depends_on: list[str] | None = None,
           **extra: Unpack[OpExtra]) -> Op:
        self.seq += 1
        when = self.when or datetime.now(IST)
        op: Op = {
            "op_id": str(ULID()),
            "kind": kind,
            "device_id": self.device_id,
            "operator_id": self.operator_id,
            "seq": self.seq,
            "recorded_at": when.isoformat(timespec="seconds"),
            "depends_on": depends_on or [],
            "payload": payload,
            "resolution": None,
        }
        if "resolution" in extra:
            op["resolution"] = extra["resolution"]
        if "origin" in extra:
            op["origin"] = extra["origin"]
        return op

    def local_ref(self, suffix: str = "") -> str:
        when = self.when or datetime.now(IST)
        return f"{self.device_id}-{when:%y%m%d}-{self.seq + 1:06d}{suffix}"

    def register(self, *, name: str | None = None, mobile: str | None = None, age: int | None = None,
                 **fields: JSONValue) -> Op:
        r = self.rng
        payload: JSONObject = {
            "local_ref": self.local_ref(),
            "uhid": None,
            "name": name or f"{r.choice(FIRST)} {r.choice(LAST)}",
            "sex": r.choice("MF"),
            "age_years": age if age is not None else r.randint(1, 85),
            "guardian_relation": "S/O",
            "guardian_name": f"{r.choice(FIRST)} {r.choice(LAST)}",
            "mobile": mobile if mobile is not None else f"{r.choice('6789')}{r.randrange(10**9):09d}",
            "district": r.choice(DISTRICTS),
            "state": "Uttar Pradesh",
            "category": "general",
            **fields,
        }
        return self.op("patient.register", payload)

    def visit(self, patient: Ref, *, depends_on: list[str] | None = None,
              department: str = "MED", unit: str | None = "MED-U1", visit_type: str = "new") -> Op:
        when = self.when or datetime.now(IST)
        # the token stays within the contract's 1..1,000,000 however many ops this factory made
        payload: JSONObject = {
            "local_ref": self.local_ref(), "patient": patient, "department": department, "unit": unit,
            "visit_type": visit_type, "visit_date": when.date().isoformat(), "token_no": self.seq % 999_999 + 1}
        return self.op("visit.open", payload, depends_on)

    def lab(self, patient: Ref, visit: Ref, *, tests: tuple[str, ...] = ("CBC", "LFT"),
            depends_on: list[str] | None = None) -> Op:
        payload: JSONObject = {"local_ref": self.local_ref(), "patient": patient, "visit": visit,
                   "tests": [{"code": t} for t in tests], "priority": "routine"}
        return self.op("lab.order", payload, depends_on)

    def payment(self, patient: Ref, items: list[tuple[str, int]], *, visit: Ref | None = None,
                lab_order: Ref | None = None, mode: str = "cash", receipt_no: str | None = None,
                depends_on: list[str] | None = None) -> Op:
        payload: JSONObject = {
            "local_ref": self.local_ref(),
            "receipt_no": receipt_no or f"{self.device_id}-R{self.seq + 1:06d}",
            "patient": patient,
            "amount_paise": sum(a for _, a in items),
            "mode": mode,
            "items": [{"code": c, "qty": 1, "amount_paise": a} for c, a in items],
        }
        if visit is not None:
            payload["visit"] = visit
        if lab_order is not None:
            payload["lab_order"] = lab_order
        if mode in ("upi", "card"):
            payload["mode_ref"] = f"UTR{self.rng.randrange(10**12):012d}"
        return self.op("payment.record", payload, depends_on)

    def void(self, payment: Ref, reason: str = "wrong amount entered",
             depends_on: list[str] | None = None) -> Op:
        return self.op("payment.void", {"payment": payment, "reason": reason}, depends_on)

    def collect(self, sample_id: str, *, status: str = "collected", reason: str | None = None,
                collected_at: str | None = None, depends_on: list[str] | None = None) -> Op:
        """A collection desk's event for one tube (``lab.sample_collect``, 1.2)."""
        when = self.when or datetime.now(IST)
        payload: JSONObject = {"sample_id": sample_id, "status": status,
                                   "collected_at": collected_at or when.isoformat(timespec="seconds")}
        if reason is not None:
            payload["reason"] = reason
        return self.op("lab.sample_collect", payload, depends_on)

    def update(self, patient: Ref, changes: JSONObject, base_version: int = 0,
               depends_on: list[str] | None = None) -> Op:
        return self.op("patient.update", {"patient": patient, "base_version": base_version, "changes": changes},
                       depends_on)

    def day_of_opd(self, patients: int, lab_share: float = 0.4) -> list[Op]:
        """A day's work: register, visit and fee for each patient; a share also
        get a lab order with its payment. Unique mobiles, so no duplicate conflicts."""
        ops: list[Op] = []
        for i in range(patients):
            reg = self.register(mobile=f"9{self.device_code()}{i % 10**8:08d}")
            pref = {"local_ref": reg["payload"]["local_ref"]}
            vis = self.visit(pref, depends_on=[reg["op_id"]])
            vref = {"local_ref": vis["payload"]["local_ref"]}
            pay = self.payment(pref, [("OPD-NEW", 1000)], visit=vref, depends_on=[vis["op_id"]])
            ops += [reg, vis, pay]
            if self.rng.random() < lab_share:
                lab = self.lab(pref, vref, depends_on=[vis["op_id"]])
                lref = {"local_ref": lab["payload"]["local_ref"]}
                lp = self.payment(pref, [("CBC", 15000), ("LFT", 25000)], lab_order=lref,
                                  mode=self.rng.choice(("cash", "upi")), depends_on=[lab["op_id"]])
                ops += [lab, lp]
        return ops

    def device_code(self) -> str:
        """One digit derived from the device id, so two devices' mobiles differ."""
        return str(sum(map(ord, self.device_id)) % 10)

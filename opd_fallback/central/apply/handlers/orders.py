"""``visit.open``, ``lab.order`` and ``lab.sample_collect``."""

from __future__ import annotations

from datetime import UTC

import orjson

from opd_fallback.central.apply.common import _HANDLERS, Result, _field_reject, _local_date, _reject
from opd_fallback.central.apply.refs import RefChecks
from opd_fallback.domain.clock import IST
from opd_fallback.domain.contract import OpEnvelope
from opd_fallback.domain.payloads import LabOrder, SampleCollect, VisitOpen


class OrderHandlers(RefChecks):
    @_HANDLERS.register("visit.open")
    def _visit_open(self, env: OpEnvelope, p: VisitOpen) -> Result:
        self._no_resolution(env)
        self._own_ref(env, p.local_ref)
        units = self.master.units.get(p.department)
        if units is None:
            raise _field_reject("unknown_department", "department", "unknown",
                                f"{p.department} is not a department in the master data")
        if p.unit is not None and p.unit not in units:
            raise _field_reject("unknown_department", "unit", "unknown",
                                f"{p.unit} is not a unit of {p.department}")
        self._deps(env)
        uhid = self._ref(p.patient, "patient", "patient")
        visit_id = f"V{self._next('visit'):010d}"
        self._b.visit_owner[visit_id] = uhid
        self._w(
            "INSERT INTO visit(visit_id, uhid, department, unit, visit_type, visit_date, token_no, device_id, op_id) "
            "VALUES (?,?,?,?,?,?,?,?,?)",
            (visit_id, uhid, p.department, p.unit, p.visit_type, p.visit_date.isoformat(), p.token_no,
             env.device_id, env.op_id),
        )
        self._map(p.local_ref, "visit", visit_id, env.op_id)
        return {"visit_id": visit_id}

    @_HANDLERS.register("lab.order")
    def _lab_order(self, env: OpEnvelope, p: LabOrder) -> Result:
        self._no_resolution(env)
        self._own_ref(env, p.local_ref)
        unknown = [(i, t.code) for i, t in enumerate(p.tests) if t.code not in self.master.tests]
        if unknown:
            raise _reject(
                "unknown_test", "not in the master data: " + ", ".join(code for _, code in unknown),
                fields=[{"field": f"tests.{i}.code", "code": "unknown", "message": f"{code} is not a known test"}
                        for i, code in unknown],
            )
        tubes = [(t.sample_id, t.sample_type, t.tests) for t in p.samples or ()]
        if not tubes and p.sample_id is not None:
            tubes = [(p.sample_id, "sample", [t.code for t in p.tests])]
        reserved = [sid for i, (sid, _, _) in enumerate(tubes)
                    if self._reserved(env, "sample", sid, f"samples.{i}.sample_id" if p.samples else "sample_id")]
        for i, (sid, _, _) in enumerate(tubes):
            row = self._q("SELECT op_id FROM lab_sample WHERE sample_id=?", (sid,)).fetchone()
            if row is not None and row[0] != env.op_id:
                raise _field_reject("sample_id_reused", f"samples.{i}.sample_id" if p.samples else "sample_id",
                                    "already_used", f"{sid} already names a tube of op {row[0]}")
        self._deps(env)
        uhid = self._ref(p.patient, "patient", "patient")
        visit_id = self._ref(p.visit, "visit", "visit")
        owner = self._b.visit_owner.get(visit_id)
        if owner is None:
            owner = self._b.visit_owner[visit_id] = self._q(
                "SELECT uhid FROM visit WHERE visit_id=?", (visit_id,)).fetchone()[0]
        if owner != uhid:
            raise _field_reject("validation_failed", "visit", "other_patient", "is a visit of another patient")
        for sid in reserved:
            self._use_reserved(sid, env.op_id)
        n = self._next("lab_order")
        order_id, accession = f"LO{n:010d}", f"A{env.recorded_at.astimezone(IST):%y%m%d}{n:08d}"
        self._w(
            "INSERT INTO lab_order(order_id, accession, uhid, visit_id, tests, sample_id, priority, ordered_by, "
            "device_id, op_id) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (order_id, accession, uhid, visit_id, orjson.dumps([t.code for t in p.tests]).decode(),
             p.sample_id, p.priority, p.ordered_by, env.device_id, env.op_id),
        )
        for sid, sample_type, codes in tubes:
            self._w("INSERT INTO lab_sample(sample_id, order_id, sample_type, tests, op_id) VALUES (?,?,?,?,?)",
                    (sid, order_id, sample_type, orjson.dumps(codes).decode(), env.op_id))
        self._map(p.local_ref, "lab_order", order_id, env.op_id)
        return {"order_id": order_id, "accession": accession}

    @_HANDLERS.register("lab.sample_collect")
    def _sample_collect(self, env: OpEnvelope, p: SampleCollect) -> Result:
        self._no_resolution(env)
        self._deps(env)
        row = self._q("SELECT order_id FROM lab_sample WHERE sample_id=?", (p.sample_id,)).fetchone()
        if row is None:
            raise _field_reject("unknown_sample", "sample_id", "not_found",
                                f"no applied lab order has a tube {p.sample_id}")
        order_id = row[0]
        at = p.collected_at
        self._w(
            "INSERT INTO sample_event(op_id, sample_id, order_id, status, collected_at, collected_utc, reason, note, "
            "device_id, operator_id, local_date) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (env.op_id, p.sample_id, order_id, p.status, at.isoformat(),
             at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), p.reason, p.note, env.device_id,
             env.operator_id, _local_date(env.recorded_at)),
        )
        return {"sample_id": p.sample_id, "order_id": order_id, "status": p.status}


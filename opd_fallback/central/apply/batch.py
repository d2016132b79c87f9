"""One batch, one transaction: the retry when PostgreSQL says a batch lost a race,
the op_id locks, one op's checks before it is applied, the outcome remembered,
and the batch's rows written just before COMMIT (see the package docstring)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TypeVar

import orjson
from pydantic import ValidationError

from opd_fallback.central.apply.common import (
    _HANDLERS,
    ID_FORMATS,
    OpResult,
    Result,
    _loads,
    _local_date,
    _Outcome,
    _reject,
    _result,
)
from opd_fallback.central.apply.handlers.orders import OrderHandlers
from opd_fallback.central.apply.handlers.patients import PatientHandlers
from opd_fallback.central.apply.handlers.payments import PaymentHandlers
from opd_fallback.central.apply.idempotency import _same_payload, payload_hash
from opd_fallback.central.apply.state import _count_seq, _DeviceDelta, _numbers_wanted, _unstorable
from opd_fallback.domain.clock import now_iso
from opd_fallback.domain.contract import OpEnvelope, big_int_path
from opd_fallback.domain.errors import explain
from opd_fallback.domain.payloads import validate_payload

_RETRIES = 5  # PostgreSQL: a batch that lost a race to another writer is run again this often
_CHANGE_LOCK = (0x0FD, 1)  # pg_advisory_xact_lock(int, int): numbering patient changes in commit order

T = TypeVar("T")


class Applier(PatientHandlers, OrderHandlers, PaymentHandlers):
    """Applies batches on one writer connection (one batch at a time: a lock
    guards the connection; an app keeps several appliers to write in parallel)."""

    # ---- transactions ---------------------------------------------------
    def _write(self, fn: Callable[..., T], *args: object) -> T:
        """Run ``fn`` in one write transaction, numbers taken and kept inside it;
        run it again when PostgreSQL says it lost a race with another writer."""
        with self.lock:
            c = self.conn
            for attempt in range(1, _RETRIES + 1):
                c.begin()
                self._pending = []
                try:
                    self.series.start()
                    out = fn(*args)
                    self.series.finish()
                    c.commit()
                    return out
                except BaseException as exc:
                    if not c.broken:
                        c.rollback()
                    if attempt < _RETRIES and c.is_transient(exc):
                        continue
                    raise
            raise AssertionError("unreachable")

    def apply_batch(self, device_id: str, ops: Sequence[object]) -> list[OpResult]:
        """Apply ops in order for the device owning the token; one entry per op."""
        results: list[OpResult] = self._write(self._batch, device_id, ops)
        return results

    def issue_ids(self, device_id: str, kind: str, count: int) -> list[str]:
        """A block of never-issued ids owned by ``device_id``."""
        ids: list[str] = self._write(self._issue, device_id, kind, count)
        return ids

    def _issue(self, device_id: str, kind: str, count: int) -> list[str]:
        ids = [ID_FORMATS[kind].format(n) for n in self.series.take(kind, count)]
        now = now_iso()
        self.conn.executemany(
            "INSERT INTO issued_id(id, kind, device_id, issued_at) VALUES (?, ?, ?, ?)",
            [(i, kind, device_id, now) for i in ids],
        )
        return ids

    def _batch(self, device_id: str, ops: Sequence[object]) -> list[OpResult]:
        self._now = now_iso()
        if not self.conn.is_sqlite:
            self._lock_op_ids(ops)
        self._b = b = self._prefetch(ops)
        self.series.reserve(_numbers_wanted(ops, b.outcomes))
        delta = _DeviceDelta()
        results = [self._one(device_id, raw, delta) for raw in ops]
        self._flush()
        c = self.conn
        if b.new_outcomes:
            c.executemany(
                "INSERT INTO op_outcome(op_id, kind, device_id, payload_hash, status, result, error, "
                "recorded_at, local_date, seq, applied_at, origin) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                b.new_outcomes,
            )
        if b.new_refs:
            c.executemany("INSERT INTO ref_map(local_ref, kind, central_id, op_id) VALUES (?,?,?,?)", b.new_refs)
        if b.new_versions:
            c.executemany(
                "INSERT INTO patient_version(uhid, version, record, op_id, changed_at) VALUES (?,?,?,?,?)",
                b.new_versions,
            )
        if delta.max_seq:
            row = c.execute(
                f"SELECT last_recorded_at FROM device WHERE device_id=?{c.for_update}", (device_id,)
            ).fetchone()
            last = row[0] if row else None
            if delta.last is not None and (last is None or datetime.fromisoformat(last) < delta.last):
                last = delta.last.isoformat()
            c.execute(
                f"UPDATE device SET max_seq={c.greatest}(max_seq, ?), ops_applied=ops_applied+?, "
                "last_recorded_at=? WHERE device_id=?",
                (delta.max_seq, delta.applied, last, device_id),
            )
        if b.changed and not c.is_sqlite:
            self._number_changes(b.changed)
        return results

    def _lock_op_ids(self, ops: Sequence[object]) -> None:
        """PostgreSQL: hold each op_id of the batch until COMMIT (see the module docstring)."""
        op_ids = sorted({o["op_id"] for o in ops if isinstance(o, dict) and isinstance(o.get("op_id"), str)})
        if op_ids:
            self._q(
                "SELECT pg_advisory_xact_lock(k) FROM (SELECT DISTINCT hashtextextended(x, 0) AS k "
                "FROM unnest(?::text[]) AS t(x) ORDER BY k) AS s",
                (op_ids,),
            ).fetchall()

    def _number_changes(self, uhids: list[str]) -> None:
        """PostgreSQL: give the patients this batch wrote their final change numbers,
        last thing before COMMIT and under a lock held through it, so numbers are
        handed out in commit order and a ``/patients/changes`` cursor never passes
        a change that commits later (see :mod:`opd_fallback.central.reads`). The
        numbers taken during the batch were placeholders, unique but not ordered."""
        self._q("SELECT pg_advisory_xact_lock(?, ?)", _CHANGE_LOCK).fetchall()
        self._q(
            "UPDATE patient SET change_seq=nextval('central_change_seq') WHERE uhid = ANY(?)",
            (sorted(set(uhids)),),
        )

    # ---- one op ---------------------------------------------------------
    def _one(self, device_id: str, raw: object, delta: _DeviceDelta) -> OpResult:
        op_id = raw.get("op_id") if isinstance(raw, dict) else None
        op_id = op_id if isinstance(op_id, str) else ""
        _count_seq(raw, device_id, delta)
        try:
            env = OpEnvelope.model_validate(raw)
        except ValidationError as exc:
            fields = [p.wire() for p in explain(exc)]
            return _result(op_id, "rejected", error={
                "code": "validation_failed", "message": "the op envelope is not valid", "fields": fields})
        unstorable = _unstorable(env)
        if unstorable:
            return _result(env.op_id, "rejected", error={
                "code": "validation_failed", "message": "the op envelope is not valid", "fields": unstorable})
        if env.device_id != device_id:
            return _result(env.op_id, "rejected", error={
                "code": "device_mismatch",
                "message": f"this token belongs to device {device_id}, not {env.device_id}"})
        big = big_int_path(env.payload)
        if big is not None:
            return _result(env.op_id, "rejected", error={
                "code": "validation_failed", "message": f"{big}: must be a whole number from 0 to 2^53 - 1",
                "fields": [{"field": big, "code": "too_large",
                            "message": "must be a whole number from 0 to 2^53 - 1"}]})
        origin = env.origin.wire() if env.origin is not None else None
        try:
            phash = payload_hash(env.payload, origin, env.kind)
        except ValueError as exc:
            return _result(env.op_id, "rejected", error={
                "code": "validation_failed", "message": f"payload: {exc}",
                "fields": [{"field": "payload", "code": "not_canonical",
                            "message": f"has no canonical JSON form (RFC 8785): {exc}"}]})
        b = self._b
        row = b.outcomes.get(env.op_id)
        if row is not None:
            if (row[0], row[1]) != (env.kind, env.device_id) or not _same_payload(row[2], env.payload, phash, origin):
                return _result(env.op_id, "rejected", error={
                    "code": "idempotency_mismatch",
                    "message": "this op_id was used before with another kind, device or payload"})
            status = "duplicate" if row[3] == "applied" else row[3]
            return _result(env.op_id, status, _loads(row[4]), _loads(row[5]))
        self._wrote = False
        try:
            result = self._apply(env)
        except _Outcome as out:
            if self._wrote:
                raise RuntimeError(f"op {env.op_id} ended {out.status} after writing: a bug") from out
            if out.status == "rejected":
                self._remember(env, phash, "rejected", None, out.error)
            return _result(env.op_id, out.status, error=out.error)
        self._remember(env, phash, "applied", result, None)
        delta.applied += 1
        if delta.last is None or env.recorded_at > delta.last:
            delta.last = env.recorded_at
        return _result(env.op_id, "applied", result)

    def _remember(self, env: OpEnvelope, phash: str, status: str, result: object, error: object) -> None:
        res = None if result is None else orjson.dumps(result).decode()
        err = None if error is None else orjson.dumps(error).decode()
        self._b.outcomes[env.op_id] = (env.kind, env.device_id, phash, status, res, err)
        origin = env.origin.wire() if env.origin is not None else None
        self._b.new_outcomes.append((
            env.op_id, env.kind, env.device_id, phash, status, res, err,
            env.recorded_at.isoformat(), _local_date(env.recorded_at), env.seq, self._now,
            None if origin is None else orjson.dumps(origin).decode(),
        ))

    def _apply(self, env: OpEnvelope) -> Result:
        try:
            payload = validate_payload(env.kind, env.payload)
        except ValidationError as exc:
            problems = explain(exc)
            raise _reject(
                "validation_failed",
                "; ".join(str(p) for p in problems) or "the payload is not valid",
                fields=[p.wire() for p in problems],
            ) from None
        return _HANDLERS[env.kind](self, env, payload)


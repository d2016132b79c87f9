"""Applying ops: the heart of the reference server.

One batch is one database transaction, committed (fsync once) before the
answer is sent, which is what makes the server fast enough to be the ceiling
the sync engine is measured against. An op and the row that remembers its
outcome are written together or not at all, and a failing op never undoes the
others. Plain prepared statements on purpose: no ORM objects per op.

How an op stays atomic without a SAVEPOINT each: every check that can end an
op (rejected / deferred / conflict) runs before its first write, and a write
followed by such an ending is refused as a bug (the whole batch then rolls
back and the client gets a 5xx, so it resends). The outcome rows, ref map
rows and patient versions are kept in memory during the batch and written
with ``executemany`` just before the single COMMIT; the ops of the batch see
them through the batch's dictionaries (prefetched in one query each).

Exactly once with several writers (``--workers N``, several servers on one
PostgreSQL), enforced by the database, not by a Python lock:
- SQLite: ``BEGIN IMMEDIATE`` takes the file's write lock before the remembered
  outcomes are read, so writers in any process take turns.
- PostgreSQL: before reading the remembered outcomes, a batch takes a
  transaction-scoped advisory lock on each of its op_ids (in one order, so two
  batches cannot deadlock on them). The same op_id arriving at two workers at
  once is applied by the first; the second waits for its COMMIT and then finds
  the outcome (READ COMMITTED: each statement sees what was committed before
  it). The primary keys (op_outcome.op_id, ref_map.local_ref, patient.uhid,
  patient_version, payment_void) are the last line: a batch that still loses a
  race to one of them is rolled back whole and run again (``_RETRIES``), and
  then finds the winner's outcome. Rows read to be changed (a reserved id, a
  patient being updated, the device's counters) are read ``FOR UPDATE``.
- Numbers come from :mod:`opd_fallback.central.series` (sequences on
  PostgreSQL), so ids never overlap across workers.

Decisions not spelled out by the contract (documented for the IT cell):
- a ``device_mismatch`` or malformed-envelope rejection (including a ``seq``
  above 2**63-1 or a ``recorded_at`` that cannot be placed in Asia/Kolkata) is *not* remembered
  under the op_id, so nobody can poison another device's op_id;
- a remembered ``rejected`` outcome is replayed as ``rejected`` (the original
  outcome); only a remembered ``applied`` is replayed as ``duplicate``;
- ids that look like central block ids (``KGMU`` + 9 digits for uhid, ``KR`` + 9
  digits for receipts, ``KS`` + 9 digits for samples) must have been issued to
  the sending device, else ``reserved_id_not_owned``; other receipt / sample
  numbers (the counter's own ``C07-R000043``) are taken as they are;
- ``patient.update`` is stale when the central version is above
  ``max(base_version, 1)``: an update of a patient the counter itself
  registered offline (base 0, central version 1) is not a conflict;
- an unknown ``local_ref`` in ``payment.void`` is ``reference_pending``
  (it may still arrive); an unknown ``central_id`` is ``void_target_missing``;
- payload equality (contract 1.1) is RFC 8785 canonical JSON with null-valued
  keys dropped (:func:`opd_fallback.domain.contract.canonical_payload`); a
  payload that has no canonical form (an integer beyond 2**53) is rejected as
  ``validation_failed`` and not remembered. Outcomes remembered before 1.1
  hold the old hash (sorted-key JSON as received) and are compared that way;
- ``max_seq`` counts the ``seq`` of every op of the token's device that carries
  a usable one, whatever its outcome, malformed envelopes included;
- ``lab.sample_collect`` (1.2) checks its ``depends_on`` first, so a tube of
  an order another device has not synced yet is ``deferred`` while the
  counter names that order's op; without such a dependency a tube no applied
  order has is ``rejected`` / ``unknown_sample``. Every event is kept (never
  updated); the tube's state is the event with the latest ``collected_at``
  (the op_id breaks a tie), whatever order they arrive in. The result's
  ``status`` is what this op recorded (a replay gives the same answer);
  ``GET /samples/{id}`` gives the tube's state now, and its ``collected_at``
  is that latest event's time, for a refused tube too (when it was drawn and
  refused); null only while no event has arrived;
- linking a ``local_ref`` to an existing patient (resolution ``link``) moves
  that patient up in ``/patients/changes``, so counters learn the new
  ``local_refs`` entry.

Contract 1.2 here: an integer beyond 2**53-1 is ``validation_failed`` naming
its field (not remembered, like any payload without a canonical form); an
``origin`` is kept in ``op_outcome.origin`` and hashed with the payload; a
null inside ``patient.update``'s ``changes`` counts for idempotency. Hashes
whose input is the same as under 1.1 keep the ``jcs:`` prefix, the others
(an origin, a null in ``changes``) are ``jcs2:``, and a ``jcs:`` row is compared
with the 1.1 form, so a resend of an op remembered before 1.2 is still a
duplicate. A deferred op's ``error.waiting_for`` names the op or local_ref it
waits on; a tube whose sample id another op's tube has is ``sample_id_reused``;
a waived payment of an item the category does not exempt without a ``waiver``
is applied with ``waiver_unapproved`` (one warning per such item).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import ValidationError

from opd_fallback.central.master import MasterIndex
from opd_fallback.central.series import series_for
from opd_fallback.domain import identity, registry
from opd_fallback.domain.clock import IST, now_iso
from opd_fallback.domain.contract import (
    CANDIDATE_FIELDS,
    OpEnvelope,
    big_int_path,
    canonical_op,
    canonical_payload,
    drop_nulls,
)
from opd_fallback.domain.errors import explain
from opd_fallback.domain.payloads import (
    MAX_INT,
    LabOrder,
    PatientFields,
    PatientRegister,
    PatientUpdate,
    PaymentRecord,
    PaymentVoid,
    Ref,
    SampleCollect,
    VisitOpen,
    validate_payload,
)
from opd_fallback.serverdb import Connection

ID_FORMATS = {"uhid": "KGMU{:09d}", "receipt": "KR{:09d}", "sample": "KS{:09d}"}
ID_PATTERNS = {k: re.compile("^" + v.replace("{:09d}", r"\d{9}") + "$") for k, v in ID_FORMATS.items()}
PATIENT_COLUMNS = tuple(PatientFields.model_fields)
_PATIENT_COLS = ("uhid", *PATIENT_COLUMNS, "version", "change_seq", "created_at", "updated_at", "device_id", "op_id")
_INSERT_PATIENT = f"INSERT INTO patient({','.join(_PATIENT_COLS)}) VALUES ({','.join('?' * len(_PATIENT_COLS))})"
CANDIDATE_KEYS = CANDIDATE_FIELDS
_REQUIRED_PATIENT = ("name", "sex", "category")
# record kind -> (its table, its central id column): named as the kind that creates it
# (domain/registry.py: the record kind, and the result key holding its central id)
_REF_TABLES = {registry.CREATES[k]: (registry.CREATES[k], col) for k, col in registry.CENTRAL_ID_KEYS.items()}


class _Outcome(Exception):
    """Raised inside an op's apply to end it with a non-applied status."""

    def __init__(self, status: str, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.error: dict[str, Any] = {"code": code, "message": message, **extra}


def _reject(code: str, message: str, **extra: Any) -> _Outcome:
    return _Outcome("rejected", code, message, **extra)


def _field_reject(code: str, field: str, fcode: str, message: str) -> _Outcome:
    return _reject(code, f"{field}: {message}", fields=[{"field": field, "code": fcode, "message": message}])


def _result(op_id: str, status: str, result: Any = None, error: Any = None) -> dict[str, Any]:
    return {"op_id": op_id, "status": status, "result": result, "error": error}


HASH_PREFIX = "jcs:"  # marks hashes of the 1.1 canonical form; older rows have none
HASH_PREFIX_12 = "jcs2:"  # 1.2: the input differs from 1.1's (an origin, a null in changes)


def _differs_from_1_1(payload: Any, origin: Any, kind: str | None) -> bool:
    if isinstance(origin, dict) and drop_nulls(origin):
        return True
    changes = payload.get("changes") if kind == "patient.update" and isinstance(payload, dict) else None
    return isinstance(changes, dict) and None in changes.values()


def payload_hash(payload: Any, origin: Any = None, kind: str | None = None) -> str:
    """The contract's payload equality (RFC 8785, absent == null; 1.2 with the
    origin and the nulls of ``changes``) hashed. Raises ``ValueError`` for a
    payload with no canonical form."""
    if _differs_from_1_1(payload, origin, kind):
        return HASH_PREFIX_12 + hashlib.sha256(canonical_op(payload, origin, kind)).hexdigest()
    return HASH_PREFIX + hashlib.sha256(canonical_payload(payload)).hexdigest()


def _same_payload(stored: str, payload: Any, phash: str, origin: Any = None) -> bool:
    """Does a remembered hash match this payload? Pre-1.1 rows hold the SHA-256 of
    sorted-key JSON as it was received (nulls kept, as the counter then sent them).
    A 1.1 row (``jcs:``) of a patient.update was hashed with every null dropped,
    and no op then had an origin."""
    if stored.startswith(HASH_PREFIX_12):
        return stored == phash
    if stored.startswith(HASH_PREFIX):
        if stored == phash:
            return True
        has_origin = isinstance(origin, dict) and bool(drop_nulls(origin))
        return (phash.startswith(HASH_PREFIX_12) and not has_origin
                and stored == HASH_PREFIX + hashlib.sha256(canonical_payload(payload)).hexdigest())
    if isinstance(origin, dict) and drop_nulls(origin):
        return False  # no op had an origin before 1.2
    legacy = hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return stored == legacy or stored == _legacy_with_null_ref_keys(payload)


def _legacy_with_null_ref_keys(payload: Any) -> str:
    """The pre-1.1 hash of the form the 1.0 counter sent: every reference with both
    keys, the missing one null. A resend by an upgraded counter (one key) of an op
    the old server already applied must still be a duplicate, not a mismatch."""
    if not isinstance(payload, dict):
        return ""
    old = {k: ({"central_id": v.get("central_id"), "local_ref": v.get("local_ref")}
               if k in _REF_KEYS and isinstance(v, dict) else v) for k, v in payload.items()}
    return hashlib.sha256(orjson.dumps(old, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass(slots=True)
class _DeviceDelta:
    max_seq: int = 0
    applied: int = 0
    last: datetime | None = None


_REF_KEYS = registry.RECORD_KINDS  # the payload fields that hold a reference
_CHUNK = 900
_MAX_SQL_INT = 2**63 - 1  # SQLite INTEGER and PostgreSQL BIGINT are signed 64-bit numbers
_MOBILE_LIMIT = 200  # a shared phone (a village's, a placeholder) is compared with this many at most
_DEDUPE_KEYS = (*CANDIDATE_KEYS, "age_months", "age_days", "birth_date", "abha_number")
_RETRIES = 5  # PostgreSQL: a batch that lost a race to another writer is run again this often
_CHANGE_LOCK = (0x0FD, 1)  # pg_advisory_xact_lock(int, int): numbering patient changes in commit order


@dataclass(slots=True)
class _BatchState:
    """What the ops of one batch see of each other before the batch is written."""

    # op_id -> (kind, device_id, payload_hash, status, result_json, error_json)
    outcomes: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    # local_ref -> (kind, central_id, op_id), or None when known to be absent
    refs: dict[str, tuple[str, str, str] | None] = field(default_factory=dict)
    new_outcomes: list[tuple[Any, ...]] = field(default_factory=list)
    new_refs: list[tuple[str, str, str, str]] = field(default_factory=list)
    new_versions: list[tuple[Any, ...]] = field(default_factory=list)
    categories: dict[str, str] = field(default_factory=dict)  # uhid -> category
    changed: list[str] = field(default_factory=list)  # uhids written, for their change cursor
    # column (mobile / abha_number) -> value -> uhid -> the fields dedupe compares
    patients_by: dict[str, dict[str, dict[str, dict[str, Any]]]] = field(
        default_factory=lambda: {"mobile": {}, "abha_number": {}})
    visit_owner: dict[str, str] = field(default_factory=dict)  # visit_id -> uhid


_Handler = Callable[["Applier", OpEnvelope, Any], dict[str, Any]]
# Which method applies which op kind: each registers below (the kinds are domain/registry.py's).
_HANDLERS: registry.Handlers[_Handler] = registry.Handlers("central apply (central/apply.py)")


class Applier:
    """Applies batches on one writer connection (one batch at a time: a lock
    guards the connection; an app keeps several appliers to write in parallel)."""

    def __init__(self, conn: Connection, master: MasterIndex) -> None:
        self.conn = conn
        self.master = master
        self.lock = threading.Lock()
        self.series = series_for(conn)
        self._pending: list[tuple[str, tuple[Any, ...]]] = []

    def _next(self, name: str) -> int:
        """The next number of a series (see :mod:`opd_fallback.central.series`)."""
        return self.series.take(name)[0]

    # ---- transactions ---------------------------------------------------
    def _write(self, fn: Any, *args: Any) -> Any:
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

    def apply_batch(self, device_id: str, ops: list[Any]) -> list[dict[str, Any]]:
        """Apply ops in order for the device owning the token; one entry per op."""
        results: list[dict[str, Any]] = self._write(self._batch, device_id, ops)
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

    def _batch(self, device_id: str, ops: list[Any]) -> list[dict[str, Any]]:
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

    def _lock_op_ids(self, ops: list[Any]) -> None:
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

    def _prefetch(self, ops: list[Any]) -> _BatchState:
        """One query each for the remembered outcomes and the local_refs this batch mentions."""
        b = _BatchState()
        op_ids: set[str] = set()
        refs: set[str] = set()
        dedupe_keys: dict[str, list[str]] = {"mobile": [], "abha_number": []}
        for raw in ops:
            if not isinstance(raw, dict):
                continue
            if isinstance(raw.get("op_id"), str):
                op_ids.add(raw["op_id"])
            deps = raw.get("depends_on")
            if isinstance(deps, list):
                op_ids.update(d for d in deps if isinstance(d, str))
            payload = raw.get("payload")
            if isinstance(payload, dict):
                if raw.get("kind") == "patient.register":
                    for column, values in dedupe_keys.items():
                        if isinstance(payload.get(column), str):
                            values.append(payload[column])
                if isinstance(payload.get("local_ref"), str):
                    refs.add(payload["local_ref"])
                for key in _REF_KEYS:
                    ref = payload.get(key)
                    if isinstance(ref, dict) and isinstance(ref.get("local_ref"), str):
                        refs.add(ref["local_ref"])
        for chunk in _chunks(sorted(op_ids)):
            for row in self._q(
                "SELECT op_id, kind, device_id, payload_hash, status, result, error FROM op_outcome "
                f"WHERE op_id IN ({','.join('?' * len(chunk))})", chunk,
            ):
                b.outcomes[row[0]] = row[1:]
        b.refs = dict.fromkeys(refs)
        for column, values in dedupe_keys.items():
            self._load_patients(b, column, values)
        for chunk in _chunks(sorted(refs)):
            for row in self._q(
                f"SELECT local_ref, kind, central_id, op_id FROM ref_map WHERE local_ref IN ({','.join('?' * len(chunk))})",
                chunk,
            ):
                b.refs[row[0]] = (row[1], row[2], row[3])
        return b

    def _w(self, sql: str, params: tuple[Any, ...]) -> None:
        """A write of the current op: after it, the op can no longer end otherwise than applied.
        Writes wait in order until the next read (or the end of the batch) and are then sent
        together, runs of the same statement as one ``executemany``."""
        self._wrote = True
        self._pending.append((sql, params))

    def _flush(self) -> None:
        """Send the waiting writes, one ``executemany`` per statement in the order each was
        first used. Reordering is safe because an op that changes a row written earlier in
        the batch (an update, a void, a reserved id) reads it first, and a read flushes."""
        pending, self._pending = self._pending, []
        by_sql: dict[str, list[tuple[Any, ...]]] = {}
        for sql, params in pending:
            by_sql.setdefault(sql, []).append(params)
        for sql, rows in by_sql.items():
            if len(rows) == 1:
                self.conn.execute(sql, rows[0])
            else:
                self.conn.executemany(sql, rows)

    def _q(self, sql: str, params: Any = ()) -> Any:
        """A read during the batch: it sees the batch's own writes, sent first."""
        if self._pending:
            self._flush()
        return self.conn.execute(sql, params)

    # ---- one op ---------------------------------------------------------
    def _one(self, device_id: str, raw: Any, delta: _DeviceDelta) -> dict[str, Any]:
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

    def _remember(self, env: OpEnvelope, phash: str, status: str, result: Any, error: Any) -> None:
        res = None if result is None else orjson.dumps(result).decode()
        err = None if error is None else orjson.dumps(error).decode()
        self._b.outcomes[env.op_id] = (env.kind, env.device_id, phash, status, res, err)
        origin = env.origin.wire() if env.origin is not None else None
        self._b.new_outcomes.append((
            env.op_id, env.kind, env.device_id, phash, status, res, err,
            env.recorded_at.isoformat(), _local_date(env.recorded_at), env.seq, self._now,
            None if origin is None else orjson.dumps(origin).decode(),
        ))

    def _apply(self, env: OpEnvelope) -> dict[str, Any]:
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

    # ---- shared checks --------------------------------------------------
    def _deps(self, env: OpEnvelope) -> None:
        outcomes = self._b.outcomes
        for dep in env.depends_on:
            row = outcomes.get(dep)
            if row is None or row[3] != "applied":
                raise _Outcome("deferred", "dependency_missing", f"op {dep} is not applied yet", op_id=dep,
                               waiting_for={"op_id": dep})

    def _known(self, local_ref: str) -> tuple[str, str, str] | None:
        refs = self._b.refs
        if local_ref in refs:
            return refs[local_ref]
        row = self._q(
            "SELECT kind, central_id, op_id FROM ref_map WHERE local_ref=?", (local_ref,)
        ).fetchone()
        refs[local_ref] = known = None if row is None else (row[0], row[1], row[2])
        return known

    def _own_ref(self, env: OpEnvelope, local_ref: str) -> None:
        if not local_ref.startswith(env.device_id + "-"):
            raise _field_reject("validation_failed", "local_ref", "not_own_device",
                                f"must begin with this device's id ({env.device_id}-)")
        known = self._known(local_ref)
        if known is not None:
            raise _field_reject("validation_failed", "local_ref", "already_used",
                                f"{local_ref} already names a record made by op {known[2]}")

    def _ref(self, ref: Ref, kind: str, field: str, *, missing: str = "unknown_reference") -> str:
        if ref.central_id is not None:
            table, col = _REF_TABLES[kind]
            if self._q(f"SELECT 1 FROM {table} WHERE {col}=?", (ref.central_id,)).fetchone() is None:
                raise _field_reject(missing, field, "not_found", f"no {kind} with central id {ref.central_id}")
            return ref.central_id
        assert ref.local_ref is not None
        known = self._known(ref.local_ref)
        if known is None:
            raise _Outcome("deferred", "reference_pending",
                           f"{field}: {ref.local_ref} is not known here yet", local_ref=ref.local_ref,
                           waiting_for={"local_ref": ref.local_ref})
        if known[0] != kind:
            raise _field_reject(missing, field, "wrong_kind", f"{ref.local_ref} is a {known[0]}, not a {kind}")
        return known[1]

    def _map(self, local_ref: str, kind: str, central_id: str, op_id: str) -> None:
        self._wrote = True
        self._b.refs[local_ref] = (kind, central_id, op_id)
        self._b.new_refs.append((local_ref, kind, central_id, op_id))

    def _reserved(self, env: OpEnvelope, kind: str, value: str, field: str) -> bool:
        """True if ``value`` is a central block id (then it must be this device's, unused).
        The caller marks it used with ``_use_reserved`` once every check has passed."""
        if not ID_PATTERNS[kind].match(value):
            return False
        row = self._q(
            f"SELECT device_id, used_by_op FROM issued_id WHERE id=? AND kind=?{self.conn.for_update}",
            (value, kind),
        ).fetchone()
        if row is None or row[0] != env.device_id:
            raise _field_reject("reserved_id_not_owned", field, "not_owned",
                                f"{value} was not issued to device {env.device_id}")
        if row[1] is not None and row[1] != env.op_id:
            raise _field_reject("reserved_id_not_owned", field, "already_used",
                                f"{value} was already used by op {row[1]}")
        return True

    def _use_reserved(self, value: str, op_id: str) -> None:
        self._w("UPDATE issued_id SET used_by_op=? WHERE id=?", (op_id, value))

    def _no_resolution(self, env: OpEnvelope) -> None:
        if env.resolution is not None:
            raise _field_reject("validation_failed", "resolution", "not_allowed",
                                f"a {env.kind} op takes no resolution")

    # ---- kinds ----------------------------------------------------------
    @_HANDLERS.register("patient.register")
    def _patient_register(self, env: OpEnvelope, p: PatientRegister) -> dict[str, Any]:
        self._own_ref(env, p.local_ref)
        res = env.resolution
        if res is not None and res.action == "apply":
            raise _field_reject("validation_failed", "resolution.action", "not_allowed",
                                "patient.register takes link or create_new")
        if res is not None and res.action == "link" and not res.uhid:
            raise _field_reject("validation_failed", "resolution.uhid", "required", "is required to link")
        reserved = p.uhid is not None and self._reserved(env, "uhid", p.uhid, "uhid")
        if p.uhid is not None and not reserved:
            raise _field_reject("reserved_id_not_owned", "uhid", "not_issued",
                                f"{p.uhid} is not a central uhid issued to device {env.device_id}")
        self._deps(env)
        if res is not None and res.action == "link":
            linked = res.uhid
            assert linked is not None  # required above
            if self._q("SELECT 1 FROM patient WHERE uhid=?", (linked,)).fetchone() is None:
                raise _field_reject("unknown_reference", "resolution.uhid", "not_found",
                                    f"no patient with uhid {linked}")
            self._map(p.local_ref, "patient", linked, env.op_id)
            # the patient gained a local_ref: counters read it from /patients/changes
            self._w("UPDATE patient SET change_seq=? WHERE uhid=?", (self._next("change"), linked))
            self._b.changed.append(linked)
            return {"uhid": linked, "linked": True}
        rec = p.model_dump(mode="json", include=set(PATIENT_COLUMNS))
        if res is None:
            candidates = self._candidates(rec)
            if candidates:
                raise _Outcome("conflict", "possible_duplicate",
                               f"{len(candidates)} existing patient(s) may be the same person",
                               candidates=candidates)
        if reserved:
            assert p.uhid is not None
            self._use_reserved(p.uhid, env.op_id)
        uhid = p.uhid or ID_FORMATS["uhid"].format(self._next("uhid"))
        change = self._next("change")
        vals = (uhid, *(rec[k] for k in PATIENT_COLUMNS), 1, change, self._now, self._now, env.device_id, env.op_id)
        self._w(_INSERT_PATIENT, vals)
        self._b.categories[uhid] = rec["category"]
        self._b.changed.append(uhid)
        self._index_patient(uhid, rec)
        self._version(uhid, 1, rec, env.op_id)
        self._map(p.local_ref, "patient", uhid, env.op_id)
        return {"uhid": uhid, "linked": False}

    def _candidates(self, rec: dict[str, Any]) -> list[dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        if rec.get("abha_number"):
            for old in self._patients_by("abha_number", rec["abha_number"]):
                found[old["uhid"]] = old
        if rec.get("mobile"):
            for old in self._patients_by("mobile", rec["mobile"])[:_MOBILE_LIMIT]:
                if old["uhid"] not in found and identity.judge(rec, old) is not None:
                    found[old["uhid"]] = old
        return [{k: v[k] for k in CANDIDATE_KEYS} for v in found.values()]

    def _patients_by(self, column: str, value: str) -> list[dict[str, Any]]:
        """Patients whose ``column`` (mobile / abha_number) is ``value``: from the batch's
        index (prefetched, kept up to date by the batch's own writes), else one query."""
        index = self._b.patients_by[column]
        if value not in index:
            self._load_patients(self._b, column, [value])
        return list(index[value].values())

    def _load_patients(self, b: _BatchState, column: str, values: list[str]) -> None:
        index = b.patients_by[column]
        for chunk in _chunks(sorted(set(values))):
            for v in chunk:
                index[v] = {}
            for row in self._q(
                f"SELECT {','.join(_DEDUPE_KEYS)} FROM patient WHERE {column} IN ({','.join('?' * len(chunk))})",
                chunk,
            ).fetchall():
                old = dict(zip(_DEDUPE_KEYS, row))
                index[old[column]][old["uhid"]] = old

    def _index_patient(self, uhid: str, rec: dict[str, Any]) -> None:
        """A patient written by this batch: what later ops of the batch must find by mobile / ABHA."""
        row = {"uhid": uhid, **{k: rec.get(k) for k in _DEDUPE_KEYS[1:]}}
        for column, index in self._b.patients_by.items():
            for bucket in index.values():
                bucket.pop(uhid, None)
            if rec.get(column) in index:
                index[rec[column]][uhid] = row

    def _version(self, uhid: str, version: int, rec: dict[str, Any], op_id: str) -> None:
        self._b.new_versions.append((uhid, version, orjson.dumps(rec).decode(), op_id, self._now))

    def patient_record(self, uhid: str, *, for_update: bool = False) -> dict[str, Any] | None:
        cols = ("uhid", *PATIENT_COLUMNS, "version", "updated_at")
        lock = self.conn.for_update if for_update else ""
        row = self._q(f"SELECT {','.join(cols)} FROM patient WHERE uhid=?{lock}", (uhid,)).fetchone()
        return None if row is None else dict(zip(cols, row))

    @_HANDLERS.register("patient.update")
    def _patient_update(self, env: OpEnvelope, p: PatientUpdate) -> dict[str, Any]:
        res = env.resolution
        if res is not None and res.action != "apply":
            raise _field_reject("validation_failed", "resolution.action", "not_allowed",
                                "patient.update takes the resolution apply")
        if res is not None and res.base_version is None:
            raise _field_reject("validation_failed", "resolution.base_version", "required",
                                "is required with the resolution apply")
        for key in _REQUIRED_PATIENT:
            if key in p.changes and p.changes[key] is None:
                raise _field_reject("validation_failed", f"changes.{key}", "required", "cannot be removed")
        self._deps(env)
        uhid = self._ref(p.patient, "patient", "patient")
        current = self.patient_record(uhid, for_update=True)
        assert current is not None
        base = res.base_version if res is not None and res.base_version is not None else p.base_version
        if current["version"] > max(base, 1):
            raise _Outcome("conflict", "stale_update",
                           f"the patient is at version {current['version']} centrally, not {base}",
                           current=current)
        version = current["version"] + 1
        sets = ",".join(f"{k}=?" for k in p.changes)
        self._w(
            f"UPDATE patient SET {sets}{',' if sets else ''} version=?, change_seq=?, updated_at=? WHERE uhid=?",
            (*p.changes.values(), version, self._next("change"), self._now, uhid),
        )
        rec = {k: v for k, v in (self.patient_record(uhid) or {}).items() if k in PATIENT_COLUMNS}
        self._b.categories[uhid] = rec["category"]
        self._b.changed.append(uhid)
        self._index_patient(uhid, rec)
        self._version(uhid, version, rec, env.op_id)
        return {"uhid": uhid, "version": version}

    @_HANDLERS.register("visit.open")
    def _visit_open(self, env: OpEnvelope, p: VisitOpen) -> dict[str, Any]:
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
    def _lab_order(self, env: OpEnvelope, p: LabOrder) -> dict[str, Any]:
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

    @_HANDLERS.register("payment.record")
    def _payment_record(self, env: OpEnvelope, p: PaymentRecord) -> dict[str, Any]:
        self._no_resolution(env)
        self._own_ref(env, p.local_ref)
        reserved = self._reserved(env, "receipt", p.receipt_no, "receipt_no")
        self._deps(env)
        uhid = self._ref(p.patient, "patient", "patient")
        visit_id = self._ref(p.visit, "visit", "visit") if p.visit is not None else None
        order_id = self._ref(p.lab_order, "lab_order", "lab_order") if p.lab_order is not None else None
        receipt_id = p.receipt_no if reserved else ID_FORMATS["receipt"].format(self._next("receipt"))
        warnings = self._price_warnings(uhid, p)
        items = [i.model_dump() for i in p.items]
        if reserved:
            self._use_reserved(p.receipt_no, env.op_id)
        self._w(
            "INSERT INTO payment(receipt_id, receipt_no, uhid, visit_id, order_id, amount_paise, mode, mode_ref, "
            "items, warnings, voided, device_id, local_date, op_id, waiver) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (receipt_id, p.receipt_no, uhid, visit_id, order_id, p.amount_paise, p.mode, p.mode_ref,
             orjson.dumps(items).decode(), orjson.dumps(warnings).decode(), 0, env.device_id,
             _local_date(env.recorded_at), env.op_id,
             None if p.waiver is None else orjson.dumps(p.waiver.model_dump()).decode()),
        )
        self._map(p.local_ref, "payment", receipt_id, env.op_id)
        return {"receipt_id": receipt_id, "warnings": warnings}

    def _price_warnings(self, uhid: str, p: PaymentRecord) -> list[dict[str, Any]]:
        """A payment is a fact: disagreements become warnings, never a rejection."""
        m = self.master
        exempt: set[str] = set()
        if m.exempt:
            category = self._b.categories.get(uhid)
            if category is None:
                row = self._q("SELECT category FROM patient WHERE uhid=?", (uhid,)).fetchone()
                category = self._b.categories[uhid] = row[0] if row else ""
            exempt = m.exempt.get(category, set())
        warnings: list[dict[str, Any]] = []
        for item in p.items:
            price = m.price(item.code)
            if price is None:
                warnings.append({"code": "unknown_item", "item": item.code})
                continue
            expected = 0 if item.code in exempt else price * item.qty
            if p.mode != "waived" and item.amount_paise != expected:
                warnings.append({"code": "amount_mismatch", "item": item.code, "expected_paise": expected})
            if p.mode == "waived" and p.waiver is None and expected > 0:
                warnings.append({"code": "waiver_unapproved", "item": item.code})
        return warnings

    @_HANDLERS.register("payment.void")
    def _payment_void(self, env: OpEnvelope, p: PaymentVoid) -> dict[str, Any]:
        self._no_resolution(env)
        self._deps(env)
        receipt_id = self._ref(p.payment, "payment", "payment", missing="void_target_missing")
        row = self._q(
            f"SELECT amount_paise, voided FROM payment WHERE receipt_id=?{self.conn.for_update}", (receipt_id,)
        ).fetchone()
        if row[1]:
            raise _field_reject("void_target_missing", "payment", "already_voided",
                                f"payment {receipt_id} is already voided")
        self._w("UPDATE payment SET voided=1 WHERE receipt_id=?", (receipt_id,))
        self._w(
            "INSERT INTO payment_void(receipt_id, reason, amount_paise, device_id, local_date, op_id) "
            "VALUES (?,?,?,?,?,?)",
            (receipt_id, p.reason, row[0], env.device_id, _local_date(env.recorded_at), env.op_id),
        )
        return {"receipt_id": receipt_id, "voided": True}

    @_HANDLERS.register("lab.sample_collect")
    def _sample_collect(self, env: OpEnvelope, p: SampleCollect) -> dict[str, Any]:
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


def _count_seq(raw: Any, device_id: str, delta: _DeviceDelta) -> None:
    """Contract 1.1: ``max_seq`` is the highest seq received from the device in any
    request, whatever its outcome, so a seq is counted before anything is checked
    (an op naming another device is that device's numbering, not this one's).
    1.2: a seq beyond 2**53-1 is invalid and not counted, so a counter restored
    after such a mistake still has valid numbers above ``max_seq``."""
    if not isinstance(raw, dict) or raw.get("device_id") != device_id:
        return
    seq = raw.get("seq")
    if type(seq) is int and 0 < seq <= MAX_INT and seq > delta.max_seq:
        delta.max_seq = seq


_HANDLERS.complete()
# The numbers an op of each kind may take (domain/registry.py); a register or payment
# bringing its own block id (uhid / receipt_no) takes no new one.
_WANTS: dict[str, tuple[str, ...]] = {k.name: k.numbers for k in registry.KINDS if k.numbers}


def _numbers_wanted(ops: list[Any], remembered: dict[str, Any]) -> dict[str, int]:
    """At most how many numbers of each series the batch's new ops will take."""
    wanted: dict[str, int] = {}
    for raw in ops:
        if not isinstance(raw, dict) or raw.get("op_id") in remembered:
            continue
        given = raw.get("payload")
        payload: dict[str, Any] = given if isinstance(given, dict) else {}
        for name in _WANTS.get(str(raw.get("kind")), ()):
            if name == "uhid" and isinstance(payload.get("uhid"), str):
                continue
            if name == "receipt" and ID_PATTERNS["receipt"].match(str(payload.get("receipt_no"))):
                continue
            wanted[name] = wanted.get(name, 0) + 1
    return wanted


def _unstorable(env: OpEnvelope) -> list[dict[str, str]]:
    """Envelope values the model accepts but the server cannot store: they would
    fail the whole batch at the INSERT (a 5xx the counter resends forever)."""
    fields: list[dict[str, str]] = []
    if env.seq > _MAX_SQL_INT:
        fields.append({"field": "seq", "code": "too_large", "message": f"must be at most {_MAX_SQL_INT}"})
    try:
        _local_date(env.recorded_at)
    except OverflowError:
        fields.append({"field": "recorded_at", "code": "out_of_range",
                       "message": "is too far from today to be placed in Asia/Kolkata time"})
    return fields


def _chunks(items: list[str]) -> list[list[str]]:
    return [items[i : i + _CHUNK] for i in range(0, len(items), _CHUNK)]


def _local_date(ts: datetime) -> str:
    return ts.astimezone(IST).date().isoformat()


def _loads(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)

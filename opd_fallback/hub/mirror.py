"""The hub's rules: take a counter's ops idempotently, hand out everything new by cursor.

- An op is stored once per ``op_id``, its envelope kept as received. The same
  op again (same kind, device, seq and payload) is ``duplicate``; the same
  op_id with other content is ``rejected`` / ``idempotency_mismatch``. A later
  ``resolution`` (a person's decision after a central conflict) replaces the
  stored one, since the counter resends that op to central with it.
- A token's device may push only its own ops (``device_mismatch``): the hub
  never lets one counter speak for another.
- Every new op and every newly learned central id takes the next hub
  sequence number inside the push's one write transaction, so a reader's
  snapshot always sees a gap-free prefix and a cursor never skips anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError

from opd_fallback.domain import shared
from opd_fallback.domain.clock import now_iso
from opd_fallback.domain.contract import OpEnvelope
from opd_fallback.domain.errors import explain
from opd_fallback.hub.db import next_hub_seq

MAX_PUSH_OPS = 500
MAX_PUSH_BYTES = 1024 * 1024
MAX_PAGE = 2000


def fingerprint(op: dict[str, Any]) -> str:
    """What makes two pushes the same op: kind, device, seq and payload (canonical JSON),
    and (contract 1.2) its origin when it has one (an op without keeps its old fingerprint)."""
    body = {k: op.get(k) for k in ("kind", "device_id", "seq", "payload", "depends_on", "recorded_at")}
    if op.get("origin"):
        body["origin"] = op["origin"]
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS).decode()


def _rejected(op_id: Any, code: str, message: str) -> dict[str, Any]:
    return {"op_id": str(op_id or ""), "status": "rejected", "error": {"code": code, "message": message}}


def _index(conn: Any, op: dict[str, Any]) -> None:
    rec = shared.record_of(op)
    if rec is not None:
        conn.execute(
            "INSERT OR IGNORE INTO record(local_ref, kind, device_id, op_id, recorded_at, patient_ref, visit_ref, "
            "lab_order_ref, name, mobile, uhid, detail) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (rec.local_ref, rec.kind, rec.device_id, rec.op_id, rec.recorded_at, rec.patient_ref, rec.visit_ref,
             rec.lab_order_ref, rec.name, rec.mobile, rec.uhid, orjson.dumps(rec.detail).decode()),
        )
        return
    change = shared.patient_changes(op)
    if change is not None:
        ref, fields = change
        sets = {k: fields[k] for k in ("name", "mobile") if k in fields}
        if sets:
            assign = ", ".join(f"{k}=?" for k in sets)
            conn.execute(f"UPDATE record SET {assign} WHERE kind='patient' AND (local_ref=? OR uhid=?)",
                         (*sets.values(), ref, ref))
        return
    target = shared.voided_payment(op)
    if target is not None:
        conn.execute("UPDATE record SET voided=1 WHERE kind='payment' AND local_ref=?", (target,))


@dataclass
class PushOutcome:
    results: list[dict[str, Any]]
    central_ids_new: int
    hub_seq: int


def push(conn: Any, device_id: str, ops: list[Any], central_ids: list[Any],
         withdrawn: list[Any] | None = None) -> PushOutcome:
    """Store a counter's ops and learned ids in one transaction; returns after COMMIT."""
    results: list[dict[str, Any]] = []
    now = now_iso()
    new_ids = 0
    conn.execute("BEGIN IMMEDIATE")
    try:
        for raw in ops:
            if not isinstance(raw, dict):
                results.append(_rejected("", "validation_failed", "an op must be a JSON object"))
                continue
            op_id = raw.get("op_id")
            try:
                env = OpEnvelope.model_validate(raw)
            except ValidationError as exc:
                words = "; ".join(str(p) for p in explain(exc)) or "the op envelope is not valid"
                results.append(_rejected(op_id, "validation_failed", words))
                continue
            if env.device_id != device_id:
                results.append(_rejected(op_id, "device_mismatch",
                                         f"this token belongs to counter {device_id}, not {env.device_id}"))
                continue
            fp = fingerprint(raw)
            row = conn.execute("SELECT fingerprint, envelope FROM op WHERE op_id=?", (env.op_id,)).fetchone()
            if row is not None:
                if row[0] != fp:
                    results.append(_rejected(op_id, "idempotency_mismatch",
                                             f"op {env.op_id} was stored before with other content"))
                    continue
                old = orjson.loads(row[1])
                if old.get("resolution") != raw.get("resolution"):
                    conn.execute("UPDATE op SET envelope=? WHERE op_id=?", (orjson.dumps(raw), env.op_id))
                results.append({"op_id": env.op_id, "status": "duplicate", "error": None})
                continue
            hub_seq = next_hub_seq(conn)
            conn.execute(
                "INSERT INTO op(hub_seq, op_id, device_id, seq, kind, recorded_at, envelope, fingerprint, "
                "received_at) VALUES (?,?,?,?,?,?,?,?,?)",
                (hub_seq, env.op_id, env.device_id, env.seq, env.kind, env.recorded_at.isoformat(),
                 orjson.dumps(raw), fp, now),
            )
            _index(conn, raw)
            results.append({"op_id": env.op_id, "status": "stored", "error": None})
        for item in central_ids:
            if not isinstance(item, dict):
                continue
            local_ref, kind, cid = item.get("local_ref"), item.get("kind"), item.get("central_id")
            if not (isinstance(local_ref, str) and isinstance(cid, str) and local_ref and cid
                    and kind in shared.RECORD_KINDS):
                continue
            local_ref = local_ref.upper()
            row = conn.execute("SELECT central_id FROM central_id WHERE local_ref=?", (local_ref,)).fetchone()
            if row is not None and row[0] == cid:
                continue
            hub_seq = next_hub_seq(conn)
            conn.execute(
                "INSERT INTO central_id(local_ref, kind, central_id, reported_by, reported_at, hub_seq) "
                "VALUES (?,?,?,?,?,?) ON CONFLICT(local_ref) DO UPDATE SET central_id=excluded.central_id, "
                "reported_by=excluded.reported_by, reported_at=excluded.reported_at, hub_seq=excluded.hub_seq",
                (local_ref, kind, cid, device_id, now, hub_seq),
            )
            new_ids += 1
        for op_id in withdrawn or []:
            row = conn.execute("SELECT device_id FROM op WHERE op_id=?", (str(op_id),)).fetchone()
            if row is None or row[0] != device_id:
                continue  # only its own counter withdraws an op, and only one the hub holds
            if conn.execute("SELECT 1 FROM withdrawn WHERE op_id=?", (str(op_id),)).fetchone():
                continue
            conn.execute("INSERT INTO withdrawn(op_id, device_id, at, hub_seq) VALUES (?,?,?,?)",
                         (str(op_id), device_id, now, next_hub_seq(conn)))
        conn.execute("UPDATE device SET last_push_at=? WHERE device_id=?", (now, device_id))
        top = conn.execute("SELECT coalesce(max(value), 0) FROM hub_counter").fetchone()[0]
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return PushOutcome(results, new_ids, int(top))


def changes(conn: Any, device_id: str, cursor: int, limit: int, *,
            include_own: bool = False) -> bytes:
    """Everything after ``cursor`` in hub order, as the JSON answer (ops embedded verbatim).

    The cursor advances over this device's own ops too (they are simply not
    sent unless ``include_own``), so a page can be empty yet not ``done``."""
    conn.execute("BEGIN")  # one snapshot for both tables
    try:
        ops = conn.execute(
            "SELECT hub_seq, device_id, received_at, envelope FROM op WHERE hub_seq > ? ORDER BY hub_seq LIMIT ?",
            (cursor, limit + 1)).fetchall()
        ids = conn.execute(
            "SELECT hub_seq, local_ref, kind, central_id, reported_by, reported_at FROM central_id "
            "WHERE hub_seq > ? ORDER BY hub_seq LIMIT ?", (cursor, limit + 1)).fetchall()
        gone = conn.execute("SELECT hub_seq, op_id, device_id FROM withdrawn WHERE hub_seq > ? ORDER BY hub_seq "
                            "LIMIT ?", (cursor, limit + 1)).fetchall()
    finally:
        conn.execute("COMMIT")
    merged = sorted([(r[0], "op", r) for r in ops] + [(r[0], "id", r) for r in ids]
                    + [(r[0], "gone", r) for r in gone], key=lambda t: t[0])
    done = len(merged) <= limit
    page = merged[:limit]
    next_cursor = page[-1][0] if page else cursor
    out_ops: list[dict[str, Any]] = []
    out_ids: list[dict[str, Any]] = []
    out_gone: list[dict[str, Any]] = []
    for hub_seq, what, r in page:
        if what == "gone":
            out_gone.append({"hub_seq": hub_seq, "op_id": r[1], "device_id": r[2]})
        elif what == "op":
            if r[1] == device_id and not include_own:
                continue
            out_ops.append({"hub_seq": hub_seq, "received_at": r[2], "op": orjson.Fragment(r[3])})
        else:
            out_ids.append({"hub_seq": hub_seq, "local_ref": r[1], "kind": r[2], "central_id": r[3],
                            "reported_by": r[4], "reported_at": r[5]})
    return orjson.dumps({"ops": out_ops, "central_ids": out_ids, "withdrawn": out_gone,
                         "next_cursor": next_cursor, "done": done})


def device_info(conn: Any, device_id: str) -> dict[str, Any]:
    row = conn.execute(
        "SELECT coalesce(max(seq), 0), count(*), max(recorded_at) FROM op WHERE device_id=?", (device_id,)
    ).fetchone()
    dev = conn.execute("SELECT last_push_at FROM device WHERE device_id=?", (device_id,)).fetchone()
    top = conn.execute("SELECT coalesce(max(value), 0) FROM hub_counter").fetchone()[0]
    return {"device_id": device_id, "max_seq": int(row[0]), "ops": int(row[1]), "last_recorded_at": row[2],
            "last_push_at": dev[0] if dev else None, "hub_seq": int(top)}


_RECORD_COLS = ("local_ref, kind, device_id, op_id, recorded_at, patient_ref, visit_ref, lab_order_ref, name, "
                "mobile, uhid, voided, detail")


def _record(conn: Any, r: tuple[Any, ...]) -> dict[str, Any]:
    keys = [c.strip() for c in _RECORD_COLS.split(",")]
    rec = dict(zip(keys, r))
    rec["voided"] = bool(rec["voided"])
    rec["detail"] = orjson.loads(rec["detail"])
    cid = conn.execute("SELECT central_id FROM central_id WHERE local_ref=?", (rec["local_ref"],)).fetchone()
    rec["central_id"] = cid[0] if cid else (rec["uhid"] if rec["kind"] == "patient" else None)
    return rec


def search(conn: Any, query: str, *, kind: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
    """The merged index: an offline number, a central id, a mobile, or the start of a name."""
    q = (query or "").strip()
    if not q:
        return []
    kind_sql, kind_arg = ("AND kind=?", (kind,)) if kind else ("", ())
    up = q.upper()
    rows = conn.execute(
        f"SELECT {_RECORD_COLS} FROM record WHERE (local_ref=? OR uhid=? OR mobile=? OR patient_ref=? "
        f"OR local_ref IN (SELECT local_ref FROM central_id WHERE central_id=?) "
        f"OR lower(name) LIKE ?) {kind_sql} ORDER BY recorded_at DESC LIMIT ?",
        (up, up, q, up, up, q.lower() + "%", *kind_arg, limit),
    ).fetchall()
    return [_record(conn, r) for r in rows]

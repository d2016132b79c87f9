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
- Counters pull ops by their own vector of per-counter positions (``pull``:
  every op of counter D with ``seq`` above what the caller holds of D), never
  by the hub's sequence alone, so a hub that lost ops or renumbered them
  still gives every counter every op once the op's own counter sent it again.
  ``held`` keeps, with every stored op, what the hub holds per counter; the
  exchange (``hello``) tells a counter that and the hub's identity
  (hub/identity.py) before it pushes.
- Provenance: a token's counter pushes only its own ops and central ids only
  for its own records (by the index's owner, else the offline number's
  counter prefix).
- A correction (review ``--correct``: a new op, a higher ``seq``, the same
  ``local_ref``) replaces that record in the index; a withdrawn op's record
  leaves it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
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
MAX_SAFE_INT = 2**53 - 1  # what every JSON reader holds exactly
MAX_DEPTH = 32  # an op envelope is a few levels deep; deeper is not an op


def too_deep(value: object, limit: int = MAX_DEPTH) -> bool:
    """Whether JSON ``value`` nests deeper than ``limit`` (iterative: no recursion to exhaust)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict):
            if d > limit:
                return True
            stack.extend((x, d + 1) for x in v.values())
        elif isinstance(v, list):
            if d > limit:
                return True
            stack.extend((x, d + 1) for x in v)
    return False


def fingerprint(op: dict[str, Any]) -> str:
    """What makes two pushes the same op: kind, device, seq and payload (canonical JSON),
    and (contract 1.2) its origin when it has one (an op without keeps its old fingerprint)."""
    body = {k: op.get(k) for k in ("kind", "device_id", "seq", "payload", "depends_on", "recorded_at")}
    if op.get("origin"):
        body["origin"] = op["origin"]
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS).decode()


def _rejected(op_id: object, code: str, message: str) -> dict[str, object]:
    return {"op_id": str(op_id or ""), "status": "rejected", "error": {"code": code, "message": message}}


def _index(conn: sqlite3.Connection, op: dict[str, Any]) -> None:
    rec = shared.record_of(op)
    if rec is not None:
        old = conn.execute("SELECT r.device_id, r.op_id, o.seq FROM record r LEFT JOIN op o ON o.op_id = r.op_id "
                           "WHERE r.local_ref=?", (rec.local_ref,)).fetchone()
        if old is not None:
            if old[0] != rec.device_id or old[1] == rec.op_id or int(old[2] or 0) >= int(op.get("seq") or 0):
                return
            # a correction of that record (review --correct): the later op of its own counter wins
            conn.execute("DELETE FROM record WHERE local_ref=?", (rec.local_ref,))
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
    results: list[dict[str, object]]
    central_ids_new: int
    hub_seq: int
    central_ids_refused: list[dict[str, object]]


def _owner_of(conn: sqlite3.Connection, local_ref: str) -> str:
    """The counter a record belongs to: the index's owner, else its offline number's prefix."""
    row = conn.execute("SELECT device_id FROM record WHERE local_ref=?", (local_ref,)).fetchone()
    return str(row[0]) if row is not None else local_ref.split("-", 1)[0]


def push(conn: sqlite3.Connection, device_id: str, ops: Sequence[object], central_ids: Sequence[object],
         withdrawn: Sequence[object] | None = None) -> PushOutcome:
    """Store a counter's ops and learned ids in one transaction; returns after COMMIT."""
    results: list[dict[str, object]] = []
    now = now_iso()
    new_ids = 0
    refused_ids: list[dict[str, object]] = []
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
            if env.seq > MAX_SAFE_INT:
                results.append(_rejected(op_id, "validation_failed",
                                         f"seq: is above {MAX_SAFE_INT} (2^53 - 1); a counter never numbers so high"))
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
            conn.execute("INSERT INTO held(device_id, max_seq, ops) VALUES (?, ?, 1) ON CONFLICT(device_id) DO "
                         "UPDATE SET max_seq=max(max_seq, excluded.max_seq), ops=ops+1", (env.device_id, env.seq))
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
            owner = _owner_of(conn, local_ref)
            if owner != device_id:
                refused_ids.append({"local_ref": local_ref, "error": {
                    "code": "device_mismatch",
                    "message": f"{local_ref} is counter {owner}'s record; counter {device_id} reports central ids "
                               "only for its own records"}})
                continue
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
            conn.execute("DELETE FROM record WHERE op_id=?", (str(op_id),))  # never reaches central: not a record
        conn.execute("UPDATE device SET last_push_at=? WHERE device_id=?", (now, device_id))
        top = conn.execute("SELECT coalesce(max(value), 0) FROM hub_counter").fetchone()[0]
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # SQLite already rolled back after a full disk or I/O error
            conn.execute("ROLLBACK")
        raise
    return PushOutcome(results, new_ids, int(top), refused_ids)


def changes(conn: sqlite3.Connection, device_id: str, cursor: int, limit: int, *,
            include_own: bool = False, with_ops: bool = True) -> bytes:
    """Everything after ``cursor`` in hub order, as the JSON answer (ops embedded verbatim).

    The cursor advances over this device's own ops too (they are simply not
    sent unless ``include_own``), so a page can be empty yet not ``done``.
    ``with_ops=False``: only central ids and withdrawals (a counter that pulls
    ops by its vector, ``pull``)."""
    conn.execute("BEGIN")  # one snapshot for both tables
    try:
        ops = conn.execute(
            "SELECT hub_seq, device_id, received_at, envelope FROM op WHERE hub_seq > ? ORDER BY hub_seq LIMIT ?",
            (cursor, limit + 1)).fetchall() if with_ops else []
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
    out_ops: list[dict[str, object]] = []
    out_ids: list[dict[str, object]] = []
    out_gone: list[dict[str, object]] = []
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


def device_info(conn: sqlite3.Connection, device_id: str) -> dict[str, object]:
    row = conn.execute(
        "SELECT coalesce(max(seq), 0), count(*), max(recorded_at) FROM op WHERE device_id=?", (device_id,)
    ).fetchone()
    dev = conn.execute("SELECT last_push_at FROM device WHERE device_id=?", (device_id,)).fetchone()
    top = conn.execute("SELECT coalesce(max(value), 0) FROM hub_counter").fetchone()[0]
    return {"device_id": device_id, "max_seq": int(row[0]), "ops": int(row[1]), "last_recorded_at": row[2],
            "last_push_at": dev[0] if dev else None, "hub_seq": int(top)}


_RECORD_COLS = ("local_ref, kind, device_id, op_id, recorded_at, patient_ref, visit_ref, lab_order_ref, name, "
                "mobile, uhid, voided, detail")


def _record(conn: sqlite3.Connection, r: tuple[Any, ...]) -> dict[str, Any]:
    keys = [c.strip() for c in _RECORD_COLS.split(",")]
    rec = dict(zip(keys, r))
    rec["voided"] = bool(rec["voided"])
    rec["detail"] = orjson.loads(rec["detail"])
    cid = conn.execute("SELECT central_id FROM central_id WHERE local_ref=?", (rec["local_ref"],)).fetchone()
    rec["central_id"] = cid[0] if cid else (rec["uhid"] if rec["kind"] == "patient" else None)
    return rec


def search(conn: sqlite3.Connection, query: str, *, kind: str | None = None,
           limit: int = 20) -> list[dict[str, object]]:
    """The merged index: an offline number, a central id, a mobile, or the start of a name
    (``%`` and ``_`` in the query are letters, not patterns)."""
    q = (query or "").strip()
    if not q:
        return []
    kind_sql, kind_arg = ("AND kind=?", (kind,)) if kind else ("", ())
    up = q.upper()
    start = q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    rows = conn.execute(
        f"SELECT {_RECORD_COLS} FROM record WHERE (local_ref=? OR uhid=? OR mobile=? OR patient_ref=? "
        f"OR local_ref IN (SELECT local_ref FROM central_id WHERE central_id=?) "
        f"OR lower(name) LIKE ? ESCAPE '\\') {kind_sql} ORDER BY recorded_at DESC LIMIT ?",
        (up, up, q, up, up, start, *kind_arg, limit),
    ).fetchall()
    return [_record(conn, r) for r in rows]


# --- the exchange by what each side holds -------------------------------------------------
def held_ranges(conn: sqlite3.Connection, device_id: str) -> list[list[int]]:
    """The runs of consecutive ``seq`` of this counter's ops on the hub: ``[[1, 400], [402, 501]]``."""
    rows = conn.execute(
        "SELECT min(seq), max(seq) FROM (SELECT seq, seq - row_number() OVER (ORDER BY seq) AS g FROM op "
        "WHERE device_id=?) GROUP BY g ORDER BY 1", (device_id,)).fetchall()
    return [[int(a), int(b)] for a, b in rows]


def holding(conn: sqlite3.Connection, device_id: str, *, want_held: bool = False) -> dict[str, Any]:
    """What the hub holds, for the start of an exchange: its identity, this counter's
    high-water mark and count, every counter's high-water mark (the hub's vector)."""
    from opd_fallback.hub import identity

    conn.execute("BEGIN")
    try:
        ident = identity.read(conn)
        vector = {str(d): int(m) for d, m, _ in conn.execute("SELECT device_id, max_seq, ops FROM held")}
        mine = conn.execute("SELECT max_seq, ops FROM held WHERE device_id=?", (device_id,)).fetchone()
        top = identity.hub_seq(conn)
        side = conn.execute("SELECT max(coalesce((SELECT max(hub_seq) FROM central_id), 0), "
                            "coalesce((SELECT max(hub_seq) FROM withdrawn), 0))").fetchone()
        ranges = held_ranges(conn, device_id) if want_held else None
    finally:
        conn.execute("COMMIT")
    out: dict[str, Any] = {
        "api_version": API_VERSION, "device_id": device_id, "db_id": ident.db_id, "epoch": ident.epoch,
        "epoch_at": ident.epoch_at, "epoch_reason": ident.epoch_reason,
        "max_seq": int(mine[0]) if mine else 0, "ops": int(mine[1]) if mine else 0, "hub_seq": top,
        "vector": vector, "went_back": False, "ids_seq": int(side[0] or 0),
    }
    if ranges is not None:
        out["held"] = ranges
    return out


API_VERSION = 3  # 3: an exchange may carry the counter's new ops and a pull (one round trip)


def went_back(answer: dict[str, Any], known: dict[str, Any]) -> str | None:
    """Whether a counter's memory of this very history (same db_id and epoch) shows the hub
    holding less than it acknowledged or served: the file was put back behind the hub's back."""
    if known.get("db_id") != answer["db_id"] or known.get("epoch") != answer["epoch"]:
        return None
    acked = int(known.get("acked_seq") or 0)
    seen = int(known.get("hub_seq") or 0)
    if acked > answer["max_seq"] or seen > answer["hub_seq"]:
        return (f"counter {answer['device_id']} had ops up to seq {acked} acknowledged and had seen hub sequence "
                f"{seen}, but the hub holds its ops up to seq {answer['max_seq']} and hub sequence "
                f"{answer['hub_seq']}: the hub's data went back (put back from an older copy?)")
    return None


def pull(conn: sqlite3.Connection, device_id: str, vector: dict[str, int], limit: int, *,
         include_own: bool = False) -> bytes:
    """``pull_page`` as the JSON answer of ``POST /pull``."""
    return orjson.dumps(pull_page(conn, device_id, vector, limit, include_own=include_own))


def pull_page(conn: sqlite3.Connection, device_id: str, vector: dict[str, int], limit: int, *,
              include_own: bool = False) -> dict[str, object]:
    """Every op of each counter with ``seq`` above the caller's ``vector`` for that counter.

    A page keeps, for each counter, a prefix of its ops in ``seq`` order (so the
    vector after the page is exact), and lists the page in hub order (so an op
    about another counter's record comes after that record, as it was pushed)."""
    conn.execute("BEGIN")
    try:
        devices = conn.execute("SELECT device_id, max_seq FROM held").fetchall()
        picked: dict[str, list[tuple[int, int, str, bytes]]] = {}
        more = False
        for dev, top in devices:
            dev = str(dev)
            if dev == device_id and not include_own:
                continue
            after = int(vector.get(dev, 0))
            if int(top) <= after:
                continue
            rows = conn.execute(
                "SELECT hub_seq, seq, received_at, envelope FROM op WHERE device_id=? AND seq>? ORDER BY seq LIMIT ?",
                (dev, after, limit + 1)).fetchall()
            if len(rows) > limit:
                rows, more = rows[:limit], True
            if rows:
                picked[dev] = rows
        ident_epoch = conn.execute("SELECT value FROM hub_meta WHERE name='epoch'").fetchone()
    finally:
        conn.execute("COMMIT")
    everything = sorted(r[0] for rows in picked.values() for r in rows)
    cut = everything[limit - 1] if len(everything) > limit else None
    page: list[tuple[int, int, str, bytes]] = []
    out_vector = {d: int(vector.get(d, 0)) for d in picked}
    for dev, rows in picked.items():
        kept = 0
        for r in rows:
            if kept and cut is not None and r[0] > cut:
                more = True
                break
            page.append(r)
            kept += 1
            out_vector[dev] = int(r[1])
        if kept < len(rows):
            more = True
    page.sort(key=lambda r: r[0])
    return {
        "ops": [{"hub_seq": r[0], "received_at": r[2], "op": orjson.Fragment(r[3])} for r in page],
        "vector": out_vector, "done": not more, "epoch": ident_epoch[0] if ident_epoch else None,
    }

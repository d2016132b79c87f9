"""What the hub keeps for each counter so a dead counter comes back whole (``restore --from-hub``).

An op tells central what happened; it does not carry everything the counter
knew when it saved it. So besides its ops each counter shares here, for
itself only (a token writes and reads only its own counter's keep):

- **facts** of each op, by ``op_id``: what the op's record holds that the
  payload does not (a visit's patient name as printed, a lab order's total, a
  void's approving supervisor, the op's source and the op it corrects).
  Written once, never changed (they are fixed when the record is saved);
- the counter's **operators**, with their PIN hashes (argon2id: the hub never
  sees a PIN) and roles, replaced whole when they change;
- its **audit log**, append-only by the counter's own entry id;
- its **back-entered slips** (``backentry_slip``: which paper slips were
  imported, with what they said, so the same slip is never imported twice
  after a restore), by the counter's own row id, as the audit log;
- the **master data** it last fetched (a restored counter takes the newest
  any counter shared, so its first fee is priced while central is down);
- its **numbers**: the highest ``seq`` it had handed out and the ``max_seq``
  central last told it, so a restored counter continues above both.

Decision: a separate call (``/counter/keep``), not fields of ``ops:push``: the
exchange of ops stays what other counters read, and this is read back only by
the same counter's restore. Stored as JSON text; limits keep one call small.
"""

from __future__ import annotations

import sqlite3

import orjson

from opd_fallback.domain.clock import now_iso
from opd_fallback.domain.exits import OpdError

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS keep_fact (
        op_id TEXT PRIMARY KEY, device_id TEXT NOT NULL, seq INTEGER NOT NULL, facts TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS ix_keep_fact_device_seq ON keep_fact (device_id, seq)",
    """CREATE TABLE IF NOT EXISTS keep_audit (
        device_id TEXT NOT NULL, entry_id INTEGER NOT NULL, entry TEXT NOT NULL,
        PRIMARY KEY (device_id, entry_id))""",
    """CREATE TABLE IF NOT EXISTS keep_slip (
        device_id TEXT NOT NULL, slip_id INTEGER NOT NULL, slip TEXT NOT NULL, PRIMARY KEY (device_id, slip_id))""",
    """CREATE TABLE IF NOT EXISTS keep_counter (
        device_id TEXT PRIMARY KEY, operators TEXT, master_data TEXT, master_fetched_at TEXT,
        seq_high INTEGER NOT NULL DEFAULT 0, central_max_seq INTEGER NOT NULL DEFAULT 0, updated_at TEXT NOT NULL)""",
)

MAX_FACTS = 5000
MAX_AUDIT = 5000
MAX_SLIPS = 5000
SLIP_FIELDS = ("id", "device_id", "visit_date", "slip_no", "imported_at", "op_ids", "slip_key", "content",
               "source_file", "source_line", "written_by", "imported_by")
MAX_OPERATORS = 1000
MAX_PAGE = 5000
OPERATOR_FIELDS = ("id", "name", "pin_hash", "role", "active", "created_at")


class KeepRefused(OpdError, ValueError):
    """The keep sent is not usable (one sentence, answered 422)."""


def create(conn: sqlite3.Connection) -> None:
    for stmt in SCHEMA:
        conn.execute(stmt)


def _int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 2**53 - 1:
        raise KeepRefused(f"{name} must be a whole number from 0 to 2^53-1")
    return value


def put(conn: sqlite3.Connection, device_id: str, body: object) -> dict[str, int]:
    """Store one keep call of ``device_id`` in one transaction; returns what was new."""
    if not isinstance(body, dict):
        raise KeepRefused("the body must be a JSON object")
    facts = body.get("facts") or []
    audit = body.get("audit") or []
    slips = body.get("slips") or []
    operators = body.get("operators")
    master = body.get("master_data")
    if not isinstance(facts, list) or len(facts) > MAX_FACTS:
        raise KeepRefused(f"facts must be a list of at most {MAX_FACTS}")
    if not isinstance(audit, list) or len(audit) > MAX_AUDIT:
        raise KeepRefused(f"audit must be a list of at most {MAX_AUDIT}")
    if not isinstance(slips, list) or len(slips) > MAX_SLIPS:
        raise KeepRefused(f"slips must be a list of at most {MAX_SLIPS}")
    for sl in slips:
        if not (isinstance(sl, dict) and all(isinstance(sl.get(k), str) for k in ("visit_date", "slip_no"))):
            raise KeepRefused("each slip must be a backentry_slip row {id, device_id, visit_date, slip_no, ...}")
        _int(sl.get("id"), "a slip's id")
    if operators is not None and (not isinstance(operators, list) or len(operators) > MAX_OPERATORS):
        raise KeepRefused(f"operators must be a list of at most {MAX_OPERATORS}")
    if master is not None and not (isinstance(master, dict) and isinstance(master.get("body"), str)
                                   and isinstance(master.get("version"), str)):
        raise KeepRefused("master_data must be {version, etag, body, fetched_at} as the counter stored it")
    for f in facts:
        if not (isinstance(f, dict) and isinstance(f.get("op_id"), str) and isinstance(f.get("facts"), dict)):
            raise KeepRefused("each fact must be {op_id, seq, facts: {...}}")
        _int(f.get("seq"), "a fact's seq")
    for e in audit:
        if not (isinstance(e, dict) and isinstance(e.get("action"), str)):
            raise KeepRefused("each audit entry must be {id, at, actor, action, subject, detail}")
        _int(e.get("id"), "an audit entry's id")
    for o in operators or []:
        if not (isinstance(o, dict) and all(isinstance(o.get(k), str) for k in ("id", "name", "pin_hash", "role"))):
            raise KeepRefused("each operator must be {id, name, pin_hash, role, active, created_at}")
        if not str(o["pin_hash"]).startswith("$argon2"):
            raise KeepRefused(f"operator {o['id']}: only argon2 PIN hashes are kept, never a PIN")
    seq_high = _int(body.get("seq_high") or 0, "seq_high")
    central_max = _int(body.get("central_max_seq") or 0, "central_max_seq")
    now = now_iso()
    new = {"facts": 0, "audit": 0, "slips": 0}
    conn.execute("BEGIN IMMEDIATE")
    try:
        for f in facts:
            cur = conn.execute("INSERT OR IGNORE INTO keep_fact(op_id, device_id, seq, facts) VALUES (?,?,?,?)",
                               (f["op_id"], device_id, int(f["seq"]), orjson.dumps(f["facts"]).decode()))
            new["facts"] += cur.rowcount
        for e in audit:
            entry = {k: e.get(k) for k in ("id", "at", "actor", "action", "subject", "detail")}
            cur = conn.execute("INSERT OR IGNORE INTO keep_audit(device_id, entry_id, entry) VALUES (?,?,?)",
                               (device_id, int(e["id"]), orjson.dumps(entry).decode()))
            new["audit"] += cur.rowcount
        for sl in slips:
            row = {k: sl.get(k) for k in SLIP_FIELDS}
            cur = conn.execute("INSERT OR REPLACE INTO keep_slip(device_id, slip_id, slip) VALUES (?,?,?)",
                               (device_id, int(sl["id"]), orjson.dumps(row).decode()))
            new["slips"] += cur.rowcount
        conn.execute("INSERT INTO keep_counter(device_id, updated_at) VALUES (?, ?) ON CONFLICT(device_id) "
                     "DO NOTHING", (device_id, now))
        conn.execute("UPDATE keep_counter SET seq_high=max(seq_high, ?), central_max_seq=max(central_max_seq, ?), "
                     "updated_at=? WHERE device_id=?", (seq_high, central_max, now, device_id))
        if operators is not None:
            rows = [{k: o.get(k) for k in OPERATOR_FIELDS} for o in operators]
            conn.execute("UPDATE keep_counter SET operators=? WHERE device_id=?",
                         (orjson.dumps(rows).decode(), device_id))
        if master is not None:
            conn.execute("UPDATE keep_counter SET master_data=?, master_fetched_at=? WHERE device_id=?",
                         (orjson.dumps(master).decode(), str(master.get("fetched_at") or now), device_id))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return new


def get(conn: sqlite3.Connection, device_id: str) -> dict[str, object]:
    """The counter's own keep (without facts and audit: those are paged), and the newest master data."""
    row = conn.execute("SELECT operators, seq_high, central_max_seq FROM keep_counter WHERE device_id=?",
                       (device_id,)).fetchone()
    newest = conn.execute("SELECT master_data FROM keep_counter WHERE master_data IS NOT NULL "
                          "ORDER BY master_fetched_at DESC LIMIT 1").fetchone()
    count = conn.execute("SELECT count(*) FROM keep_fact WHERE device_id=?", (device_id,)).fetchone()[0]
    audits = conn.execute("SELECT count(*) FROM keep_audit WHERE device_id=?", (device_id,)).fetchone()[0]
    slips = conn.execute("SELECT count(*) FROM keep_slip WHERE device_id=?", (device_id,)).fetchone()[0]
    return {
        "device_id": device_id,
        "operators": orjson.loads(row[0]) if row and row[0] else None,
        "seq_high": int(row[1]) if row else 0,
        "central_max_seq": int(row[2]) if row else 0,
        "master_data": orjson.loads(newest[0]) if newest else None,
        "facts": int(count),
        "audit": int(audits),
        "slips": int(slips),
    }


def facts_page(conn: sqlite3.Connection, device_id: str, after_seq: int, limit: int) -> dict[str, object]:
    rows = conn.execute("SELECT op_id, seq, facts FROM keep_fact WHERE device_id=? AND seq>? ORDER BY seq LIMIT ?",
                        (device_id, after_seq, limit)).fetchall()
    items = [{"op_id": r[0], "seq": int(r[1]), "facts": orjson.loads(r[2])} for r in rows]
    return {"facts": items, "next": items[-1]["seq"] if items else after_seq, "done": len(items) < limit}


def audit_page(conn: sqlite3.Connection, device_id: str, after_id: int, limit: int) -> dict[str, object]:
    rows = conn.execute("SELECT entry_id, entry FROM keep_audit WHERE device_id=? AND entry_id>? ORDER BY entry_id "
                        "LIMIT ?", (device_id, after_id, limit)).fetchall()
    items = [orjson.loads(r[1]) for r in rows]
    return {"audit": items, "next": int(rows[-1][0]) if rows else after_id, "done": len(items) < limit}


def slips_page(conn: sqlite3.Connection, device_id: str, after_id: int, limit: int) -> dict[str, object]:
    rows = conn.execute("SELECT slip_id, slip FROM keep_slip WHERE device_id=? AND slip_id>? ORDER BY slip_id "
                        "LIMIT ?", (device_id, after_id, limit)).fetchall()
    items = [orjson.loads(r[1]) for r in rows]
    return {"slips": items, "next": int(rows[-1][0]) if rows else after_id, "done": len(items) < limit}

"""Read-only queries behind the contract's reading endpoints.

They run on reader connections in autocommit mode: each statement sees only
whole committed batches, and never waits for a batch being applied (WAL on
SQLite, MVCC on PostgreSQL).

``/patients/changes`` pages by ``change_seq``. A cursor must never skip a row
that another writer commits later with a smaller number. SQLite has one writer
at a time, so numbers are taken in commit order. On PostgreSQL the applier
gives a batch's changed patients their final ``change_seq`` only at the very
end, under a transaction-scoped advisory lock held through COMMIT (see
``Applier._number_changes``): numbers are therefore handed out in commit
order there too, and a reader that has seen number N has seen every committed
number below it. (The alternative, serving only rows older than the oldest
transaction in flight, needs the writers' transaction ids in every row and a
cursor that is not a plain number; the lock costs one short wait at commit.)
"""

from __future__ import annotations

from typing import TypedDict

import orjson

from opd_fallback.central.jsontypes import JSONObject, JSONValue
from opd_fallback.domain.contract import ID_KINDS, op_ids_digest
from opd_fallback.serverdb import Connection

RECON_PAGE = 5000

# What the queries build, key for key, for orjson to send as is (the contract's
# models in domain/contract.py document the same bodies for OpenAPI).


class Outcome(TypedDict):
    op_id: str
    status: str
    result: JSONValue  # the op's result object, or None
    error: JSONValue  # the op's error object, or None


class DeviceBody(TypedDict):
    device_id: str
    max_seq: int
    ops_applied: int
    last_recorded_at: str | None
    reserved_used: dict[str, int]


class UsedIdsPage(TypedDict):
    kind: str
    ids: list[str]
    next_cursor: str | None
    done: bool


class RefBody(TypedDict):
    local_ref: str
    kind: str
    central_id: str
    op_id: str


class PatientChangesPage(TypedDict):
    patients: list[JSONObject]  # PatientSummary's fields (columns as stored) plus local_refs
    next_cursor: str
    done: bool


class PaymentTotalsBody(TypedDict):
    count: int
    total_paise: int
    by_mode: dict[str, int]


class VoidTotalsBody(TypedDict):
    count: int
    total_paise: int


class ReconciliationBody(TypedDict):
    date: str
    device_id: str
    ops_applied: int
    by_kind: dict[str, int]
    payments: PaymentTotalsBody
    voids: VoidTotalsBody
    samples: dict[str, int]
    op_ids_sha256: str


class SampleBody(TypedDict):
    sample_id: str
    order_id: str
    sample_type: str
    tests: list[str]
    status: str
    collected_at: str | None


class ReconciliationOpsPage(TypedDict):
    op_ids: list[str]
    next_cursor: str | None
    done: bool


def outcome(conn: Connection, op_id: str, device_id: str) -> Outcome | None:
    row = conn.execute(
        "SELECT status, result, error, device_id FROM op_outcome WHERE op_id=?", (op_id,)
    ).fetchone()
    if row is None or row[3] != device_id:
        return None
    return {
        "op_id": op_id,
        "status": row[0],
        "result": None if row[1] is None else orjson.loads(row[1]),
        "error": None if row[2] is None else orjson.loads(row[2]),
    }


def device_info(conn: Connection, device_id: str) -> DeviceBody:
    row = conn.execute(
        "SELECT max_seq, ops_applied, last_recorded_at FROM device WHERE device_id=?", (device_id,)
    ).fetchone()
    max_seq, applied, last = row if row else (0, 0, None)
    used = dict.fromkeys(ID_KINDS, 0)
    for kind, n in conn.execute(
        "SELECT kind, COUNT(*) FROM issued_id WHERE device_id=? AND used_by_op IS NOT NULL GROUP BY kind",
        (device_id,),
    ).fetchall():
        used[kind] = n
    return {"device_id": device_id, "max_seq": max_seq, "ops_applied": applied, "last_recorded_at": last,
            "reserved_used": used}


USED_PAGE = 1000


def used_ids(conn: Connection, device_id: str, kind: str, cursor: str | None,
             limit: int = USED_PAGE) -> UsedIdsPage:
    """1.2: the reserved ids of ``kind`` issued to the device that applied ops used,
    in id order; the cursor is the last id of the page before."""
    rows = conn.execute(
        "SELECT id FROM issued_id WHERE device_id=? AND kind=? AND used_by_op IS NOT NULL "
        f"AND id{conn.collate_c}>? ORDER BY id{conn.collate_c} LIMIT ?",
        (device_id, kind, cursor or "", limit + 1),
    ).fetchall()
    done = len(rows) <= limit
    ids = [r[0] for r in rows[:limit]]
    return {"kind": kind, "ids": ids, "next_cursor": None if done or not ids else ids[-1], "done": done}


def ref_info(conn: Connection, local_ref: str) -> RefBody | None:
    """1.2: what a local_ref of any device maps to, or None while no applied op made or linked it."""
    row = conn.execute(
        "SELECT kind, central_id, op_id FROM ref_map WHERE local_ref=?", (local_ref,)
    ).fetchone()
    if row is None:
        return None
    return {"local_ref": local_ref, "kind": row[0], "central_id": row[1], "op_id": row[2]}


def patient_changes(conn: Connection, after: int, limit: int) -> PatientChangesPage:
    """Patients changed after the cursor, each with every ``local_ref`` mapped to it
    (contract 1.1), so a counter can find another counter's offline number, and
    (1.2) the fields a revisit slip prints."""
    cols = ("uhid", "name", "sex", "age_years", "guardian_name", "mobile", "district", "version", "updated_at",
            "name_local", "guardian_relation", "age_months", "age_days", "category")
    rows = conn.execute(
        f"SELECT {','.join(cols)}, change_seq FROM patient WHERE change_seq>? ORDER BY change_seq LIMIT ?",
        (after, limit + 1),
    ).fetchall()
    done = len(rows) <= limit
    rows = rows[:limit]
    cursor = rows[-1][-1] if rows else after
    patients = [{**dict(zip(cols, r[:-1])), "local_refs": []} for r in rows]
    by_uhid = {p["uhid"]: p for p in patients}
    uhids = list(by_uhid)
    for i in range(0, len(uhids), 900):  # SQLite's bound-parameter limit
        chunk = uhids[i : i + 900]
        for local_ref, uhid in conn.execute(
            "SELECT local_ref, central_id FROM ref_map WHERE kind='patient' AND central_id IN "
            f"({','.join('?' * len(chunk))}) ORDER BY local_ref{conn.collate_c}", chunk,
        ).fetchall():
            by_uhid[uhid]["local_refs"].append(local_ref)
    return {
        "patients": patients,
        "next_cursor": str(cursor),
        "done": done,
    }


def reconciliation(conn: Connection, day: str, device_id: str) -> ReconciliationBody:
    by_kind = dict(
        conn.execute(
            "SELECT kind, COUNT(*) FROM op_outcome WHERE device_id=? AND local_date=? AND status='applied' "
            "GROUP BY kind ORDER BY kind",
            (device_id, day),
        ).fetchall()
    )
    op_ids = [
        r[0]
        for r in conn.execute(
            "SELECT op_id FROM op_outcome WHERE device_id=? AND local_date=? AND status='applied'",
            (device_id, day),
        ).fetchall()
    ]
    by_mode = {
        mode: total
        for mode, total in conn.execute(
            "SELECT mode, CAST(SUM(amount_paise) AS BIGINT) FROM payment WHERE device_id=? AND local_date=? "
            "GROUP BY mode ORDER BY mode",
            (device_id, day),
        ).fetchall()
    }
    pay_count, pay_total = conn.execute(
        "SELECT COUNT(*), CAST(COALESCE(SUM(amount_paise), 0) AS BIGINT) FROM payment WHERE device_id=? AND local_date=?",
        (device_id, day),
    ).fetchone()
    void_count, void_total = conn.execute(
        "SELECT COUNT(*), CAST(COALESCE(SUM(amount_paise), 0) AS BIGINT) FROM payment_void WHERE device_id=? AND local_date=?",
        (device_id, day),
    ).fetchone()
    samples = dict.fromkeys(("collected", "rejected"), 0)
    samples.update(dict(conn.execute(
        "SELECT status, COUNT(*) FROM sample_event WHERE device_id=? AND local_date=? GROUP BY status",
        (device_id, day),
    ).fetchall()))
    return {
        "date": day,
        "device_id": device_id,
        "ops_applied": len(op_ids),
        "by_kind": by_kind,
        "payments": {"count": pay_count, "total_paise": pay_total, "by_mode": by_mode},
        "voids": {"count": void_count, "total_paise": void_total},
        "samples": samples,
        "op_ids_sha256": op_ids_digest(op_ids),
    }


def sample(conn: Connection, sample_id: str) -> SampleBody | None:
    """One tube (contract 1.2): its order, type and tests, and the state of its
    latest event by ``collected_at`` (``ordered`` while none has arrived)."""
    row = conn.execute(
        "SELECT sample_id, order_id, sample_type, tests FROM lab_sample WHERE sample_id=?", (sample_id,)
    ).fetchone()
    if row is None:
        return None
    last = conn.execute(
        "SELECT status, collected_at FROM sample_event WHERE sample_id=? "
        f"ORDER BY collected_utc DESC, op_id{conn.collate_c} DESC LIMIT 1",
        (sample_id,),
    ).fetchone()
    status, at = last if last is not None else ("ordered", None)
    return {"sample_id": row[0], "order_id": row[1], "sample_type": row[2], "tests": orjson.loads(row[3]),
            "status": status, "collected_at": at}


def reconciliation_ops(
    conn: Connection, day: str, device_id: str, cursor: str | None, limit: int = RECON_PAGE
) -> ReconciliationOpsPage:
    """Applied op_ids in sorted order (the digest's order); the cursor is the last op_id given."""
    rows = conn.execute(
        "SELECT op_id FROM op_outcome WHERE device_id=? AND local_date=? AND status='applied' "
        f"AND op_id{conn.collate_c}>? ORDER BY op_id{conn.collate_c} LIMIT ?",
        (device_id, day, cursor or "", limit + 1),
    ).fetchall()
    done = len(rows) <= limit
    ids = [r[0] for r in rows[:limit]]
    return {"op_ids": ids, "next_cursor": None if done else ids[-1], "done": done}

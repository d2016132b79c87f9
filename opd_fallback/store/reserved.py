"""Central ids reserved for this device (``POST /id-blocks``), used offline.

A registration made while central is down can still carry a real uhid,
receipt or sample number while the block lasts; after that the counter falls
back to its own seq-derived numbers.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import text
from sqlmodel import Session

from opd_fallback.domain.clock import now_iso
from opd_fallback.store.engine import driver_execute

KINDS = ("uhid", "receipt", "sample")


def take(session: Session, kind: str, op_id: str) -> str | None:
    """Use the oldest free id of ``kind`` for ``op_id``, or None when none is left."""
    row = driver_execute(  # once per record: the cheap path (see engine.driver_execute)
        session,
        "UPDATE id_reservation SET state='used', used_at=?, used_by_op=? "
        "WHERE id = (SELECT id FROM id_reservation WHERE kind=? AND state='free' ORDER BY id LIMIT 1) "
        "RETURNING value",
        (now_iso(), op_id, kind),
    )
    return None if row is None else str(row[0])


def add_block(session: Session, kind: str, ids: Iterable[str]) -> int:
    rows = [{"k": kind, "v": v, "at": now_iso()} for v in ids]
    if rows:
        session.execute(
            text(
                "INSERT OR IGNORE INTO id_reservation(kind, value, state, reserved_at) VALUES (:k, :v, 'free', :at)"
            ),
            rows,
        )
    return len(rows)


def free_count(session: Session, kind: str) -> int:
    return int(
        session.execute(
            text("SELECT count(*) FROM id_reservation WHERE kind=:k AND state='free'"), {"k": kind}
        ).scalar()
        or 0
    )


def abandon_free(session: Session) -> int:
    """After a restore, free ids in the backup may have been used since: never use them."""
    # an UPDATE's result is a cursor result, which knows how many rows it changed
    result = session.connection().execute(text("UPDATE id_reservation SET state='abandoned' WHERE state='free'"))
    return int(result.rowcount or 0)


def mark_used(session: Session, kind: str, values: Iterable[str]) -> int:
    """Contract 1.2: reserved ids central says applied ops used (``GET /id-blocks/used``)
    are never taken again here, whatever state this (restored) database had them in.
    Returns how many of this counter's ids changed state."""
    now = now_iso()
    changed = 0
    vals = list(values)
    for i in range(0, len(vals), 500):
        chunk = vals[i : i + 500]
        marks = ",".join(f":v{n}" for n in range(len(chunk)))
        result = session.connection().execute(
            text(f"UPDATE id_reservation SET state='used', used_at=COALESCE(used_at, :now), "
                 f"used_by_op=COALESCE(used_by_op, 'central') WHERE kind=:k AND state != 'used' "
                 f"AND value IN ({marks})"),
            {"now": now, "k": kind, **{f"v{n}": v for n, v in enumerate(chunk)}})
        changed += int(result.rowcount or 0)
    return changed

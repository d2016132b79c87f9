"""The SQL that ``restore --from-hub`` and reconcile's clock check need on the counter's tables
(application/restore_from_hub.py, application/reconcile.py): kept in store/ like all of it."""

from __future__ import annotations

from sqlalchemy import text
from sqlmodel import Session


def has_ops(session: Session) -> bool:
    return bool(int(session.execute(text("SELECT count(*) FROM op")).scalar() or 0))


def top_seq(session: Session) -> int:
    return int(session.execute(text("SELECT coalesce(max(seq), 0) FROM op")).scalar() or 0)


def raise_token(session: Session, dept: object, day: object, token: int | str | None) -> None:
    """A department's token counter for a day, at least ``token`` (a restored visit's)."""
    session.execute(text("INSERT INTO counter(name, value) VALUES (:n, :v) ON CONFLICT(name) DO UPDATE "
                         "SET value=max(value, :v)"), {"n": f"token:{dept}:{day}", "v": int(token or 0)})


def audit_ids(session: Session) -> set[int]:
    return {int(r[0]) for r in session.execute(text("SELECT id FROM audit_log")).all()}


def clock_confirmations(session: Session) -> list[tuple[str, str]]:
    """(at, detail) of every supervisor's confirmation of a wrong clock, oldest first."""
    rows = session.execute(text("SELECT at, detail FROM audit_log WHERE action='clock.confirmed' ORDER BY id")).all()
    return [(str(a), str(d)) for a, d in rows]


def device_ops(session: Session, device_id: str) -> list[tuple[str, int, str, str]]:
    """(op_id, seq, kind, recorded_at) of a device's ops in seq order."""
    rows = session.execute(text("SELECT op_id, seq, kind, recorded_at FROM op WHERE device_id=:d ORDER BY seq"),
                           {"d": device_id}).all()
    return [(str(o), int(s), str(k), str(r)) for o, s, k, r in rows]

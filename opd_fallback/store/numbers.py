"""Numbers that must never repeat: the per-device ``seq`` and what derives from it.

Every number printed for a person (offline patient/visit number, local receipt
and sample numbers) is built from the ``seq`` of the op that created it. The
seq counter lives in the same transaction as the record, so a crash can only
lose an uncommitted number, never hand out a committed one twice; and after a
restore, raising the floor above central's ``max_seq`` keeps every number new.
Every number handed out is also recorded outside the database
(:mod:`opd_fallback.store.marks`), so a database that went back in time (its
``-wal`` file lost) continues above what it already handed out.
"""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import text
from sqlmodel import Session

from opd_fallback.domain.clock import now_iso, now_ist
from opd_fallback.store import audit, marks, meta, reserved
from opd_fallback.store.engine import driver_execute

SEQ = "seq"


def _increment(session: Session, name: str) -> int:
    row = driver_execute(
        session,
        "INSERT INTO counter(name, value) VALUES (?, 1) "
        "ON CONFLICT(name) DO UPDATE SET value = value + 1 RETURNING value",
        (name,),
    )
    assert row is not None and isinstance(row[0], int)  # RETURNING an INTEGER column
    return row[0]


def next_value(session: Session, name: str) -> int:
    """Increment and return a named counter inside the caller's transaction,
    never at or below a value handed out before (see :mod:`opd_fallback.store.marks`)."""
    value = _increment(session, name)
    known = marks.floor_for(session, name)
    if known is not None and value <= known[0]:
        continue_above_marks(session, name, value - 1, known)
        value = _increment(session, name)
    marks.note(session, name, value)
    return value


def continue_above_marks(session: Session, name: str, had: int, known: tuple[int, int]) -> None:
    """The database is behind numbers already handed out: raise every counter above
    its mark, abandon free reserved ids (they may have been used in what was lost),
    and say so in the audit log (and, when saved changes are gone, in meta for status)."""
    pending, committed = known
    raised = {}
    for counter, mark in marks.all_pending(session).items():
        if peek(session, counter) < mark:
            raised[counter] = mark
            raise_floor(session, counter, mark)
    abandoned = reserved.abandon_free(session)
    lost_saved = had < committed
    audit.record(session, "system", "store.went_back", name, counter_was=had, mark_pending=pending,
                 mark_committed=committed, raised=len(raised), abandoned_ids=abandoned, lost_saved=lost_saved)
    if lost_saved:
        meta.put(session, marks.WENT_BACK, (
            f"this counter's database went back in time: it had numbers up to {had} of '{name}' but "
            f"{committed} were already saved and may be printed (was counter.db-wal deleted, or an old copy "
            f"put back?); the lost records must be entered again from their paper slips. New numbers continue "
            f"above {pending}, none is reused; {abandoned} reserved central id(s) were set aside. Found {now_iso()}."
        ))


def peek(session: Session, name: str) -> int:
    row = session.execute(text("SELECT value FROM counter WHERE name = :n"), {"n": name}).first()
    return int(row[0]) if row else 0


def raise_floor(session: Session, name: str, floor: int) -> int:
    """Make the next value of ``name`` greater than ``floor`` (never lowers it)."""
    row = session.execute(
        text(
            "INSERT INTO counter(name, value) VALUES (:n, :f) "
            "ON CONFLICT(name) DO UPDATE SET value = max(value, :f) RETURNING value"
        ),
        {"n": name, "f": floor},
    ).one()
    return int(row[0])


def next_seq(session: Session) -> int:
    return next_value(session, SEQ)


def local_ref(device_id: str, seq: int, when: datetime | None = None) -> str:
    """``C07-261126-000042``: device, day of recording, the op's seq."""
    day = (when or now_ist()).strftime("%y%m%d")
    return f"{device_id}-{day}-{seq:06d}"


# Shape of ``local_ref`` for any device (device ids are 1-16 of A-Z0-9, see config).
_LOCAL_REF = re.compile(r"^[A-Z0-9]{1,16}-\d{6}-\d{6,}$")


def is_local_ref(key: str) -> bool:
    """Whether ``key`` (upper case) is shaped like an offline number from
    ``local_ref``, this counter's or another's, rather than a central id."""
    return bool(_LOCAL_REF.match(key))


def local_receipt_no(device_id: str, seq: int) -> str:
    return f"{device_id}-R{seq:06d}"


def local_sample_id(device_id: str, seq: int, tube: int | None = None) -> str:
    """``C07-S000042`` for an order's only tube; ``C07-S000042-2`` for the
    second of several. Derived from the op's seq, so never reused after a restore."""
    base = f"{device_id}-S{seq:06d}"
    return base if tube is None else f"{base}-{tube}"


def next_token(session: Session, department: str, day: str) -> int:
    """Queue token per department per day (printed on the slip)."""
    return next_value(session, f"token:{department}:{day}")

"""Open LAN edit conflicts: the SQL that counts them, for ``status`` and the counter's status bar.

A LAN edit conflict is flagged by the LAN's apply (store/shared.py ``_flag``): an
older edit of a patient's field made at another counter arrived after this
counter's own later change of that field, made with neither counter knowing of
the other's. The later change is kept; the audit log holds one ``ACTION`` entry
(subject: the patient's ``local_ref``), and a person must check with the patient
which value is right.

Decided: a conflict is *open* until this counter records a later edit of that
patient (a ``patient.update`` op recorded after the flag, not cancelled): the
correction the flag asks for, made at this counter. The audit log stays as it
is (append-only); ``review history`` still lists every flag. A kept value found
right needs no edit, so it stays counted until one is made: a supervisor's
"checked, nothing to change" is not a decision of its own yet.

Like store/money.py, the query takes any way of running SQL with named
parameters (``RunSql``): the plain snapshot of ``status`` (store/readonly.py)
and the counter's SQLModel session alike, so this module loads neither
SQLAlchemy nor pydantic.
"""

from __future__ import annotations

from typing import NamedTuple, cast

from opd_fallback.store.money import RunSql
from opd_fallback.store.states import CANCELLED

ACTION = "review.lan_edit_conflict"  # the audit action of a flag (store/shared.py writes it)

_OPEN = (
    "SELECT count(*), min(a.at) FROM audit_log a WHERE a.action = :action AND NOT EXISTS ("
    " SELECT 1 FROM op o WHERE o.kind = 'patient.update' AND o.state != :cancelled AND o.recorded_at > a.at"
    " AND (o.record_ref = a.subject"
    "  OR o.record_ref = (SELECT uhid FROM patient WHERE local_ref = a.subject)"
    "  OR o.record_ref = (SELECT central_id FROM shared_record WHERE kind = 'patient' AND local_ref = a.subject)))"
)


class OpenConflicts(NamedTuple):
    n: int  # how many
    oldest_at: str | None  # when the oldest open one was flagged


def open_conflicts(run: RunSql) -> OpenConflicts:
    """The LAN edit conflicts no later edit of their patient at this counter has answered."""
    rows = run(_OPEN, {"action": ACTION, "cancelled": CANCELLED})
    n, oldest = (rows[0][0], rows[0][1]) if rows else (0, None)
    return OpenConflicts(int(cast("int | None", n) or 0), None if oldest is None else str(oldest))

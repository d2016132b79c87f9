"""The states of an op in the outbox, named once.

Kept apart from store/outbox.py (which owns the transitions and imports the
table models) so a quick read such as ``status`` can name the states without
loading SQLAlchemy.
"""

from __future__ import annotations

PENDING, SYNCED, REJECTED, CONFLICT, CANCELLED = "pending", "synced", "rejected", "conflict", "cancelled"
STATES = (PENDING, SYNCED, REJECTED, CONFLICT, CANCELLED)
FLAGGED = (REJECTED, CONFLICT)
# A pending op whose stored data cannot be read (a damaged file): flagged ``rejected``
# with this error code and ``last_status``, never sent, for a person to decide.
DAMAGED = "damaged_locally"

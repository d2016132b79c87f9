"""Append-only audit log: who did what, when and why (triggers forbid edits)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import orjson
from sqlalchemy import insert
from sqlmodel import Session, col, select

from opd_fallback.domain import jsonio
from opd_fallback.domain.clock import now_iso
from opd_fallback.store.tables import AuditEntry


def record(
    session: Session, actor: str, action: str, subject: str | None = None, **detail: object
) -> AuditEntry:
    """Add one entry in the caller's transaction (so it commits with the change)."""
    entry = AuditEntry(
        at=now_iso(), actor=actor, action=action, subject=subject, detail=orjson.dumps(detail).decode()
    )
    session.add(entry)
    return entry


def record_many(session: Session, actor: str, action: str, entries: Sequence[tuple[str, Mapping[str, object]]]) -> None:
    """Many entries (subject, detail) in one statement, in the caller's transaction
    (a bulk import audits every row without building an object per row)."""
    if entries:
        at = now_iso()
        session.execute(insert(AuditEntry), [
            {"at": at, "actor": actor, "action": action, "subject": subject, "detail": jsonio.dumps(detail)}
            for subject, detail in entries
        ])


def history(
    session: Session, *, action_prefix: str | None = None, subject: str | None = None, limit: int = 200
) -> list[AuditEntry]:
    stmt = select(AuditEntry).order_by(col(AuditEntry.id).desc()).limit(limit)
    if action_prefix:
        stmt = stmt.where(col(AuditEntry.action).startswith(action_prefix))
    if subject:
        stmt = stmt.where(AuditEntry.subject == subject)
    return list(session.exec(stmt))

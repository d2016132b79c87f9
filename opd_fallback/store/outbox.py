"""The outbox: every record's op, written in the record's own transaction.

Sync reads it in ``seq`` order and writes back what central answered. Nothing
here deletes an op (a trigger refuses it anyway); an op leaves ``pending`` only
for ``synced``, ``rejected``, ``conflict`` or, by a person's decision,
``cancelled``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel
from sqlalchemy import func, text
from sqlmodel import Session, col, select
from ulid import ULID

from opd_fallback.domain.clock import now_iso
from opd_fallback.domain.contract import OpEnvelope
from opd_fallback.store.tables import Op

PENDING, SYNCED, REJECTED, CONFLICT, CANCELLED = "pending", "synced", "rejected", "conflict", "cancelled"
STATES = (PENDING, SYNCED, REJECTED, CONFLICT, CANCELLED)
FLAGGED = (REJECTED, CONFLICT)


def new_op_id() -> str:
    return str(ULID())


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def loads(value: str | None) -> Any:
    return None if value is None else orjson.loads(value)


def enqueue(
    session: Session,
    *,
    seq: int,
    kind: str,
    device_id: str,
    operator_id: str,
    payload: BaseModel | dict[str, Any],
    depends_on: Iterable[str] = (),
    recorded_at: datetime | str | None = None,
    record_kind: str | None = None,
    record_ref: str | None = None,
    op_id: str | None = None,
    source: str = "counter",
    supersedes: str | None = None,
) -> Op:
    """Add one op to the outbox in the caller's transaction."""
    body = payload.model_dump(mode="json") if isinstance(payload, BaseModel) else payload
    at = recorded_at.isoformat() if isinstance(recorded_at, datetime) else (recorded_at or now_iso())
    op = Op(
        seq=seq,
        op_id=op_id or new_op_id(),
        kind=kind,
        device_id=device_id,
        operator_id=operator_id,
        recorded_at=at,
        depends_on=dumps(sorted(set(depends_on))),
        payload=dumps(body),
        updated_at=now_iso(),
        record_kind=record_kind,
        record_ref=record_ref,
        source=source,
        supersedes=supersedes,
    )
    session.add(op)
    return op


def envelope(op: Op) -> dict[str, Any]:
    """The op as the contract sends it."""
    return {
        "op_id": op.op_id,
        "kind": op.kind,
        "device_id": op.device_id,
        "operator_id": op.operator_id,
        "seq": op.seq,
        "recorded_at": op.recorded_at,
        "depends_on": loads(op.depends_on) or [],
        "payload": loads(op.payload),
        "resolution": loads(op.resolution),
    }


def as_envelope_model(op: Op) -> OpEnvelope:
    return OpEnvelope.model_validate(envelope(op))


def get(session: Session, op_id: str) -> Op | None:
    return session.exec(select(Op).where(Op.op_id == op_id)).first()


def op_state(session: Session, op_id: str) -> str | None:
    row = session.execute(text("SELECT state FROM op WHERE op_id = :i"), {"i": op_id}).first()
    return None if row is None else str(row[0])


def pending(session: Session, *, after_seq: int = 0, limit: int = 100_000) -> Sequence[Op]:
    stmt = (
        select(Op)
        .where(Op.state == PENDING, Op.seq > after_seq)
        .order_by(col(Op.seq))
        .limit(limit)
    )
    return session.exec(stmt).all()


def counts_by_state(session: Session) -> dict[str, int]:
    rows = session.execute(text("SELECT state, count(*) FROM op GROUP BY state")).all()
    out = dict.fromkeys(STATES, 0)
    out.update({str(s): int(n) for s, n in rows})
    return out


def counts_by_state_and_kind(session: Session) -> dict[str, dict[str, int]]:
    rows = session.execute(text("SELECT state, kind, count(*) FROM op GROUP BY state, kind")).all()
    out: dict[str, dict[str, int]] = {}
    for state, kind, n in rows:
        out.setdefault(str(state), {})[str(kind)] = int(n)
    return out


def oldest_recorded_at(session: Session, states: Sequence[str]) -> str | None:
    stmt = select(func.min(Op.recorded_at)).where(col(Op.state).in_(states))
    return session.exec(stmt).one()


def list_ops(
    session: Session, *, states: Sequence[str] | None = None, offset: int = 0, limit: int = 50
) -> Sequence[Op]:
    stmt = select(Op).order_by(col(Op.seq).desc()).offset(offset).limit(limit)
    if states:
        stmt = stmt.where(col(Op.state).in_(states))
    return session.exec(stmt).all()


def unsynced_op_ids(session: Session, op_ids: Iterable[str]) -> list[str]:
    """Those of ``op_ids`` that are ours and not yet synced (a dependency to carry)."""
    ids = [i for i in op_ids if i]
    if not ids:
        return []
    stmt = select(Op.op_id).where(col(Op.op_id).in_(ids), Op.state != SYNCED)
    return list(session.exec(stmt))

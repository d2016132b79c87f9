"""The outbox: every record's op, written in the record's own transaction,
and the one owner of an op's life.

Sync reads it in ``seq`` order and writes back what central answered. Nothing
here deletes an op (a trigger refuses it anyway). Every change of an op's
``state`` (and of the bookkeeping that goes with it) is one of the
:data:`TRANSITIONS` below, made by :func:`transition` (set-based, for the
engine's batches) or :func:`transition_one` (one op, refusing a move the table
does not allow). Nothing else in the package writes ``UPDATE op``:

==================  ==============================  ==========  =========================
transition          from                            to          who
==================  ==============================  ==========  =========================
``synced``          pending, rejected, conflict,    synced      engine (applied /
                    cancelled, synced                           duplicate), reconcile
                                                                (central has it)
``flagged``         pending                         rejected /  engine
                                                    conflict
``deferred``        pending                         pending     engine (try again later)
``waiting``         pending                         pending     engine (why it waits)
``requeued``        synced                          pending     reconcile (central lost it)
``resubmitted``     rejected, conflict              pending     review (a person decided)
``cancelled``       rejected, conflict, pending     cancelled   review (a person decided;
                                                                pending: ops that wait on
                                                                the cancelled one)
(:func:`quarantine`) pending                        rejected    sync (its stored data is
                                                                damaged; found by seq, as
                                                                the op_id may be damaged)
==================  ==============================  ==========  =========================
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Required, TypedDict

from pydantic import BaseModel
from sqlalchemy import Connection, func, text
from sqlmodel import Session, col, select
from typing_extensions import Unpack
from ulid import ULID

from opd_fallback.domain.clock import now_iso
from opd_fallback.domain.contract import OpEnvelope
from opd_fallback.domain.exits import ExitCode, OpdError
from opd_fallback.domain.jsonio import JSONValue, dumps, loads
from opd_fallback.domain.payloads import wire
from opd_fallback.store.records import new_record, record_values
from opd_fallback.store.states import CANCELLED, CONFLICT, DAMAGED, FLAGGED, PENDING, REJECTED, STATES, SYNCED
from opd_fallback.store.tables import Op

__all__ = [
    "CANCELLED", "CONFLICT", "DAMAGED", "FLAGGED", "PENDING", "REJECTED", "STATES", "SYNCED", "TRANSITIONS",
    "IllegalTransition", "Transition", "as_envelope_model", "counts_by_state", "counts_by_state_and_kind",
    "dumps", "enqueue", "envelope", "get", "list_ops", "loads", "new_op_id", "oldest_recorded_at", "op_state",
    "pending", "quarantine", "rewrite_unsent_payloads", "transition", "transition_one", "unsynced_op_ids",
]


# --------------------------------------------------------------------------- the life of an op
class IllegalTransition(OpdError, ValueError):
    """A state change the table does not allow (a bug, or a race lost to another writer)."""

    exit_code = ExitCode.UNEXPECTED


@dataclass(frozen=True)
class Transition:
    """One allowed move: from any of ``sources`` to ``target``, setting ``assign``.

    ``assign`` is SQL ``SET`` text over named parameters that every row passes;
    ``state`` is set by the transition itself (``:state`` where the target
    depends on the row: rejected or conflict).
    """

    name: str
    sources: frozenset[str]
    target: str | None  # None: the row supplies ``state`` (rejected or conflict)
    assign: str
    targets: frozenset[str] = frozenset()

    @property
    def sql(self) -> str:
        state = "state=:state, " if self.target is None else f"state='{self.target}', "
        sources = ", ".join(f"'{s}'" for s in sorted(self.sources))
        return f"UPDATE op SET {state}{self.assign}, updated_at=:now WHERE op_id=:id AND state IN ({sources})"

    def allows(self, source: str, target: str | None = None) -> bool:
        if source not in self.sources:
            return False
        if self.target is None:
            return target in self.targets
        return target in (None, self.target)


def _t(name: str, sources: Iterable[str], target: str | None, assign: str, targets: Iterable[str] = ()) -> Transition:
    return Transition(name, frozenset(sources), target, assign, frozenset(targets))


TRANSITIONS: dict[str, Transition] = {t.name: t for t in (
    # central has it (applied now, a duplicate, or found by reconcile): central's word is the truth,
    # whatever we thought; the result is booked, the attempt counted, resolution and reason cleared
    _t("synced", (PENDING, REJECTED, CONFLICT, CANCELLED, SYNCED), SYNCED,
       "last_status=:st, result=:res, last_error=NULL, wait_reason=NULL, resolution=NULL, synced_at=:now, "
       "attempts=attempts+1"),
    # central refused it or needs a person: kept, with the server's error and our words
    _t("flagged", (PENDING,), None,
       "last_status=:st, last_error=:err, wait_reason=:why, attempts=attempts+1", (REJECTED, CONFLICT)),
    # not yet: the server deferred it; stays pending, the first deferral's time kept for "too long"
    _t("deferred", (PENDING,), PENDING,
       "last_status='deferred', last_error=:err, wait_reason=:why, "
       "first_deferred_at=coalesce(first_deferred_at, :now), attempts=attempts+1"),
    # not sent this time, and why, in words
    _t("waiting", (PENDING,), PENDING, "wait_reason=:why"),
    # central lost an op it had acknowledged: sent again, loudly (the caller audits it)
    _t("requeued", (SYNCED,), PENDING,
       "last_status=NULL, wait_reason=:why, synced_at=NULL, attempts=0, first_deferred_at=NULL"),
    # a person decided a flagged op: sent again, with the resolution the contract asks for
    _t("resubmitted", (REJECTED, CONFLICT), PENDING,
       "resolution=:res, wait_reason=NULL, first_deferred_at=NULL"),
    # a person decided a flagged op is not to be sent (with the pending ops that wait on it);
    # the reason stays on it
    _t("cancelled", (REJECTED, CONFLICT, PENDING), CANCELLED, "wait_reason=:why"),
)}


def transition(session: Session, name: str, rows: Sequence[Mapping[str, object]]) -> int:
    """Move many ops by one transition in the caller's transaction; returns how many moved.

    Each row names its op as ``id`` and gives the transition's parameters
    (``now`` is filled in when missing). An op not in one of the transition's
    source states is left as it is: for a batch that is the right answer to a
    race (an op a person cancelled meanwhile stays cancelled); callers that
    must know use :func:`transition_one`.
    """
    if not rows:
        return 0
    t = TRANSITIONS[name]
    now = now_iso()
    params = [r if "now" in r else {**r, "now": now} for r in rows]
    if t.target is None and any(p.get("state") not in t.targets for p in params):
        raise IllegalTransition(f"{name} moves an op only to {sorted(t.targets)}")
    session.flush()  # the ORM's pending writes first: they share this transaction
    # sqlite3's executemany binds named parameters in C: no per-row Python on the hot path
    raw = session.connection().connection.dbapi_connection
    assert raw is not None
    cur = raw.cursor()
    before = raw.total_changes
    cur.executemany(t.sql, params)
    return int(raw.total_changes - before)


def transition_one(session: Session, op_id: str, name: str, **params: str | None) -> str:
    """Move one op, refusing (``IllegalTransition``) a move the table does not allow.

    Returns the state the op was in before, for the audit log.
    """
    t = TRANSITIONS[name]
    current = op_state(session, op_id)
    if current is None:
        raise IllegalTransition(f"op {op_id} does not exist")
    target = params.get("state") if t.target is None else t.target
    if not t.allows(current, target):
        raise IllegalTransition(f"op {op_id} is {current}: {name} is not allowed from there")
    moved = transition(session, name, [{"id": op_id, **params}])
    if moved != 1:  # pragma: no cover - the state was read in this same transaction
        raise IllegalTransition(f"op {op_id} changed under us")
    for obj in list(session.identity_map.values()):  # the caller's copy of the row now says what moved
        if isinstance(obj, Op) and obj.op_id == op_id:
            session.refresh(obj)
    return current


def new_op_id() -> str:
    return str(ULID())


def op_values(
    *,
    seq: int,
    kind: str,
    device_id: str,
    operator_id: str,
    payload: BaseModel | Mapping[str, object],
    depends_on: Iterable[str] = (),
    recorded_at: datetime | str | None = None,
    record_kind: str | None = None,
    record_ref: str | None = None,
    op_id: str | None = None,
    source: str = "counter",
    supersedes: str | None = None,
    origin: Mapping[str, object] | None = None,
) -> dict[str, object]:
    """The columns of a new op (see ``enqueue``; ``Tx`` writes a bulk import's with ``records.insert_rows``)."""
    body = wire(payload) if isinstance(payload, BaseModel) else payload
    at = recorded_at.isoformat() if isinstance(recorded_at, datetime) else (recorded_at or now_iso())
    return record_values(
        Op,
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
        origin=dumps(origin) if origin else None,
    )


class NewOp(TypedDict, total=False):
    """``enqueue``'s fields: ``op_values``' keywords, named once (the first four are required)."""

    seq: Required[int]
    kind: Required[str]
    device_id: Required[str]
    operator_id: Required[str]
    payload: Required[BaseModel | Mapping[str, object]]
    depends_on: Iterable[str]
    recorded_at: datetime | str | None
    record_kind: str | None
    record_ref: str | None
    op_id: str | None
    source: str
    supersedes: str | None
    origin: Mapping[str, object] | None


def enqueue(session: Session, **fields: Unpack[NewOp]) -> Op:
    """Add one op to the outbox in the caller's transaction. A model is stored in
    its exact wire form (references with one key, empty optional fields left
    out); a dict is stored as given, so give one that came from :func:`wire`."""
    op = new_record(Op, **op_values(**fields))
    session.add(op)
    return op


def envelope(op: Op) -> dict[str, Any]:  # JSONObject once application/share.py narrows what it reads
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
        **({"origin": loads(op.origin)} if op.origin else {}),
    }


def as_envelope_model(op: Op) -> OpEnvelope:
    return OpEnvelope.model_validate(envelope(op))


def rewrite_unsent_payloads(conn: Connection, fix: Callable[[JSONValue], JSONValue], where: str) -> int:
    """A schema upgrade's rewrite of the payloads of ops not yet synced (``where``
    narrows them in SQL); synced ops keep what was sent. Returns how many changed.

    Only for migrations, inside their transaction: an op that left this counter
    is never rewritten, and a damaged payload is left for the sync to flag.
    """
    rows = conn.exec_driver_sql(f"SELECT seq, payload FROM op WHERE state != '{SYNCED}' AND ({where})").all()
    changed = 0
    for seq, text_ in rows:
        try:
            body = loads(text_)
        except ValueError:
            continue
        fixed = fix(body)
        if fixed != body:
            conn.exec_driver_sql("UPDATE op SET payload = ? WHERE seq = ?", (dumps(fixed), seq))
            changed += 1
    return changed


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


def quarantine(session: Session, seq: int, reason: str, *, raw_payload: bytes | None = None) -> bool:
    """Flag a pending op whose stored data is damaged for a person's review, with
    ``reason`` in words; it is never sent. Identified by ``seq`` (its op_id may
    be the damaged part). When the payload is not even valid UTF-8 (nothing
    could read the row), it is replaced by its readable part and the original
    bytes are kept, in hex, in ``last_error``. Returns whether the op was pending."""
    from opd_fallback.store import audit

    error: dict[str, str] = {"code": DAMAGED, "message": reason}
    params: dict[str, str | int] = {"seq": seq, "now": now_iso()}
    set_payload = ""
    if raw_payload is not None:
        try:
            raw_payload.decode()
        except UnicodeDecodeError:
            error["original_payload_hex"] = raw_payload.hex()
            params["payload"] = raw_payload.decode("utf-8", "replace")
            set_payload = ", payload=:payload"
    params["err"] = dumps(error)
    result = session.connection().execute(text(
        f"UPDATE op SET state='{REJECTED}', last_status='{DAMAGED}', last_error=:err, wait_reason=NULL, "
        f"updated_at=:now, attempts=attempts+1{set_payload} WHERE seq=:seq AND state='{PENDING}'"), params)
    if not result.rowcount:
        return False
    audit.record(session, "sync", "op.quarantine", str(seq), reason=reason)
    return True

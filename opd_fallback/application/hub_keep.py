"""What this counter keeps on the LAN hub so a new PC can become it again (``restore --from-hub``).

Sent after every exchange of ops (``application/share.py``), only what is new:

- **facts** of each own op above the last sent seq: the op's local columns
  (``source``, ``supersedes``, the record it made) and the record's row as it
  was saved (a visit's patient name and uhid, a lab order's total, a void's
  approving supervisor: what the op's payload does not carry). A record's row
  is taken from the table by the op that made it, minus the columns central
  fills in later (those come back from central's answers or the hub's ids);
- the **audit log** above the last sent entry (who approved what);
- the **back-entered slips** (``backentry_slip`` rows: no ``op_id`` of their own) above the last sent row;
- the **operators** (id, name, argon2 PIN hash, role, active) and the
  **master data**, only when they changed since the last send (a digest; not with every new op);
- the **numbers**: the highest seq handed out and central's last ``max_seq``.

Nothing here blocks saving: it runs in the share worker and a failure is the
exchange's ``problems``, never a lost record (the next exchange sends again).
"""

from __future__ import annotations

import hashlib
from typing import Protocol, TypedDict

import orjson
from sqlalchemy import Table
from sqlalchemy import select as select_table
from sqlmodel import Session, SQLModel, col, select

from opd_fallback.domain.jsonio import JSONValue
from opd_fallback.store import meta, numbers
from opd_fallback.store.engine import Store
from opd_fallback.store.tables import AuditEntry, BackEntrySlip, MasterDataCache, Op, Operator

FACTS_PAGE = 2000
AUDIT_PAGE = 2000
SLIP_PAGE = 2000
SLIP_SENT = "hub_keep_slip_id"  # meta: back-entered slips sent through this row id
# the row as it stands when sent (central ids learnt later come back from the hub's ids); not its row number
LEARNED_LATER = {"id"}
# tables whose rows an op makes but that are not records of the exchange itself
NOT_RECORDS = {"op", "shared_record"}


class KeepApi(Protocol):
    def keep_put(self, body: dict[str, object]) -> object: ...


# a record's row as kept: column -> value, as saved
Row = dict[str, JSONValue]


class Facts(TypedDict):
    source: str
    supersedes: str | None
    record_kind: str | None
    record_ref: str | None
    rows: dict[str, list[Row]]  # table -> the rows the op made


class OpFacts(TypedDict):
    op_id: str
    seq: int
    facts: Facts


class OperatorRow(TypedDict):
    id: str
    name: str
    pin_hash: str
    role: str
    active: bool
    created_at: str


class MasterRow(TypedDict):
    version: str
    etag: str | None
    body: str
    fetched_at: str


def record_tables() -> dict[str, Table]:
    """Every counter table whose rows name the op that made them (``op_id``): patient, visit,
    lab order, payment, void, and whatever a later schema adds (a sample's collection): kept whole."""
    return {name: t for name, t in SQLModel.metadata.tables.items() if "op_id" in t.c and name not in NOT_RECORDS}


def op_facts(session: Session, ops: list[Op]) -> list[OpFacts]:
    """The facts of ``ops`` (this counter's own), one per op."""
    rows: dict[str, dict[str, list[Row]]] = {}
    ids = [o.op_id for o in ops]
    for name, table in record_tables().items():
        for i in range(0, len(ids), 500):
            for rec in session.execute(select_table(table).where(table.c.op_id.in_(ids[i:i + 500]))).mappings():
                row: Row = {k: v for k, v in rec.items() if k not in LEARNED_LATER}
                rows.setdefault(str(rec["op_id"]), {}).setdefault(name, []).append(row)
    return [{"op_id": o.op_id, "seq": o.seq, "facts": {
        "source": o.source, "supersedes": o.supersedes, "record_kind": o.record_kind, "record_ref": o.record_ref,
        "rows": rows.get(o.op_id, {})}} for o in ops]


def _operators(session: Session) -> list[OperatorRow]:
    return [{"id": o.id, "name": o.name, "pin_hash": o.pin_hash, "role": o.role, "active": bool(o.active),
             "created_at": o.created_at} for o in session.exec(select(Operator).order_by(col(Operator.id))).all()]


def _master_id(session: Session) -> list[str | None] | None:
    row = session.execute(select_table(col(MasterDataCache.version), col(MasterDataCache.etag),
                                       col(MasterDataCache.fetched_at)).where(col(MasterDataCache.id) == 1)).first()
    return None if row is None else [str(v) if v is not None else None for v in row]


def _master(session: Session) -> MasterRow | None:
    md = session.get(MasterDataCache, 1)
    return None if md is None else {"version": md.version, "etag": md.etag, "body": md.body,
                                    "fetched_at": md.fetched_at}


def operators_and_master(session: Session) -> tuple[list[OperatorRow], MasterRow | None]:
    return _operators(session), _master(session)


def _central_max_seq(session: Session) -> int:
    raw = meta.get(session, meta.LAST_SEQ_CHECK)
    try:
        return int(orjson.loads(raw).get("central_max_seq") or 0) if raw else 0
    except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
        return 0


def send(store: Store, client: KeepApi) -> dict[str, int]:
    """Send what is new since the last send; returns how many facts and audit entries went."""
    sent = {"facts": 0, "audit": 0, "slips": 0}
    with store.read() as s:
        facts_seq = int(meta.get(s, meta.HUB_KEEP_FACTS_SEQ) or 0)
        audit_id = int(meta.get(s, meta.HUB_KEEP_AUDIT_ID) or 0)
        digest_was = meta.get(s, meta.HUB_KEEP_DIGEST)
        slip_id = int(meta.get(s, SLIP_SENT) or 0)
    while True:
        with store.read() as s:
            ops = list(s.exec(select(Op).where(Op.seq > facts_seq).order_by(col(Op.seq)).limit(FACTS_PAGE)).all())
            facts = op_facts(s, ops)
            entries = list(s.exec(select(AuditEntry).where(col(AuditEntry.id) > audit_id)
                                  .order_by(col(AuditEntry.id)).limit(AUDIT_PAGE)).all())
            slips = list(s.exec(select(BackEntrySlip).where(col(BackEntrySlip.id) > slip_id)
                                .order_by(col(BackEntrySlip.id)).limit(SLIP_PAGE)).all())
            operators = _operators(s)
            master_id = _master_id(s)
            seq_high = numbers.peek(s, numbers.SEQ)
            central_max = _central_max_seq(s)
            # the master data by its version, etag and time, not its body (read only when it changed):
            # this runs at every exchange, each half second
            # two parts: the operators and master data (sent only when they changed: not with every new op)
            # and the numbers (sent with every call anyway)
            who = hashlib.sha256(orjson.dumps([operators, master_id])).hexdigest()
            digest = who + ":" + hashlib.sha256(orjson.dumps([seq_high, central_max])).hexdigest()
            changed = digest != digest_was
            who_changed = who != (digest_was or "").split(":")[0]
            master = _master(s) if who_changed else None
        if not facts and not entries and not slips and not changed:
            break  # nothing new: no call at all (the UI exchanges every half second)
        body: dict[str, object] = {
            "facts": facts,
            "audit": [{"id": e.id, "at": e.at, "actor": e.actor, "action": e.action, "subject": e.subject,
                       "detail": e.detail} for e in entries],
            "slips": [sl.model_dump() for sl in slips],
            "seq_high": seq_high, "central_max_seq": central_max,
        }
        if who_changed:
            body["operators"], body["master_data"] = operators, master
        client.keep_put(body)
        sent["facts"] += len(facts)
        sent["audit"] += len(entries)
        sent["slips"] += len(slips)
        with store.write() as s:
            if ops:
                facts_seq = ops[-1].seq
                meta.put(s, meta.HUB_KEEP_FACTS_SEQ, str(facts_seq))
            if entries:
                audit_id = int(entries[-1].id or 0)
                meta.put(s, meta.HUB_KEEP_AUDIT_ID, str(audit_id))
            if slips:
                slip_id = int(slips[-1].id or 0)
                meta.put(s, SLIP_SENT, str(slip_id))
            if changed:
                meta.put(s, meta.HUB_KEEP_DIGEST, digest)
                digest_was = digest
        if len(ops) < FACTS_PAGE and len(entries) < AUDIT_PAGE and len(slips) < SLIP_PAGE:
            break
    return sent


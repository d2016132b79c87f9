"""The other counters' records at this counter (``shared_record``), pulled from the hub.

One page of the hub's changes is stored in one transaction together with the
cursor that follows it, so a crash re-pulls a page rather than skipping one,
and storing is idempotent by ``local_ref``. These rows are never this
counter's ops: nothing here touches the outbox.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import text
from sqlmodel import Session, select

from opd_fallback.domain import shared
from opd_fallback.domain.clock import now_iso
from opd_fallback.store.tables import SharedRecord


@dataclass
class Stored:
    records: int = 0  # new records of other counters
    updates: int = 0  # patient updates and voids applied to them
    central_ids: int = 0  # central ids attached


def store_page(session: Session, own_device: str, ops: Iterable[dict[str, Any]],
               central_ids: Iterable[dict[str, Any]]) -> Stored:
    """Store one pulled page (``ops`` are the hub's ``{"hub_seq", "op"}`` items)."""
    out = Stored()
    now = now_iso()
    for item in ops:
        op = item.get("op") if isinstance(item, dict) else None
        if not isinstance(op, dict) or op.get("device_id") == own_device:
            continue  # this counter's own ops live in its outbox, not here
        rec = shared.record_of(op)
        if rec is not None:
            res = session.execute(text(
                "INSERT INTO shared_record(local_ref, kind, device_id, op_id, recorded_at, patient_ref, visit_ref, "
                "lab_order_ref, name, mobile, uhid, central_id, voided, detail, hub_seq, pulled_at) "
                "VALUES (:local_ref, :kind, :device_id, :op_id, :recorded_at, :patient_ref, :visit_ref, "
                ":lab_order_ref, :name, :mobile, :uhid, :uhid_if_patient, 0, :detail, :hub_seq, :now) "
                "ON CONFLICT(local_ref) DO NOTHING"),
                {**rec.as_dict(), "detail": orjson.dumps(rec.detail).decode(), "hub_seq": int(item["hub_seq"]),
                 "now": now, "uhid_if_patient": rec.uhid if rec.kind == "patient" else None})
            out.records += int(getattr(res, "rowcount", 0) or 0)
            continue
        change = shared.patient_changes(op)
        if change is not None:
            ref, fields = change
            row = session.exec(select(SharedRecord).where(
                SharedRecord.kind == "patient",
                (SharedRecord.local_ref == ref) | (SharedRecord.central_id == ref))).first()
            if row is not None:
                detail = orjson.loads(row.detail)
                detail.update(fields)
                row.detail = orjson.dumps(detail).decode()
                row.name = detail.get("name") or row.name
                row.mobile = detail.get("mobile")
                session.add(row)
                out.updates += 1
            continue
        target = shared.voided_payment(op)
        if target is not None:
            res = session.execute(text("UPDATE shared_record SET voided=1 WHERE kind='payment' AND local_ref=:r"),
                                  {"r": target})
            out.updates += int(getattr(res, "rowcount", 0) or 0)
    for cid in central_ids:
        if not isinstance(cid, dict) or not cid.get("local_ref") or not cid.get("central_id"):
            continue
        res = session.execute(text("UPDATE shared_record SET central_id=:c WHERE local_ref=:r"),
                              {"c": str(cid["central_id"]), "r": str(cid["local_ref"]).upper()})
        out.central_ids += int(getattr(res, "rowcount", 0) or 0)
    return out


def get(session: Session, key: str, kind: str | None = None) -> SharedRecord | None:
    """A record of another counter by its offline number or central id."""
    k = (key or "").strip().upper()
    if not k:
        return None
    stmt = select(SharedRecord).where((SharedRecord.local_ref == k) | (SharedRecord.central_id == k))
    if kind:
        stmt = stmt.where(SharedRecord.kind == kind)
    return session.exec(stmt).first()


def detail(row: SharedRecord) -> dict[str, Any]:
    value = orjson.loads(row.detail or "{}")
    return value if isinstance(value, dict) else {}


def counts(session: Session) -> dict[str, int]:
    """Records from other counters, by counter."""
    rows = session.execute(text("SELECT device_id, count(*) FROM shared_record GROUP BY device_id")).all()
    return {str(d): int(n) for d, n in rows}

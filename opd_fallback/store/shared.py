"""The other counters' records at this counter (``shared_record``), pulled from the hub.

One page of the hub's changes is stored in one transaction together with the
cursor that follows it, so a crash re-pulls a page rather than skipping one,
and storing is idempotent by ``local_ref``. These rows are never this
counter's ops: nothing here touches the outbox.

Decided: another counter's ``patient.update`` of a patient registered *here*
changes this counter's own ``patient`` row (``_apply_own``), not a
``shared_record``, and adds no op (the edit is the other counter's; it alone
syncs it, exactly once). Per field, the later ``(recorded_at, op_id)`` wins,
the rule the LAN's records follow, this counter's own edits being its outbox's
``patient.update`` ops. This counter's own edit of another counter's patient
goes on that ``shared_record`` (``note_own_edit``, marked ``_mine``). An older
edit arriving after this counter's own later change of that field to another
value (either way round) was made with neither counter knowing of the other's:
kept out, and flagged for a person (``review.lan_edit_conflict``
in the audit log, ``share``'s problems). Voids of another counter's payment
cannot be made (``tx.void_payment`` finds only this counter's payments).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypedDict

import orjson
from sqlalchemy import event, text
from sqlmodel import Session, col, select

from opd_fallback.domain import shared
from opd_fallback.domain.clock import now_iso
from opd_fallback.store import samples
from opd_fallback.store.engine import Store
from opd_fallback.store.states import CANCELLED
from opd_fallback.store.tables import Op, Patient, SharedRecord

# --- a save wakes the sharer (application/share.py) -----------------------------------------
_WAKERS: dict[int, list[Callable[[], None]]] = {}  # id(a store's write engine) -> callbacks
_WAKERS_LOCK = threading.Lock()
_NEW_OP = "opd_new_op"


def _before_flush(session: Session, _ctx: object, _instances: object) -> None:
    if any(isinstance(o, Op) for o in session.new):
        session.info[_NEW_OP] = True


def _after_commit(session: Session) -> None:
    if session.info.pop(_NEW_OP, False):
        for wake in list(_WAKERS.get(id(session.get_bind()), ())):
            wake()


def _after_rollback(session: Session) -> None:
    session.info.pop(_NEW_OP, None)


def on_new_ops(store: Store, wake: Callable[[], None]) -> Callable[[], None]:
    """Call ``wake`` (cheap: it sets an event) after every commit that put an op in ``store``'s outbox,
    so the share worker sends a saved record at once instead of at its next poll; returns the undo."""
    with _WAKERS_LOCK:
        if not _WAKERS:
            for name, fn in (("before_flush", _before_flush), ("after_commit", _after_commit),
                             ("after_rollback", _after_rollback)):
                if not event.contains(Session, name, fn):
                    event.listen(Session, name, fn)
        _WAKERS.setdefault(id(store._writer), []).append(wake)

    def undo() -> None:
        with _WAKERS_LOCK:
            hooks = _WAKERS.get(id(store._writer), [])
            if wake in hooks:
                hooks.remove(wake)
            if not hooks:
                _WAKERS.pop(id(store._writer), None)
    return undo


@dataclass
class Stored:
    records: int = 0  # new records of other counters
    updates: int = 0  # patient updates and voids applied to them
    central_ids: int = 0  # central ids attached
    withdrawn: int = 0  # records dropped: their counter's supervisor cancelled the op
    samples: int = 0  # tubes drawn or refused at other counters' collection desks
    waiting: int = 0  # patient updates and voids kept until their record arrives
    conflicts: list[str] = field(default_factory=list)  # for a person: edits of one field at two counters


def store_page(session: Session, own_device: str, ops: Iterable[dict[str, Any]],
               central_ids: Iterable[dict[str, Any]], withdrawn: Iterable[dict[str, Any]] = ()) -> Stored:
    """Store one pulled page (``ops`` are the hub's ``{"hub_seq", "op"}`` items)."""
    out = Stored()
    now = now_iso()
    waiting: list[Change] = []
    for item in ops:
        op = item.get("op") if isinstance(item, dict) else None
        if not isinstance(op, dict) or op.get("device_id") == own_device:
            continue  # this counter's own ops live in its outbox, not here
        rec = shared.record_of(op)
        if rec is not None:
            old = session.execute(text("SELECT device_id, op_id FROM shared_record WHERE local_ref=:r"),
                                  {"r": rec.local_ref}).first()
            if old is not None:
                # a correction (review --correct: a new op of the same counter for the same record) replaces
                # it; op ids are ULIDs, so the later op sorts higher. Anything else keeps the first record.
                if str(old[0]) == rec.device_id and str(old[1]) < rec.op_id:
                    session.execute(text(
                        "UPDATE shared_record SET op_id=:op_id, recorded_at=:recorded_at, patient_ref=:patient_ref, "
                        "visit_ref=:visit_ref, lab_order_ref=:lab_order_ref, name=:name, mobile=:mobile, uhid=:uhid, "
                        "central_id=coalesce(central_id, :uhid_if_patient), detail=:detail, pulled_at=:now "
                        "WHERE local_ref=:local_ref"),
                        {**rec.as_dict(), "detail": orjson.dumps(rec.detail).decode(), "now": now,
                         "uhid_if_patient": rec.uhid if rec.kind == "patient" else None})
                    out.updates += 1
                continue
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
        at = [str(op.get("recorded_at") or ""), str(op.get("op_id") or "")]
        if change is not None:
            ref, fields = change
            whole = (op.get("payload") or {}).get("changes")  # every column, for this counter's own patient
            edit: Change = {"what": "patient", "ref": ref, "fields": fields, "at": at,
                            "changes": whole if isinstance(whole, dict) else dict(fields),
                            "by": str(op.get("device_id") or "")}
            done = _apply(session, edit, out)
            if done:
                out.updates += 1
            elif done is None:  # its record has not come yet (or, in a restore, not been replayed): kept
                waiting.append(edit)
            continue
        target = shared.voided_payment(op)
        if target is not None:
            if _apply(session, {"what": "void", "ref": target, "at": at}, out):
                out.updates += 1
            elif not target.startswith(own_device + "-"):  # a counter voids only its own payments (tx.py)
                waiting.append({"what": "void", "ref": target, "at": at})
            continue
        if op.get("kind") == "lab.sample_collect":  # a tube drawn or refused at another desk
            out.samples += samples.store_pulled(session, op, now)
    for cid in central_ids:
        if not isinstance(cid, dict) or not cid.get("local_ref") or not cid.get("central_id"):
            continue
        # provenance: only the record's own counter says which central id it has
        res = session.execute(text("UPDATE shared_record SET central_id=:c WHERE local_ref=:r AND device_id=:by"),
                              {"c": str(cid["central_id"]), "r": str(cid["local_ref"]).upper(),
                               "by": str(cid.get("reported_by") or "")})
        out.central_ids += int(getattr(res, "rowcount", 0) or 0)
    for gone in withdrawn:
        if isinstance(gone, dict) and gone.get("op_id") and gone.get("device_id") != own_device:
            res = session.execute(text("DELETE FROM shared_record WHERE op_id=:o"), {"o": str(gone["op_id"])})
            out.withdrawn += int(getattr(res, "rowcount", 0) or 0)
            res = session.execute(text("DELETE FROM sample_event WHERE op_id=:o AND source='hub'"),
                                  {"o": str(gone["op_id"])})
            out.withdrawn += int(getattr(res, "rowcount", 0) or 0)
    _settle(session, waiting, out)
    _put_own_marks(session)
    return out


def _put_own_marks(session: Session) -> None:
    from opd_fallback.store import meta

    kept = session.info.pop(OWN_MARKS, None)
    if kept is not None:
        meta.put(session, OWN_MARKS, orjson.dumps(kept).decode())


# --- changes that came before their record (a hub re-created empty, healed by the counters in any order) ---
WAITING = "hub_waiting_changes"  # meta: JSON [{what, ref, fields, at}]: a patient.update or void kept for its record
_CHANGED = "_changed"  # in a patient's detail: per field, [recorded_at, op_id] of the change it holds
_MINE = "_mine"  # ... and of this counter's own edits among them (note_own_edit)
_JUDGED = "_judged"  # ... and the op ids of older edits already flagged against them (flagged once)
# meta: JSON {local_ref: {"marks": {field: [recorded_at, op_id]}, "seen": [op_id, ...]}}: the other counters'
# edits of this counter's own patients, taken or not (the own edits' marks are the outbox's ops)
OWN_MARKS = "hub_own_patient_marks"
_NOT_EDITED = ("id", "local_ref", "uhid", "version", "op_id", "operator_id", "created_at")


class Change(TypedDict, total=False):
    """A patient.update or payment.void pulled from the hub, as kept until its record is here."""

    what: Literal["patient", "void"]
    ref: str  # the patient's or the payment's offline number (or a patient's central id)
    fields: Mapping[str, object]  # a patient's index fields the change sets
    changes: Mapping[str, object]  # every field it sets (this counter's own patient takes them all)
    by: str  # the counter that made it
    at: list[str]  # [recorded_at, op_id]: which change is later


def _apply(session: Session, change: Change, out: Stored, *, flag: bool = True) -> bool | None:
    """Apply one pulled change to its record here: True applied, False here but nothing new, None when
    the record is not here (yet). A patient's fields take a change only if it is later (recorded_at,
    op_id) than the one the field holds, so the result is the same in whatever order the changes and
    the record arrive. This counter's own patient is the ``patient`` row (``_apply_own``)."""
    ref, at = str(change["ref"]), list(change["at"])
    if change["what"] == "void":
        res = session.execute(text("UPDATE shared_record SET voided=1 WHERE kind='payment' AND local_ref=:r"),
                              {"r": ref})
        return True if getattr(res, "rowcount", 0) else None
    own = _apply_own(session, change, out, flag=flag)
    if own is not None:
        return own
    row = session.exec(select(SharedRecord).where(
        SharedRecord.kind == "patient", (SharedRecord.local_ref == ref) | (SharedRecord.central_id == ref))).first()
    if row is None:
        return None
    detail = orjson.loads(row.detail)
    marks = detail.get(_CHANGED) if isinstance(detail.get(_CHANGED), dict) else {}
    mine = detail.get(_MINE) if isinstance(detail.get(_MINE), dict) else {}
    lost: list[tuple[str, str]] = []
    for k, v in change.get("fields", {}).items():
        if k in marks and list(marks[k]) >= at:
            if mine.get(k) == marks[k] and detail.get(k) != v:  # this counter's own later change holds it
                lost.append((k, str(marks[k][0])))
            continue  # a later change of this field is here already
        detail[k], marks[k] = v, at
    detail[_CHANGED] = marks
    if lost and flag and at[1] not in detail.get(_JUDGED, []):
        detail[_JUDGED] = [*detail.get(_JUDGED, []), at[1]]
        _flag(session, out, row.local_ref, str(change.get("by") or "another counter"), at, lost)
    _put_detail(row, detail)
    session.add(row)
    return True


def _put_detail(row: SharedRecord, detail: Mapping[str, object]) -> None:
    row.detail = orjson.dumps(detail, option=orjson.OPT_SORT_KEYS).decode()  # one spelling in any order of changes
    name, mobile = detail.get("name"), detail.get("mobile")
    row.name = str(name) if name else row.name
    row.mobile = None if mobile is None else str(mobile)


def note_own_edit(session: Session, ref: str | None, changes: Mapping[str, object], recorded_at: datetime | str,
                  op_id: str) -> bool:
    """This counter's own ``patient.update`` of another counter's patient, on its ``shared_record`` (its
    search and papers show it; ``_MINE`` marks it, so an older edit arriving later is flagged). Per field
    the later (recorded_at, op_id) wins, as for a pulled change; False: no such record here."""
    row = None if not ref else get(session, ref, "patient")
    if row is None:
        return False
    at = [recorded_at.isoformat() if isinstance(recorded_at, datetime) else recorded_at, op_id]  # as the op's
    detail = orjson.loads(row.detail)
    marks = detail.get(_CHANGED) if isinstance(detail.get(_CHANGED), dict) else {}
    mine = detail.get(_MINE) if isinstance(detail.get(_MINE), dict) else {}
    indexed = shared.patient_changes({"kind": "patient.update", "payload": {"patient": {"local_ref": ref},
                                                                            "changes": dict(changes)}})
    for k, v in (indexed[1] if indexed else {}).items():
        if not (k in marks and list(marks[k]) >= at):
            detail[k], marks[k], mine[k] = v, at, at
    detail[_CHANGED], detail[_MINE] = marks, mine
    _put_detail(row, detail)
    session.add(row)
    return True


def _flag(session: Session, out: Stored, ref: str, by: str, at: list[str], lost: list[tuple[str, str]]) -> None:
    """An older edit of another counter arrived after this counter's own later change of the same fields:
    made with neither knowing of the other's. The later stays; a person is told (a sentence per field, no
    patient data: it is shown and kept as the share's outcome), in ``review history`` and ``share``."""
    from opd_fallback.store import audit, lan_conflicts

    why = [f"patient {ref}: counter {by} changed {k} at {at[0][11:16]} without knowing this counter's change "
           f"of {mine_at[11:16]}; this counter's later change is kept (the later wins on every counter): "
           "check with the patient which is right and correct it if it is not" for k, mine_at in lost]
    audit.record(session, "hub", lan_conflicts.ACTION, ref, by=by, op_id=at[1], fields=[k for k, _ in lost],
                 why="; ".join(why))
    out.conflicts += why


class _OwnMark(TypedDict):
    """What this counter knows of the other counters' edits of one of its patients (``OWN_MARKS``)."""

    marks: dict[str, list[str]]  # per field: [recorded_at, op_id] of the other counter's edit it holds
    seen: list[str]  # op ids of the edits taken or judged (a pull again changes nothing)


def _own_edits(session: Session, patient: Patient) -> dict[str, tuple[list[str], object]]:
    """This counter's own edits of its patient (its outbox's ``patient.update`` ops, cancelled ones
    aside), per field: [recorded_at, op_id] of the latest and the value it set."""
    refs = [r for r in (patient.local_ref, patient.uhid) if r]
    ops = session.exec(select(Op).where(Op.kind == "patient.update", col(Op.record_ref).in_(refs),
                                        Op.state != CANCELLED)).all()
    out: dict[str, tuple[list[str], object]] = {}
    for op in ops:
        changes = orjson.loads(op.payload).get("changes") or {}
        at = [str(op.recorded_at), str(op.op_id)]
        for k, v in changes.items():
            if k not in out or out[k][0] < at:
                out[k] = (at, v)
    return out


def _apply_own(session: Session, change: Change, out: Stored, *, flag: bool) -> bool | None:
    """Another counter's edit of a patient registered here, on this counter's own ``patient`` row (no op:
    the edit is the other counter's, synced by it alone). Per field the later (recorded_at, op_id) wins,
    as for the LAN's records; an older edit arriving after this counter's own later change of the same
    field to another value was made without either knowing the other's: it is flagged for a person
    (``review.lan_edit_conflict`` in the audit log, ``share``'s problems). None: not a patient of here."""
    from opd_fallback.store import audit, meta

    ref, at = str(change["ref"]), list(change["at"])
    with session.no_autoflush:  # the page's rows are flushed once at its end, not before each edit's reads
        patient = session.exec(select(Patient).where((Patient.local_ref == ref) | (Patient.uhid == ref))).first()
        own = _own_edits(session, patient) if patient is not None else {}
    if patient is None:
        return None
    kept: dict[str, _OwnMark] | None = session.info.get(OWN_MARKS)  # read once a page, written at its end
    if kept is None:
        raw = meta.get(session, OWN_MARKS)
        kept = session.info[OWN_MARKS] = orjson.loads(raw) if raw else {}
    mark = kept.setdefault(patient.local_ref, {"marks": {}, "seen": []})
    if at[1] in mark["seen"]:
        return False  # pulled again (a hub gone back, a restore): taken or judged once already
    taken, lost = [], []
    for k, v in (change.get("changes") or change.get("fields") or {}).items():
        if k in _NOT_EDITED or k not in Patient.model_fields:
            continue
        mine, theirs = own.get(k), mark["marks"].get(k)
        if (mine is not None and mine[0] >= at) or (theirs is not None and list(theirs) >= at):
            if mine is not None and mine[0] >= at and mine[1] != v and (theirs is None or mine[0] >= theirs):
                lost.append((k, mine[0][0]))
            continue  # a later change of this field is here already
        mark["marks"][k] = at
        if getattr(patient, k) != v:
            setattr(patient, k, v)
            taken.append(k)
    mark["seen"].append(at[1])
    by = str(change.get("by") or "another counter")
    if taken:
        session.add(patient)
        if flag:
            audit.record(session, "hub", "patient.updated_by_lan", patient.local_ref, by=by, op_id=at[1], fields=taken)
    if lost and flag:
        _flag(session, out, patient.local_ref, by, at, lost)
    return bool(taken)


def _settle(session: Session, new: list[Change], out: Stored, *, flag: bool = True) -> None:
    """Keep the changes whose record is not here; apply those kept before whose record came (in the
    page just stored, by a central id, or replayed by a restore), oldest first. Never dropped in
    silence: ``waiting``."""
    from opd_fallback.store import meta

    raw = meta.get(session, WAITING)
    kept: list[Change] = orjson.loads(raw) if raw else []
    if not kept and not new:
        return
    still: list[Change] = []
    seen: set[tuple[str, ...]] = set()
    for change in sorted([*kept, *new], key=lambda c: list(c["at"])):
        if tuple(change["at"]) in seen:
            continue
        seen.add(tuple(change["at"]))
        done = _apply(session, change, out, flag=flag)
        if done:  # its record came in this page (or by a central id) after the change
            out.updates += 1
        elif done is None:
            still.append(change)
    out.waiting = len(still)
    if still != kept:
        meta.put(session, WAITING, orjson.dumps(still).decode())


def settle(session: Session) -> Stored:
    """Apply the kept changes whose record is here now (a restore, after replaying the counter's own
    records); nothing is flagged: what the old PC judged is in its audit log, restored with it."""
    out = Stored()
    _settle(session, [], out, flag=False)
    _put_own_marks(session)
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


def rebuild_own(session: Session, op: dict[str, Any], patient_names: dict[str, str]) -> str | None:
    """Put back one of this counter's own ops (from the hub) as a pending outbox op
    and the record it made; returns the record kind or None. Pending is right:
    central answers ``duplicate`` for what it already applied, so nothing doubles."""
    from opd_fallback.store import numbers, outbox
    from opd_fallback.store.tables import LabOrder, Op, Patient, Payment, PaymentVoid, Visit

    if session.exec(select(Op).where(Op.op_id == op["op_id"])).first() is not None:
        return None
    rec = shared.record_of(op)
    p = op.get("payload") or {}
    who, at, op_id = str(op.get("operator_id") or "?"), str(op.get("recorded_at") or now_iso()), str(op["op_id"])
    target = shared.voided_payment(op)
    tube = shared.sample_event(op)
    session.add(Op(
        seq=int(op["seq"]), op_id=op_id, kind=str(op["kind"]), device_id=str(op["device_id"]), operator_id=who,
        recorded_at=at, depends_on=outbox.dumps(sorted(op.get("depends_on") or [])), payload=outbox.dumps(p),
        resolution=None if op.get("resolution") is None else outbox.dumps(op["resolution"]), updated_at=now_iso(),
        record_kind=rec.kind if rec else ("payment_void" if target else "sample_event" if tube else "patient"),
        record_ref=rec.local_ref if rec else (target or (tube.sample_id if tube else None)
                                              or shared.ref_key(p.get("patient"))), source="hub_restore",
        origin=outbox.dumps(op["origin"]) if isinstance(op.get("origin"), dict) and op["origin"] else None,
    ))
    if tube is not None:
        samples.add_event(session, op_id=op_id, sample_id=tube.sample_id, order_ref=None, status=tube.status,
                          collected_at=tube.collected_at, device_id=tube.device_id, operator_id=who,
                          reason=tube.reason, note=tube.note, created_at=at)
        return "sample_event"
    base: dict[str, Any] = {"op_id": op_id, "operator_id": who, "created_at": at}
    table: Any = {"patient": Patient, "visit": Visit, "lab_order": LabOrder, "payment": Payment}.get(
        rec.kind if rec else "")
    if table is not None and rec is not None and session.exec(
            select(table).where(table.local_ref == rec.local_ref)).first() is not None:
        return None  # a corrected copy of an op whose record is back already: the record stays one
    if rec is None:
        if target:
            session.add(PaymentVoid(payment_local_ref=target, reason=str(p.get("reason") or ""),
                                    approved_by="(restored from hub)", **base))
            return "payment_void"
        return None
    patient = rec.patient_ref
    pl, pu = (patient, None) if patient and numbers.is_local_ref(patient) else (None, patient)
    name = patient_names.get(patient or "", "")
    if rec.kind == "patient":
        fields: dict[str, Any] = {k: p.get(k) for k in Patient.model_fields if k in p and k not in ("id", "version")}
        session.add(Patient(**{**fields, "local_ref": rec.local_ref}, **base))
    elif rec.kind == "visit":
        d = rec.detail
        session.add(Visit(local_ref=rec.local_ref, patient_local_ref=pl, patient_uhid=pu, patient_name=name,
                          department=str(d.get("department") or ""), unit=d.get("unit"),
                          visit_type=str(d.get("visit_type") or "new"), visit_date=str(d.get("visit_date") or at[:10]),
                          token_no=int(d.get("token_no") or 0), **base))
        session.execute(text(
            "INSERT INTO counter(name, value) VALUES (:n, :v) ON CONFLICT(name) DO UPDATE SET value=max(value, :v)"),
            {"n": f"token:{d.get('department')}:{d.get('visit_date')}", "v": int(d.get("token_no") or 0)})
    elif rec.kind == "lab_order":
        v = rec.visit_ref
        session.add(LabOrder(local_ref=rec.local_ref, patient_local_ref=pl, patient_uhid=pu, patient_name=name,
                             visit_local_ref=v if v and numbers.is_local_ref(v) else None,
                             visit_central_id=None if v and numbers.is_local_ref(v) else v,
                             tests=outbox.dumps(rec.detail.get("tests") or []), sample_id=rec.detail.get("sample_id"),
                             priority=str(rec.detail.get("priority") or "routine"), **base))
    else:
        session.add(Payment(local_ref=rec.local_ref, receipt_no=str(p.get("receipt_no") or rec.local_ref),
                            patient_local_ref=pl, patient_uhid=pu, patient_name=name,
                            visit_local_ref=rec.visit_ref,
                            lab_order_local_ref=rec.lab_order_ref, amount_paise=int(p.get("amount_paise") or 0),
                            mode=str(p.get("mode") or "cash"), mode_ref=p.get("mode_ref"),
                            items=outbox.dumps(p.get("items") or []), **base))
    return rec.kind


def latest_visit_on(session: Session, patient_keys: Iterable[str], day: str) -> str | None:
    """Another counter's latest visit on ``day`` for a patient (by offline number or uhid)."""
    keys = [k for k in patient_keys if k]
    if not keys:
        return None
    marks = ", ".join(f":k{i}" for i in range(len(keys)))
    row = session.execute(text(
        f"SELECT local_ref FROM shared_record WHERE kind='visit' AND patient_ref IN ({marks}) "
        "AND json_extract(detail, '$.visit_date') = :d ORDER BY recorded_at DESC LIMIT 1"),
        {**{f"k{i}": k for i, k in enumerate(keys)}, "d": day}).first()
    return None if row is None else str(row[0])


def patient_of(session: Session, key: str) -> str | None:
    """The patient reference of another counter's visit or lab order (by offline or sample number)."""
    row = session.execute(text(
        "SELECT patient_ref FROM shared_record WHERE kind IN ('visit','lab_order') AND (local_ref = :r "
        "OR json_extract(detail, '$.sample_id') = :r) LIMIT 1"), {"r": key.strip().upper()}).first()
    return None if row is None or row[0] is None else str(row[0])

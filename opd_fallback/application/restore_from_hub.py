"""``restore --from-hub --device C03``: a new PC becomes counter C03 again, from the LAN hub.

The order (docs/restore.md): on the hub PC give the counter a new hub token
(``hub add-device C03``: the old PC's token is replaced); on the new PC
``init --device C03 ... --hub URL --hub-pairing-stdin``; then this.

What comes back, and from where:

- **the counter's own ops**, verbatim from the hub's mirror (``changes`` with
  ``include_own``), as pending outbox ops: central answers ``duplicate`` for
  what it already applied, so nothing doubles; what a supervisor cancelled
  (withdrawn) stays cancelled and never reaches central;
- **its records as they stood**, replayed in ``seq`` order: each record's row
  as it was saved (the counter's keep, hub/keep.py: patient name and uhid on a
  visit, a lab order's total, a void's approving supervisor), then every
  ``patient.update`` applied to its patient and every correction (an op that
  ``supersedes`` another) applied to its record, as review applied them at the
  old PC; the central ids the hub learned go on the records. An op kept
  without facts (shared by a counter before this version) is rebuilt from its
  payload alone;
- **other counters' records**, as ``share`` stores them;
- **its operators** (PIN hashes and roles: nobody has to be set up again),
  **its audit log**, **its back-entered slips** (so a slip file imported again
  is "already imported", not saved twice), and **the newest master data** any counter shared, so the
  first fee is priced while central is down;
- **its numbers**: new work continues above the highest ``seq`` the hub holds,
  the highest this counter told the hub it had handed out, and the ``max_seq``
  central last told it, plus ``SEQ_GAP`` for work that may have reached central
  after the counter's last exchange with the hub. So the counter takes new work
  at once, during the outage. When central answers, the caller checks its
  ``max_seq`` as well (``readiness``), which only ever raises the floor.

Refused on a counter database that already holds ops (two histories never mix).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from sqlmodel import Session, select

from opd_fallback.application.hub_keep import SLIP_SENT, record_tables
from opd_fallback.application.review.service import ReviewService
from opd_fallback.domain import shared as shared_domain
from opd_fallback.domain.clock import now_iso
from opd_fallback.domain.exits import OpdError
from opd_fallback.store import audit, hub_restore, meta, numbers, outbox
from opd_fallback.store import shared as shared_store
from opd_fallback.store.engine import Store
from opd_fallback.store.tables import (
    AuditEntry,
    BackEntrySlip,
    LabOrder,
    MasterDataCache,
    Op,
    Operator,
    Patient,
    Payment,
    Visit,
)

PULL_PAGE = 1000
MAX_PAGES = 10_000
# numbers a restored counter leaves unused above everything known, for ops that may have reached
# central after the dead PC's last exchange with the hub (central itself is checked when it answers)
SEQ_GAP = 1000
# the column of a record that holds its central id, by record kind
CENTRAL_ID_COLUMN = {"patient": "uhid", "visit": "central_id", "lab_order": "central_id", "payment": "central_id"}


class HubForRestore(Protocol):
    def me(self) -> dict[str, Any]: ...
    def changes(self, cursor: int, *, limit: int = 500, include_own: bool = False) -> dict[str, Any]: ...
    def keep_get(self) -> dict[str, Any]: ...
    def keep_facts(self, after_seq: int, *, limit: int = 2000) -> dict[str, Any]: ...
    def keep_audit(self, after_id: int, *, limit: int = 2000) -> dict[str, Any]: ...
    def keep_slips(self, after_id: int, *, limit: int = 2000) -> dict[str, object]: ...


@dataclass
class HubRestore:
    device_id: str
    own_ops: int = 0
    own_records: int = 0
    other_records: int = 0
    hub_max_seq: int = 0
    seq_floor: int = 0
    cancelled: int = 0
    updates_applied: int = 0
    corrections_applied: int = 0
    operators: int = 0
    audit_entries: int = 0
    slips: int = 0  # back-entered slips (backentry_slip rows)
    master_data_version: str | None = None
    without_facts: int = 0
    central_ids: int = 0


class RestoreRefused(OpdError, ValueError):
    """The counter database already holds work, or the hub knows the token as another counter."""


def _pages(fetch: Any, key: str, start: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    pos = start
    for _ in range(MAX_PAGES):
        page = fetch(pos)
        items = list(page.get(key) or [])
        out += items
        if page.get("done") or not items:
            return out
        pos = int(page["next"])
    raise RestoreRefused(f"the hub's {key} did not end after {MAX_PAGES} pages")


def _op_row(env: dict[str, Any], facts: dict[str, Any] | None) -> Op:
    p = env.get("payload") or {}
    rec = shared_domain.record_of(env)
    target = shared_domain.voided_payment(env)
    if facts is not None:
        kind, ref, source, supersedes = (facts.get("record_kind"), facts.get("record_ref"),
                                         str(facts.get("source") or "counter"), facts.get("supersedes"))
    else:
        kind = rec.kind if rec else ("payment_void" if target else "patient")
        ref = rec.local_ref if rec else (target or shared_domain.ref_key(p.get("patient")))
        source, supersedes = "hub_restore", None
    return Op(
        seq=int(env["seq"]), op_id=str(env["op_id"]), kind=str(env["kind"]), device_id=str(env["device_id"]),
        operator_id=str(env.get("operator_id") or "?"), recorded_at=str(env.get("recorded_at") or now_iso()),
        depends_on=outbox.dumps(sorted(set(env.get("depends_on") or []))), payload=outbox.dumps(p),
        resolution=None if env.get("resolution") is None else outbox.dumps(env["resolution"]),
        updated_at=now_iso(), record_kind=kind, record_ref=ref, source=source, supersedes=supersedes,
        origin=outbox.dumps(env["origin"]) if env.get("origin") else None,  # a back-entered op's paper slip
    )


def _replay(s: Session, env: dict[str, Any], facts: dict[str, Any] | None, names: dict[str, str],
            payloads: dict[str, dict[str, Any]], out: HubRestore) -> None:
    """One own op back: the op, then its record made, updated or corrected as at the old PC."""
    payloads[str(env["op_id"])] = env.get("payload") or {}
    out.own_ops += 1
    if facts is None:
        # kept by a counter before facts existed: rebuilt from the payload alone (store/shared.py)
        out.without_facts += 1
        if shared_store.rebuild_own(s, env, names):
            out.own_records += 1
        s.flush()
        if env.get("kind") == "patient.update":
            _apply_update(s, env, out)
        return
    op = _op_row(env, facts)
    s.add(op)
    s.flush()
    kept = facts.get("rows")
    supersedes = facts.get("supersedes")
    if op.kind == "patient.update":
        _apply_update(s, env, out)
        return
    if supersedes and op.record_ref:
        # a correction (review): the record keeps its first op and shows the corrected fields
        before, after = payloads.get(str(supersedes)) or {}, env.get("payload") or {}
        changed = {k: v for k, v in after.items() if before.get(k) != v and not isinstance(v, dict)}
        ReviewService._update_record(s, op, changed)
        out.corrections_applied += 1
        return
    tables = record_tables()
    for name, rows in (kept or {}).items() if isinstance(kept, dict) else ():
        table = tables.get(name)
        if table is None or not isinstance(rows, list):
            continue  # a table this version does not have
        for row in rows:
            s.execute(table.insert().values({k: v for k, v in row.items() if k in table.c and k != "id"}))
            out.own_records += 1
            if name == "visit":
                hub_restore.raise_token(s, row.get("department"), row.get("visit_date"), row.get("token_no"))


def _apply_update(s: Session, env: dict[str, Any], out: HubRestore) -> None:
    """A ``patient.update`` of a patient registered here: its changes on the patient's row."""
    ref = shared_domain.ref_key((env.get("payload") or {}).get("patient"))
    if not ref:
        return
    patient = s.exec(select(Patient).where((Patient.local_ref == ref) | (Patient.uhid == ref))).first()
    if patient is None:  # another counter's patient: its LAN record shows the edit, as at the old PC
        if shared_store.note_own_edit(s, ref, (env.get("payload") or {}).get("changes") or {},
                                      str(env.get("recorded_at") or ""), str(env["op_id"])):
            out.updates_applied += 1
        return
    for k, v in ((env.get("payload") or {}).get("changes") or {}).items():
        if k in Patient.model_fields and k not in ("id", "local_ref", "op_id"):
            setattr(patient, k, v)
    s.add(patient)
    out.updates_applied += 1


def restore_from_hub(store: Store, client: HubForRestore, device_id: str) -> HubRestore:
    """Rebuild this (new, empty) counter from the hub; see the module doc for what comes back."""
    with store.read() as s:
        if hub_restore.has_ops(s):
            raise RestoreRefused(f"this counter's database already has ops; restore counter {device_id} from the "
                                 "hub only on a new, empty data directory (init --device ... on the new PC first)")
    me = client.me()
    if me.get("device_id") != device_id:
        raise RestoreRefused(f"the hub knows this counter's hub token as counter {me.get('device_id')}, not "
                             f"{device_id}: ask the hub PC for {device_id}'s pairing line "
                             f"('opd-fallback hub add-device {device_id}')")
    out = HubRestore(device_id, hub_max_seq=int(me.get("max_seq") or 0))
    kept = client.keep_get()
    facts = {str(f["op_id"]): f.get("facts") or {} for f in _pages(
        lambda n: client.keep_facts(n), "facts", 0)}
    entries = _pages(lambda n: client.keep_audit(n), "audit", 0)
    slips = _pages(lambda n: client.keep_slips(n), "slips", 0)

    # everything on the hub, in hub order: other counters' records stored as share stores them
    own: list[dict[str, Any]] = []
    ids: dict[str, str] = {}
    cancelled: list[str] = []
    names: dict[str, str] = {}
    cursor = 0
    for _ in range(MAX_PAGES):
        page = client.changes(cursor, limit=PULL_PAGE, include_own=True)
        ops = page.get("ops") or []
        for item in ops:
            op = item["op"]
            if op.get("kind") == "patient.register":
                names[str(op["payload"].get("local_ref", "")).upper()] = str(op["payload"].get("name") or "")
            if op.get("device_id") == device_id:
                own.append(op)
        for cid in page.get("central_ids") or []:
            if cid.get("local_ref") and cid.get("central_id"):
                ids[str(cid["local_ref"]).upper()] = str(cid["central_id"])
        cancelled += [str(w["op_id"]) for w in page.get("withdrawn") or [] if w.get("device_id") == device_id]
        with store.write() as s:
            got = shared_store.store_page(s, device_id, ops, page.get("central_ids") or [],
                                          page.get("withdrawn") or [])
            out.other_records += got.records
            meta.put(s, meta.HUB_CURSOR, str(page["next_cursor"]))
        if page.get("done"):
            break
        cursor = int(page["next_cursor"])
    else:
        raise RestoreRefused(f"the hub still had more after {MAX_PAGES} pages; restore stopped")

    with store.write() as s:
        out.audit_entries = _put_audit(s, entries)
        out.operators = _put_operators(s, kept.get("operators") or [])
        out.slips = _put_slips(s, slips)
        out.master_data_version = _put_master(s, kept.get("master_data"))
        payloads: dict[str, dict[str, Any]] = {}
        for env in sorted(own, key=lambda o: int(o["seq"])):
            _replay(s, env, facts.get(str(env["op_id"])), names, payloads, out)
        s.flush()
        out.central_ids = _put_central_ids(s, ids)
        # other counters' edits of its patients, kept until their records were replayed (store/shared.py)
        out.updates_applied += shared_store.settle(s).updates
        # what a supervisor cancelled on the old PC stays cancelled: it must never reach central now
        out.cancelled = outbox.transition(s, "cancelled", [
            {"id": op_id, "why": "cancelled by a supervisor before this counter was restored from the hub"}
            for op_id in cancelled])
        top = hub_restore.top_seq(s)
        known = max(top, out.hub_max_seq, int(kept.get("seq_high") or 0), int(kept.get("central_max_seq") or 0))
        out.seq_floor = numbers.raise_floor(s, numbers.SEQ, known + SEQ_GAP)
        for key, value in ((meta.HUB_PUSHED_SEQ, top), (meta.HUB_KEEP_FACTS_SEQ, top),
                           (meta.HUB_KEEP_AUDIT_ID, max([int(e["id"]) for e in entries] or [0])),
                           (SLIP_SENT, max([int(x["id"]) for x in slips] or [0]))):
            meta.put(s, key, str(value))
        meta.delete(s, meta.NEEDS_SEQ_CHECK)
        audit.record(s, "restore", "store.restore_from_hub", device_id, own_ops=out.own_ops,
                     own_records=out.own_records, other_records=out.other_records, hub_max_seq=out.hub_max_seq,
                     seq_high=kept.get("seq_high"), central_max_seq=kept.get("central_max_seq"),
                     seq_floor=out.seq_floor, operators=out.operators, audit_entries=out.audit_entries,
                     master_data=out.master_data_version, cancelled=out.cancelled, slips=out.slips)
    return out


def _put_audit(s: Session, entries: list[dict[str, Any]]) -> int:
    """The old PC's audit log, entry for entry (after any entry this new PC wrote, when it has)."""
    taken = hub_restore.audit_ids(s)
    n = 0
    for e in entries:
        detail = e.get("detail")
        row = AuditEntry(at=str(e.get("at") or now_iso()), actor=str(e.get("actor") or "?"), action=str(e["action"]),
                         subject=e.get("subject"),
                         detail=detail if isinstance(detail, str) else orjson.dumps(detail or {}).decode())
        if int(e["id"]) not in taken:
            row.id = int(e["id"])
        s.add(row)
        n += 1
    s.flush()
    return n


def _put_slips(s: Session, slips: list[dict[str, object]]) -> int:
    """The old PC's back-entered slips, row for row (their row ids too: the next import continues above)."""
    fields = set(BackEntrySlip.model_fields)
    for x in slips:
        s.add(BackEntrySlip.model_validate({k: v for k, v in x.items() if k in fields}))
    s.flush()
    return len(slips)


def _put_operators(s: Session, operators: list[dict[str, Any]]) -> int:
    n = 0
    for o in operators:
        if s.get(Operator, str(o["id"])) is not None:
            continue  # set up on this PC already: the one here wins
        s.add(Operator(id=str(o["id"]), name=str(o["name"]), pin_hash=str(o["pin_hash"]),
                       role=str(o.get("role") or "operator"), active=bool(o.get("active", True)),
                       created_at=str(o.get("created_at") or now_iso())))
        n += 1
    return n


def _put_master(s: Session, master: Any) -> str | None:
    if not isinstance(master, dict) or not isinstance(master.get("body"), str):
        return None
    row = s.get(MasterDataCache, 1)
    if row is None:
        s.add(MasterDataCache(id=1, version=str(master["version"]), etag=master.get("etag"), body=master["body"],
                              fetched_at=str(master.get("fetched_at") or now_iso())))
    return str(master["version"])


def _put_central_ids(s: Session, ids: dict[str, str]) -> int:
    """The central ids the hub learned for this counter's records (where the row has none yet)."""
    n = 0
    orm = {"patient": Patient, "visit": Visit, "lab_order": LabOrder, "payment": Payment}
    for kind, column in CENTRAL_ID_COLUMN.items():
        table: Any = orm[kind]
        for rec in s.exec(select(table).where(getattr(table, column).is_(None))).all():
            cid = ids.get(rec.local_ref)
            if cid:
                setattr(rec, column, cid)
                s.add(rec)
                n += 1
    return n

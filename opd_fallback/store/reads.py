"""Reading the outbox and the records the sync, the LAN share and reconcile
need, in plain SQL (fast: no ORM object per op). The writes are
:mod:`opd_fallback.store.outbox`'s transitions; the states are named once in
:mod:`opd_fallback.store.states` and bound as parameters, never spelt in SQL.
Each function runs in the caller's session (its transaction)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, TypedDict, cast

from sqlalchemy import Row, text
from sqlmodel import Session

from opd_fallback.domain import registry
from opd_fallback.store.lan_conflicts import OpenConflicts, open_conflicts
from opd_fallback.store.states import CANCELLED, CONFLICT, FLAGGED, PENDING, REJECTED, SYNCED

if TYPE_CHECKING:
    from opd_fallback.cipher.db import DBConnection

# as bytes: a damaged (not UTF-8) value must not stop the whole read (sync/batching.py decodes)
_PENDING_ROWS_SQL = (
    "SELECT seq, CAST(op_id AS BLOB), CAST(kind AS BLOB), CAST(device_id AS BLOB), CAST(operator_id AS BLOB), "
    "CAST(recorded_at AS BLOB), CAST(depends_on AS BLOB), CAST(payload AS BLOB), CAST(resolution AS BLOB), "
    "CAST(record_kind AS BLOB), CAST(record_ref AS BLOB), first_deferred_at, CAST(origin AS BLOB) "
    "FROM op WHERE state = ? ORDER BY seq"
)
_HELD_ROWS = text(
    "SELECT op_id, state, kind, record_ref, last_error, wait_reason FROM op "
    "WHERE state IN (:rejected, :conflict, :cancelled)"
)


# the rows of these reads, column by column as SQLite returns them (text cast to
# BLOB comes back as bytes; a nullable column may be None)
PendingRow = tuple[int, bytes, bytes, bytes, bytes, bytes, bytes | None, bytes, bytes | None, bytes | None,
                   bytes | None, str | None, bytes | None]
HeldRow = Row[str, str, str, str | None, str | None, str | None]
SyncedResultRow = Row[str, str, str, str]  # kind, record_ref, result, synced_at
CancelledRow = Row[str, str]  # op_id, updated_at
DayRow = Row[str, int, str, str, str, str | None, str | None, str | None, int | None, str | None, str,
             str | None]
PaymentAmountRow = Row[str, str | None, str | None, int]
PaymentByKeyRow = Row[str, str, str, int, str, str, int, str | None, str | None]
SlipPatientRow = Row[str | None, str | None]


class PaymentRecordRow(TypedDict):
    op_id: str
    local_ref: str
    receipt_no: str | None
    amount_paise: int
    mode: str
    mode_ref: str | None
    items: str | None  # JSON text


class VoidRecordRow(TypedDict):
    op_id: str
    payment_local_ref: str
    reason: str | None
    central_id: str | None  # of the payment voided, when this counter has it
    receipt_no: str | None


def pending_rows(session: Session) -> list[PendingRow]:
    """Every pending op in seq order, its text columns as stored bytes (see sync/batching.py).
    Fetched by the driver in one call (plain tuples: no SQLAlchemy row per op; the sync reads
    the whole outbox before its first batch, so this is on its critical path)."""
    raw = cast("DBConnection", session.connection().connection.dbapi_connection)
    return cast("list[PendingRow]", raw.execute(_PENDING_ROWS_SQL, (PENDING,)).fetchall())


def held_rows(session: Session) -> Sequence[HeldRow]:
    """(op_id, state, kind, record_ref, last_error, wait_reason) of the ops a person
    holds: flagged (rejected, conflict) or cancelled."""
    return session.execute(_HELD_ROWS, {"rejected": REJECTED, "conflict": CONFLICT, "cancelled": CANCELLED}).all()


def signature(session: Session) -> tuple[int, int, int]:
    """(pending ops, their highest seq, flagged ops): changes when ops are recorded,
    decided in review, or cancelled (cheap: indexed)."""
    n, top = session.execute(text("SELECT count(*), coalesce(max(seq), 0) FROM op WHERE state = :p"),
                             {"p": PENDING}).one()
    flagged = session.execute(text("SELECT count(*) FROM op WHERE state IN (:r, :c)"),
                              {"r": FLAGGED[0], "c": FLAGGED[1]}).scalar()
    return int(n), int(top), int(flagged or 0)


def pending_op_ids(session: Session) -> list[str]:
    return [str(r[0]) for r in session.execute(text("SELECT op_id FROM op WHERE state = :p"), {"p": PENDING}).all()]


def counts_in(session: Session, states: Iterable[str]) -> dict[str, int]:
    """How many ops are in each of ``states`` (a state with none is left out)."""
    wanted = {f"s{i}": s for i, s in enumerate(states)}
    marks = ", ".join(f":{k}" for k in wanted)
    rows = session.execute(text(f"SELECT state, count(*) FROM op WHERE state IN ({marks}) GROUP BY state"),
                           wanted).all()
    return {str(st): int(n) for st, n in rows}


def op_count(session: Session) -> int:
    return int(session.execute(text("SELECT count(*) FROM op")).scalar() or 0)


def top_seq(session: Session) -> int:
    """The highest seq in the outbox (0 when empty)."""
    return int(session.execute(text("SELECT coalesce(max(seq), 0) FROM op")).scalar() or 0)


def synced_results_since(session: Session, since: str) -> Sequence[SyncedResultRow]:
    """(kind, record_ref, result, synced_at) of synced ops that made a record, synced
    at or after ``since``, oldest first: the central ids this counter has learned."""
    kinds = {f"k{i}": k for i, k in enumerate(registry.CREATES)}
    marks = ", ".join(f":{k}" for k in kinds)
    return session.execute(text(
        "SELECT kind, record_ref, result, synced_at FROM op WHERE state = :synced AND result IS NOT NULL "
        f"AND record_ref IS NOT NULL AND kind IN ({marks}) AND synced_at >= :since ORDER BY synced_at"),
        {"synced": SYNCED, "since": since, **kinds}).all()


def cancelled_since(session: Session, since: str, *, up_to_seq: int) -> Sequence[CancelledRow]:
    """(op_id, updated_at) of ops cancelled at or after ``since`` with seq <= ``up_to_seq``, oldest first."""
    return session.execute(text(
        "SELECT op_id, updated_at FROM op WHERE state = :cancelled AND updated_at >= :t AND seq <= :p "
        "ORDER BY updated_at"), {"cancelled": CANCELLED, "t": since, "p": up_to_seq}).all()


def day_rows(session: Session, device_id: str, lo: str, hi: str) -> Sequence[DayRow]:
    """This device's ops recorded in [lo, hi) for reconcile: op_id, seq, kind, state,
    recorded_at, record_ref, last_status, wait_reason, attempts, last_error, the
    payload of money ops and tube collections ('' for others) and a payment's result."""
    # money ops and tube collections: their payloads are compared with central's (reconcile)
    money = {f"m{i}": k for i, k in enumerate((*registry.MONEY_KINDS, "lab.sample_collect"))}
    marks = ", ".join(f":{k}" for k in money)
    return session.execute(text(
        "SELECT op_id, seq, kind, state, recorded_at, record_ref, last_status, wait_reason, attempts, "
        f"last_error, CASE WHEN kind IN ({marks}) THEN payload ELSE '' END, "
        "CASE WHEN kind = 'payment.record' THEN result END "
        "FROM op WHERE device_id = :d AND recorded_at >= :lo AND recorded_at < :hi"),
        {"d": device_id, "lo": lo, "hi": hi, **money}).all()


def payment_amounts(session: Session, keys: Iterable[str]) -> Sequence[PaymentAmountRow]:
    """(local_ref, receipt_no, central_id, amount_paise) of the payments named by
    any of ``keys`` (offline number, receipt number or central id); every payment
    when there are many keys (one scan beats hundreds of lookups)."""
    wanted = sorted(set(keys))
    if len(wanted) > 500:
        return session.execute(text("SELECT local_ref, receipt_no, central_id, amount_paise FROM payment")).all()
    return [r for key in wanted for r in session.execute(text(
        "SELECT local_ref, receipt_no, central_id, amount_paise FROM payment "
        "WHERE local_ref = :k OR receipt_no = :k OR central_id = :k"), {"k": key}).all()]


def money_records(session: Session, op_ids: Sequence[str]
                  ) -> tuple[dict[str, PaymentRecordRow], dict[str, VoidRecordRow]]:
    """The payment and void records the ops ``op_ids`` made, by op_id (payments, voids)."""
    payments: dict[str, PaymentRecordRow] = {}
    voids: dict[str, VoidRecordRow] = {}
    for i in range(0, len(op_ids), 500):
        part = {f"i{n}": v for n, v in enumerate(op_ids[i:i + 500])}
        marks = ", ".join(f":{k}" for k in part)
        for row in session.execute(text(
                "SELECT op_id, local_ref, receipt_no, amount_paise, mode, mode_ref, items FROM payment "
                f"WHERE op_id IN ({marks})"), part).mappings():
            payments[row["op_id"]] = cast("PaymentRecordRow", dict(row))
        for row in session.execute(text(
                "SELECT v.op_id, v.payment_local_ref, v.reason, p.central_id, p.receipt_no FROM payment_void v "
                f"LEFT JOIN payment p ON p.local_ref = v.payment_local_ref WHERE v.op_id IN ({marks})"),
                part).mappings():
            voids[row["op_id"]] = cast("VoidRecordRow", dict(row))
    return payments, voids


def latest_visit(session: Session, day: str, *, uhid: str | None, local_ref: str | None) -> str | None:
    """The offline number of a patient's latest visit of ``day`` at this counter."""
    params: dict[str, str] = {"d": day}
    conds = []
    if uhid:
        conds.append("patient_uhid = :u")
        params["u"] = uhid
    if local_ref:
        conds.append("patient_local_ref = :l")
        params["l"] = local_ref
    if not conds:
        return None
    row = session.execute(text("SELECT local_ref FROM visit WHERE visit_date = :d AND (" + " OR ".join(conds)
                               + ") ORDER BY id DESC LIMIT 1"), params).first()
    return None if row is None else str(row[0])


def payment_by_key(session: Session, key: str) -> PaymentByKeyRow | None:
    """(receipt_no, local_ref, patient_name, amount_paise, mode, created_at, voided, patient_local_ref,
    patient_uhid) of the payment with this receipt number or offline number, or None. ``patient_name``
    is the copy taken when the money was: show the patient's current name (``samples.person_of``)."""
    return session.execute(text(
        "SELECT p.receipt_no, p.local_ref, p.patient_name, p.amount_paise, p.mode, p.created_at, "
        "v.id IS NOT NULL, p.patient_local_ref, p.patient_uhid "
        "FROM payment p LEFT JOIN payment_void v ON v.payment_local_ref = p.local_ref "
        "WHERE p.receipt_no = :k OR p.local_ref = :k"), {"k": key}).first()


def patient_of_slip(session: Session, ref: str) -> SlipPatientRow | None:
    """(patient_local_ref, patient_uhid) of the visit or lab order (or tube) numbered ``ref``, or None."""
    return session.execute(text(
        "SELECT patient_local_ref, patient_uhid FROM visit WHERE local_ref = :r "
        "UNION ALL SELECT patient_local_ref, patient_uhid FROM lab_order WHERE local_ref = :r "
        "OR sample_id = :r LIMIT 1"), {"r": ref}).first()


def ops_up_to(session: Session, seq: int) -> int:
    """How many of this counter's ops have a seq at or below ``seq`` (share: does the hub hold them all?)."""
    return int(session.execute(text("SELECT count(*) FROM op WHERE seq <= :m"), {"m": seq}).scalar() or 0)


def seqs_up_to(session: Session, seq: int) -> list[int]:
    """The seqs of this counter's ops at or below ``seq``, in order (share: which the hub lacks)."""
    return [int(r[0]) for r in session.execute(text("SELECT seq FROM op WHERE seq <= :m ORDER BY seq"),
                                               {"m": seq}).all()]


def open_lan_conflicts(session: Session) -> OpenConflicts:
    """The open LAN edit conflicts (store/lan_conflicts.py), for the counter's status bar."""
    return open_conflicts(lambda sql, params: session.execute(text(sql), params).all())

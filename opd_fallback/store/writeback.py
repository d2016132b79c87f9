"""Booking central's answer on the counter's records: the central ids an applied
op's result carries (uhid, visit_id, ...), written onto the record the op made.

One handler per op kind, registered against :mod:`opd_fallback.domain.registry`
(the key of each result is the kind's ``result_id`` there): it turns an op's
result into the parameters of the kind's UPDATEs, or None when there is nothing
to book. The sync engine books a batch's answers and reconcile books central's
remembered outcomes through the same :func:`collect` and :func:`write`, in the
caller's transaction. Statements are collected per batch and run with
``executemany`` on the session's sqlite3 connection (named parameters bound in
C: no per-row Python).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, SupportsInt, cast

from sqlmodel import Session

from opd_fallback.domain import registry
from opd_fallback.domain.jsonio import dumps

if TYPE_CHECKING:
    from opd_fallback.cipher.db import DBConnection

# SQL text -> parameter rows
# one UPDATE's named parameters; an op's result (central's JSON object) as read
Params = dict[str, object]
CentralResult = Mapping[str, object]
Rows = dict[str, list[Params]]
_Params = Callable[[str, CentralResult], Params | None]


@dataclass(frozen=True)
class _Booking:
    statements: tuple[str, ...]
    params: _Params


WRITEBACK: registry.Handlers[_Booking] = registry.Handlers("the counter's write-back (store/writeback.py)")


def register(kind: str, *statements: str) -> Callable[[_Params], _Params]:
    """Register ``kind``'s UPDATEs and the function giving their parameters
    (record_ref, result) -> params or None; no statements: nothing to book."""

    def add(fn: _Params) -> _Params:
        WRITEBACK.register(kind)(_Booking(statements, fn))
        return fn

    return add


def _cid(kind: str, result: CentralResult) -> object:
    return result.get(registry.kind(kind).result_id or "")


@register(
    "patient.register",
    "UPDATE patient SET uhid=:uhid WHERE local_ref=:ref",
    "UPDATE visit SET patient_uhid=:uhid WHERE patient_local_ref=:ref AND patient_uhid IS NULL",
    "UPDATE lab_order SET patient_uhid=:uhid WHERE patient_local_ref=:ref AND patient_uhid IS NULL",
    "UPDATE payment SET patient_uhid=:uhid WHERE patient_local_ref=:ref AND patient_uhid IS NULL",
)
def _patient_register(ref: str, res: CentralResult) -> Params | None:
    uhid = _cid("patient.register", res)
    return {"uhid": uhid, "ref": ref} if uhid else None


@register(
    "patient.update",
    "UPDATE patient SET version=:version, uhid=coalesce(uhid, :uhid) WHERE local_ref=:ref OR uhid=:uhid",
    "UPDATE patient_index SET version=:version WHERE uhid=:uhid AND version < :version",
)
def _patient_update(ref: str, res: CentralResult) -> Params | None:
    version = res.get("version")
    if version is None:
        return None
    if not isinstance(version, str | SupportsInt):
        raise TypeError(f"version must be a number, not {type(version).__name__}")
    return {"version": int(version), "uhid": res.get("uhid"), "ref": ref}


@register("visit.open", "UPDATE visit SET central_id=:cid WHERE local_ref=:ref")
def _visit_open(ref: str, res: CentralResult) -> Params | None:
    return {"cid": _cid("visit.open", res), "ref": ref}


# the order's visit was applied (and booked) before it: take its central id by the indexed local_ref
@register(
    "lab.order",
    "UPDATE lab_order SET central_id=:cid, accession=:acc, visit_central_id=coalesce(visit_central_id, "
    "(SELECT v.central_id FROM visit v WHERE v.local_ref = lab_order.visit_local_ref)) WHERE local_ref=:ref",
)
def _lab_order(ref: str, res: CentralResult) -> Params | None:
    return {"cid": _cid("lab.order", res), "acc": res.get("accession"), "ref": ref}


@register("payment.record", "UPDATE payment SET central_id=:cid, warnings=:warn WHERE local_ref=:ref")
def _payment_record(ref: str, res: CentralResult) -> Params | None:
    warnings = res.get("warnings")
    return {"cid": _cid("payment.record", res), "ref": ref, "warn": dumps(warnings) if warnings else None}


@register("payment.void")  # the payment was marked voided when the void was saved
def _payment_void(ref: str, res: CentralResult) -> Params | None:
    return None


# a tube drawn or refused (record_ref: the sample id): central's order id, on every event of that tube
@register("lab.sample_collect",
          "UPDATE sample_event SET order_central_id=:cid WHERE sample_id=:ref AND order_central_id IS NULL")
def _sample_collect(ref: str, res: CentralResult) -> Params | None:
    return {"cid": res["order_id"], "ref": ref} if res.get("order_id") else None


WRITEBACK.complete()


def collect(kind: str, record_ref: str | None, result: CentralResult, into: Rows) -> None:
    """Add the UPDATEs that store an applied op's central ids on its record to ``into``."""
    booking = WRITEBACK.get(kind)
    if booking is None or not booking.statements or not record_ref:
        return
    row = booking.params(record_ref, result)
    if row is None:
        return
    for sql in booking.statements:
        into.setdefault(sql, []).append(row)


def write(session: Session, rows: Rows) -> None:
    """Run the collected UPDATEs in the session's transaction."""
    if not rows:
        return
    raw = cast("DBConnection", session.connection().connection.dbapi_connection)
    for sql, params in rows.items():
        raw.executemany(sql, params)

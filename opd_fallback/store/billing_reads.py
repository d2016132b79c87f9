"""The reads of the billing desk (application/billing.py): a patient's visits
and lab orders, and the payments not voided on them, this counter's and the
other counters' as the hub shared them. Rows only; the application makes the
account of them. SQL on the counter's tables lives in store/ (issue 22)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Row, text
from sqlmodel import Session

LIMIT = 50  # the newest visits and orders of one patient a desk lists

# the rows, column by column (``detail`` is a shared record's JSON text)
OwnPaymentRow = Row[str, str | None, int, str]  # ref, receipt_no, amount_paise, mode
LanRow = Row[str, str, str]  # ref, device_id, detail
OwnVisitRow = Row[str, str, str, int, str]  # local_ref, visit_date, department, token_no, created_at
OwnOrderRow = Row[str, str, int, str, str | None]  # local_ref, tests (JSON), total_paise, created_at, sample_id
LanOrderRow = Row[str, str, str, str]  # local_ref, device_id, recorded_at, detail


def _marks(prefix: str, values: Sequence[str]) -> tuple[str, dict[str, str]]:
    names = [f"{prefix}{i}" for i in range(len(values))]
    return ", ".join(f":{n}" for n in names), dict(zip(names, values, strict=True))


def own_payments(s: Session, kind: str, refs: Sequence[str]) -> Sequence[OwnPaymentRow]:
    """(ref, receipt_no, amount_paise, mode) of this counter's payments not voided
    on these visits (``kind`` visit: the visit's fee, not a lab order's) or lab orders."""
    marks, params = _marks("r", refs)
    col = "visit_local_ref" if kind == "visit" else "lab_order_local_ref"
    extra = " AND p.lab_order_local_ref IS NULL" if kind == "visit" else ""
    return s.execute(text(
        f"SELECT p.{col}, p.receipt_no, p.amount_paise, p.mode FROM payment p "
        f"WHERE p.{col} IN ({marks}){extra} AND NOT EXISTS "
        "(SELECT 1 FROM payment_void v WHERE v.payment_local_ref = p.local_ref) ORDER BY p.id"), params).all()


def lan_payments(s: Session, kind: str, refs: Sequence[str]) -> Sequence[LanRow]:
    """(ref, device_id, detail) of the other counters' payments not voided, as shared."""
    marks, params = _marks("r", refs)
    col = "visit_ref" if kind == "visit" else "lab_order_ref"
    extra = " AND lab_order_ref IS NULL" if kind == "visit" else ""
    return s.execute(text(
        f"SELECT {col}, device_id, detail FROM shared_record WHERE kind = 'payment' AND voided = 0 "
        f"AND {col} IN ({marks}){extra} ORDER BY hub_seq"), params).all()


def own_visits(s: Session, keys: Sequence[str]) -> Sequence[OwnVisitRow]:
    """(local_ref, visit_date, department, token_no, created_at) of the patient known by ``keys``."""
    marks, params = _marks("k", keys)
    return s.execute(text(
        f"SELECT local_ref, visit_date, department, token_no, created_at FROM visit WHERE patient_local_ref IN "
        f"({marks}) OR patient_uhid IN ({marks}) ORDER BY created_at DESC LIMIT {LIMIT}"), params).all()


def lan_visits(s: Session, keys: Sequence[str]) -> Sequence[LanRow]:
    """(local_ref, device_id, detail) of the other counters' visits of that patient."""
    marks, params = _marks("k", keys)
    return s.execute(text(
        f"SELECT local_ref, device_id, detail FROM shared_record WHERE kind = 'visit' AND patient_ref IN "
        f"({marks}) ORDER BY recorded_at DESC LIMIT {LIMIT}"), params).all()


def own_orders(s: Session, keys: Sequence[str]) -> Sequence[OwnOrderRow]:
    """(local_ref, tests, total_paise, created_at, sample_id) of this counter's lab orders of that patient."""
    marks, params = _marks("k", keys)
    return s.execute(text(
        f"SELECT local_ref, tests, total_paise, created_at, sample_id FROM lab_order WHERE patient_local_ref IN "
        f"({marks}) OR patient_uhid IN ({marks}) ORDER BY created_at DESC LIMIT {LIMIT}"), params).all()


def lan_orders(s: Session, keys: Sequence[str]) -> Sequence[LanOrderRow]:
    """(local_ref, device_id, recorded_at, detail) of the other counters' lab orders of that patient."""
    marks, params = _marks("k", keys)
    return s.execute(text(
        f"SELECT local_ref, device_id, recorded_at, detail FROM shared_record WHERE kind = 'lab_order' AND "
        f"patient_ref IN ({marks}) ORDER BY recorded_at DESC LIMIT {LIMIT}"), params).all()

"""The billing desk's view of one patient: every visit and lab order of the
hospital for them (this counter's, and the other counters' as the last share
with the hub pulled them), each with what is paid and what is due.

An order is paid once it has a payment that is not voided, here or at any
counter of the LAN (a payment taken elsewhere and shared through the hub
clears it everywhere); a waiver approved by a supervisor settles it too. An
order saved "pay at billing" has none: its total is due until someone takes
it. Only reads here; the payment itself is ``CounterService.pay_lab_order``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlmodel import Session

from opd_fallback.domain.masterdata import Catalog
from opd_fallback.store import outbox


@dataclass(frozen=True)
class Paid:
    receipt_no: str
    amount_paise: int
    mode: str
    device_id: str  # the counter that took it


@dataclass(frozen=True)
class OrderLine:
    """A lab order and its money."""

    ref: str  # the order's offline number
    device_id: str  # the counter that ordered it
    recorded_at: str
    tests: list[str]
    total_paise: int
    payments: list[Paid] = field(default_factory=list)
    sample_id: str | None = None

    @property
    def paid_paise(self) -> int:
        return sum(p.amount_paise for p in self.payments)

    @property
    def settled(self) -> bool:
        """Paid (or waived) in full: nothing more to take."""
        return bool(self.payments)

    @property
    def due_paise(self) -> int:
        return 0 if self.settled else self.total_paise


@dataclass(frozen=True)
class VisitLine:
    ref: str
    device_id: str
    visit_date: str
    department: str
    token_no: int
    payments: list[Paid] = field(default_factory=list)

    @property
    def paid_paise(self) -> int:
        return sum(p.amount_paise for p in self.payments)


@dataclass(frozen=True)
class Account:
    """One patient's visits and lab orders, newest first."""

    keys: tuple[str, ...]  # the patient's offline number and uhid
    visits: list[VisitLine]
    orders: list[OrderLine]

    @property
    def due_paise(self) -> int:
        return sum(o.due_paise for o in self.orders)


def _marks(prefix: str, values: list[str]) -> tuple[str, dict[str, str]]:
    names = [f"{prefix}{i}" for i in range(len(values))]
    return ", ".join(f":{n}" for n in names), dict(zip(names, values, strict=True))


def payments_for(s: Session, kind: str, refs: Iterable[str]) -> dict[str, list[Paid]]:
    """Payments not voided for each visit or lab order (``kind``: visit | lab_order), every counter's."""
    refs = [r for r in refs if r]
    out: dict[str, list[Paid]] = {r: [] for r in refs}
    if not refs:
        return out
    marks, params = _marks("r", refs)
    own_col, lan_col = ("visit_local_ref", "visit_ref") if kind == "visit" else ("lab_order_local_ref", "lab_order_ref")
    extra = " AND p.lab_order_local_ref IS NULL" if kind == "visit" else ""
    for ref, receipt, amount, mode in s.execute(text(
            f"SELECT p.{own_col}, p.receipt_no, p.amount_paise, p.mode FROM payment p "
            f"WHERE p.{own_col} IN ({marks}){extra} AND NOT EXISTS "
            "(SELECT 1 FROM payment_void v WHERE v.payment_local_ref = p.local_ref) ORDER BY p.id"), params).all():
        out[str(ref)].append(Paid(str(receipt), int(amount), str(mode), ""))
    lan_extra = " AND lab_order_ref IS NULL" if kind == "visit" else ""
    for ref, device, detail in s.execute(text(
            f"SELECT {lan_col}, device_id, detail FROM shared_record WHERE kind = 'payment' AND voided = 0 "
            f"AND {lan_col} IN ({marks}){lan_extra} ORDER BY hub_seq"), params).all():
        d = outbox.loads(detail) or {}
        out[str(ref)].append(Paid(str(d.get("receipt_no") or "?"), int(d.get("amount_paise") or 0),
                                  str(d.get("mode") or "?"), str(device)))
    return out


def _tests_total(cat: Catalog | None, codes: list[str]) -> int:
    if cat is None:
        return 0
    return sum(cat.tests[c].price_paise for c in codes if c in cat.tests)


def account(s: Session, keys: Iterable[str], *, own_device: str, catalog: Catalog | None) -> Account:
    """The visits and lab orders of the patient known by ``keys`` (offline number, uhid)."""
    ks = sorted({k.strip().upper() for k in keys if k and k.strip()})
    if not ks:
        return Account((), [], [])
    marks, params = _marks("k", ks)
    visits = [VisitLine(str(r[0]), own_device, str(r[1]), str(r[2]), int(r[3] or 0)) for r in s.execute(text(
        f"SELECT local_ref, visit_date, department, token_no, created_at FROM visit WHERE patient_local_ref IN "
        f"({marks}) OR patient_uhid IN ({marks}) ORDER BY created_at DESC LIMIT 50"), params).all()]
    for ref, device, detail in s.execute(text(
            f"SELECT local_ref, device_id, detail FROM shared_record WHERE kind = 'visit' AND patient_ref IN "
            f"({marks}) ORDER BY recorded_at DESC LIMIT 50"), params).all():
        d = outbox.loads(detail) or {}
        visits.append(VisitLine(str(ref), str(device), str(d.get("visit_date") or ""), str(d.get("department") or ""),
                                int(d.get("token_no") or 0)))
    orders: list[OrderLine] = []
    for ref, tests, total, at, sample in s.execute(text(
            f"SELECT local_ref, tests, total_paise, created_at, sample_id FROM lab_order WHERE patient_local_ref IN "
            f"({marks}) OR patient_uhid IN ({marks}) ORDER BY created_at DESC LIMIT 50"), params).all():
        codes = [str(c) for c in outbox.loads(tests) or []]
        orders.append(OrderLine(str(ref), own_device, str(at), codes, int(total or 0) or _tests_total(catalog, codes),
                                sample_id=sample))
    for ref, device, at, detail in s.execute(text(
            f"SELECT local_ref, device_id, recorded_at, detail FROM shared_record WHERE kind = 'lab_order' AND "
            f"patient_ref IN ({marks}) ORDER BY recorded_at DESC LIMIT 50"), params).all():
        d = outbox.loads(detail) or {}
        codes = [str(c) for c in d.get("tests") or []]
        orders.append(OrderLine(str(ref), str(device), str(at), codes, _tests_total(catalog, codes),
                                sample_id=d.get("sample_id")))
    vpay = payments_for(s, "visit", [v.ref for v in visits])
    opay = payments_for(s, "lab_order", [o.ref for o in orders])
    visits = [VisitLine(v.ref, v.device_id, v.visit_date, v.department, v.token_no,
                        [_at(p, own_device) for p in vpay.get(v.ref, [])]) for v in visits]
    orders = [OrderLine(o.ref, o.device_id, o.recorded_at, o.tests, o.total_paise,
                        [_at(p, own_device) for p in opay.get(o.ref, [])], o.sample_id) for o in orders]
    visits.sort(key=lambda v: (v.visit_date, v.ref), reverse=True)
    orders.sort(key=lambda o: o.recorded_at, reverse=True)
    return Account(tuple(ks), visits, orders)


def _at(p: Paid, own_device: str) -> Paid:
    return p if p.device_id else Paid(p.receipt_no, p.amount_paise, p.mode, own_device)


def order_settled(s: Session, order_ref: str) -> list[Paid]:
    """The payments (not voided) a lab order already has, at any counter."""
    return payments_for(s, "lab_order", [order_ref.strip().upper()]).get(order_ref.strip().upper(), [])


def as_dict(acc: Account) -> dict[str, Any]:
    """For ``--json`` and tests."""
    return {
        "keys": list(acc.keys), "due_paise": acc.due_paise,
        "visits": [{"ref": v.ref, "counter": v.device_id, "date": v.visit_date, "department": v.department,
                    "token_no": v.token_no, "paid_paise": v.paid_paise} for v in acc.visits],
        "orders": [{"ref": o.ref, "counter": o.device_id, "tests": o.tests, "total_paise": o.total_paise,
                    "paid_paise": o.paid_paise, "due_paise": o.due_paise,
                    "receipts": [p.receipt_no for p in o.payments]} for o in acc.orders],
    }

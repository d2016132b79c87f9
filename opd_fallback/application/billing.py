"""The billing desk's view of one patient: every visit and lab order of the
hospital for them (this counter's, and the other counters' as the last share
with the hub pulled them), each with what is paid and what is due.

An order is paid once it has a payment that is not voided, here or at any
counter of the LAN (a payment taken elsewhere and shared through the hub
clears it everywhere); a waiver approved by a supervisor settles it too. An
order saved "pay at billing" has none: its total is due until someone takes
it. Only reads here; the payment itself is ``CounterService.pay_lab_order``.

The price rules every counter payment takes its lines from live here too, once:
the OPD fee line, the lab tests' lines at list price, the total a clerk's amount
must equal, and whether a category is granted a fee free (a waiver otherwise
needs a supervisor, see ``services.counter``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypedDict

from sqlmodel import Session

from opd_fallback.domain.errors import DomainError
from opd_fallback.domain.jsonio import JSONValue
from opd_fallback.domain.masterdata import Catalog, is_exempt
from opd_fallback.store import billing_reads as reads
from opd_fallback.store import outbox


@dataclass(frozen=True)
class Paid:
    receipt_no: str
    amount_paise: int
    mode: str
    device_id: str  # the counter that took it


class PayLine(TypedDict):
    """One line of a payment: what it is for (a fee or a test code) and its amount."""

    code: str
    qty: int
    amount_paise: int


class Sample(TypedDict):
    """One tube of a lab order: its sample id, its sample type and the tests drawn in it."""

    sample_id: str
    sample_type: str
    tests: list[str]


class TestLine(TypedDict):
    """An ordered test as the slip and the payment see it."""

    code: str
    name: str
    sample_type: str | None
    price_paise: int


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


def payments_for(s: Session, kind: str, refs: Iterable[str]) -> dict[str, list[Paid]]:
    """Payments not voided for each visit or lab order (``kind``: visit | lab_order), every counter's."""
    refs = [r for r in refs if r]
    out: dict[str, list[Paid]] = {r: [] for r in refs}
    if not refs:
        return out
    for ref, receipt, amount, mode in reads.own_payments(s, kind, refs):
        out[str(ref)].append(Paid(str(receipt), int(amount), str(mode), ""))
    for ref, device, detail in reads.lan_payments(s, kind, refs):
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
    visits = [VisitLine(str(r[0]), own_device, str(r[1]), str(r[2]), int(r[3] or 0)) for r in reads.own_visits(s, ks)]
    for ref, device, detail in reads.lan_visits(s, ks):
        d = outbox.loads(detail) or {}
        visits.append(VisitLine(str(ref), str(device), str(d.get("visit_date") or ""), str(d.get("department") or ""),
                                int(d.get("token_no") or 0)))
    orders: list[OrderLine] = []
    for ref, tests, total, at, sample in reads.own_orders(s, ks):
        codes = [str(c) for c in outbox.loads(tests) or []]
        orders.append(OrderLine(str(ref), own_device, str(at), codes, int(total or 0) or _tests_total(catalog, codes),
                                sample_id=sample))
    for ref, device, at, detail in reads.lan_orders(s, ks):
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


def as_dict(acc: Account) -> dict[str, JSONValue]:
    """For ``--json`` and tests."""
    return {
        "keys": list(acc.keys), "due_paise": acc.due_paise,
        "visits": [{"ref": v.ref, "counter": v.device_id, "date": v.visit_date, "department": v.department,
                    "token_no": v.token_no, "paid_paise": v.paid_paise} for v in acc.visits],
        "orders": [{"ref": o.ref, "counter": o.device_id, "tests": [*o.tests], "total_paise": o.total_paise,
                    "paid_paise": o.paid_paise, "due_paise": o.due_paise,
                    "receipts": [p.receipt_no for p in o.payments]} for o in acc.orders],
    }


# --- prices: the rules every payment of the counter takes its lines from ----------
def fee_exempt(catalog: Catalog | None, category: str, fee_code: str) -> bool:
    """Do the category's rules grant this fee free? Without master data, the default exemptions."""
    return catalog.is_exempt(category, fee_code) if catalog is not None else is_exempt(category, fee_code)


def opd_fee_lines(catalog: Catalog | None, visit_type: str, category: str, amount_paise: int | None,
                  mode: str) -> list[PayLine]:
    """The OPD fee's payment line for a ``new`` or ``revisit`` visit: the price list's
    fee for the category (or the amount the clerk gave). Without a price list the
    clerk must give the amount: a silent ₹0 cash payment is never recorded."""
    quote = catalog.opd_fee(visit_type, category) if catalog else None
    if quote is None:
        if amount_paise is None and mode != "waived":
            raise DomainError.field(
                "amount_paise", "enter the fee: this counter has no price list yet", code="fee_unknown")
        code = "OPD-NEW" if visit_type == "new" else "OPD-REVISIT"
        return [{"code": code, "qty": 1, "amount_paise": amount_paise or 0}]
    amount = quote.due_paise if amount_paise is None else amount_paise
    return [{"code": quote.code, "qty": 1, "amount_paise": amount}]


def test_lines(cat: Catalog | None, codes: Sequence[str]) -> list[TestLine]:
    """The ordered tests as the slip and the payment see them (name, sample type, price)."""
    def line(c: str) -> TestLine:
        t = cat.tests.get(c) if cat else None
        return {"code": c, "name": t.name if t else c, "sample_type": t.sample_type if t else None,
                "price_paise": t.price_paise if t else 0}
    return [line(c) for c in codes]


def due_lines(lines: Sequence[TestLine]) -> list[PayLine]:
    """The payment lines (code, qty, amount_paise) of the tests' lines at their list price."""
    return [{"code": ln["code"], "qty": 1, "amount_paise": ln["price_paise"]} for ln in lines]


def check_total(amount_paise: int | None, due: Sequence[PayLine]) -> None:
    """An amount the clerk gave for lab tests must be their total from the price list."""
    if amount_paise is not None and amount_paise != sum(d["amount_paise"] for d in due):
        raise DomainError.field(
            "amount_paise", "the amount must equal the tests' total from the price list",
            code="amount_not_total")

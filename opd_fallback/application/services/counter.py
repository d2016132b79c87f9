"""The counter's flows (register, revisit, lab request, billing payment, void,
update) each as one transaction, and its read models (search, cash summary,
queue). A waiver the category's rules do not grant needs a supervisor and a
reason and is written to the audit log; prices and fee lines come from
``application.billing``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime

from sqlalchemy import text
from sqlmodel import Session, col, select

from opd_fallback.application import billing
from opd_fallback.application.daytotals import (
    WAIVER_ACTION,
    CashSummary,
    totals_for_day,
)
from opd_fallback.application.services.records import (
    LabResult,
    PatientInfo,
    PaymentInput,
    Registration,
    Saved,
    VisitResult,
)
from opd_fallback.application.services.tx import Tx
from opd_fallback.domain import clock as domain_clock
from opd_fallback.domain import rules
from opd_fallback.domain.contract import MasterData
from opd_fallback.domain.errors import DomainError, FieldProblem
from opd_fallback.domain.masterdata import Catalog
from opd_fallback.store import audit, meta, outbox
from opd_fallback.store import shared as shared_records
from opd_fallback.store.engine import Store
from opd_fallback.store.operators import active_supervisor
from opd_fallback.store.patient_index import PatientHit
from opd_fallback.store.search import search as find_patients
from opd_fallback.store.tables import (
    LabOrder,
    MasterDataCache,
    Op,
)


class CounterService:
    """Services and read models of one counter (device) over its store."""

    def __init__(self, store: Store, device_id: str) -> None:
        self.store = store
        self.device_id = device_id
        self._catalog: Catalog | None = None
        self._catalog_version: str | None = None

    # --- master data -----------------------------------------------------------
    def catalog(self, session: Session | None = None) -> Catalog | None:
        """The master data from the last refresh (None if never refreshed)."""
        def load(s: Session) -> Catalog | None:
            # the version first (a few bytes): the body is read and parsed only when it changed
            # (a save asks three times: fee, transaction, printouts)
            version = s.exec(select(MasterDataCache.version).where(col(MasterDataCache.id) == 1)).first()
            if version is None:
                return None
            if self._catalog is None or version != self._catalog_version:
                row = s.get(MasterDataCache, 1)
                if row is None:
                    return None
                self._catalog = Catalog(MasterData.model_validate_json(row.body))
                self._catalog_version = row.version
            return self._catalog
        if session is not None:
            return load(session)
        with self.store.read() as s:
            return load(s)

    # --- writing -----------------------------------------------------------------
    @contextmanager
    def transaction(self, operator_id: str, *, recorded_at: datetime | None = None,
                    source: str = "counter", origin: Mapping[str, object] | None = None) -> Iterator[Tx]:
        with self.store.write() as session:
            hold = meta.get(session, meta.NEEDS_SEQ_CHECK)
            if hold:
                raise DomainError(
                    f"this counter was restored from a backup and must check its numbers with central "
                    f"before taking new work ({hold}); ask a supervisor", code="not_ready")
            from opd_fallback.application import clock  # a PC clock far off the hub's or central's

            clock.check_before_save(session)
            yield Tx(self, session, operator_id, recorded_at=recorded_at, source=source, origin=origin)

    def _pay(self, tx: Tx, info: PatientInfo, payment: PaymentInput, category: str,
             items: list[billing.PayLine], *, visit: str | None = None, lab_order: str | None = None) -> Saved:
        """Record a counter payment. A waiver the category's rules do not grant
        (master data exemptions) needs a supervisor and a reason; it is written
        to the audit log and nothing is collected (amount 0)."""
        if payment.mode != "waived":
            return tx.record_payment(info, payment, visit=visit, lab_order=lab_order, due_items=items)
        granted = all(billing.fee_exempt(tx.catalog, category, str(i["code"])) for i in items)
        list_paise = sum(int(i["amount_paise"]) for i in items)
        zero: list[billing.PayLine] = [{**i, "amount_paise": 0} for i in items]
        waived = PaymentInput(mode="waived", amount_paise=0, mode_ref=payment.mode_ref, items=zero)
        if granted:
            return tx.record_payment(info, waived, visit=visit, lab_order=lab_order)
        reason = rules.optional_text(payment.waiver_reason, max_len=200)
        problems = []
        if not reason:
            problems.append(FieldProblem("waiver_reason", "required",
                                         f"a waiver for a {category} patient needs a reason"))
        sup = active_supervisor(tx.session, payment.approved_by) if payment.approved_by else None
        if sup is None:
            problems.append(FieldProblem("supervisor", "not_supervisor",
                                         f"a waiver for a {category} patient needs a supervisor's ID and PIN"))
        if problems:
            raise DomainError(problems, code=problems[-1].code)
        assert sup is not None and reason is not None
        pay = tx.record_payment(info, waived, visit=visit, lab_order=lab_order,
                                waiver={"reason": reason, "approved_by": sup.id})
        audit.record(tx.session, tx.operator_id, WAIVER_ACTION, pay.local_ref, receipt_no=pay.extra["receipt_no"],
                     approved_by=sup.id, reason=reason, category=category, waived_paise=list_paise,
                     items=[str(i["code"]) for i in items])
        return Saved(pay.kind, pay.local_ref, pay.op_id, pay.seq,
                     {**pay.extra, "waiver_reason": reason, "approved_by": sup.id, "waived_paise": list_paise})

    def register_new(
        self, operator_id: str, patient: Mapping[str, object], *, department: str, unit: str | None = None,
        payment: PaymentInput | None = None, visit_date: date | None = None,
    ) -> Registration:
        """New patient + OPD visit + fee, as one transaction."""
        with self.transaction(operator_id) as tx:
            p = tx.register_patient(patient)
            info = tx.patient(p.local_ref)
            v = tx.open_visit(info, department, unit, visit_type="new", visit_date=visit_date)
            pay = None
            if payment is not None:
                category = str(patient.get("category") or "general")
                items = billing.opd_fee_lines(tx.catalog, "new", category, payment.amount_paise, payment.mode)
                pay = self._pay(tx, info, payment, category, items, visit=v.local_ref)
            return Registration(p, v, pay, info)

    def revisit(
        self, operator_id: str, patient: str, *, department: str, unit: str | None = None,
        payment: PaymentInput | None = None, category: str = "general",
    ) -> VisitResult:
        """An existing patient's visit and its fee; no registration op."""
        with self.transaction(operator_id) as tx:
            info = tx.patient(patient)
            v = tx.open_visit(info, department, unit, visit_type="revisit")
            pay = None
            if payment is not None:
                items = billing.opd_fee_lines(tx.catalog, "revisit", category, payment.amount_paise, payment.mode)
                pay = self._pay(tx, info, payment, category, items, visit=v.local_ref)
            return VisitResult(v, pay, info)

    def lab_request(
        self, operator_id: str, patient: str, visit: str, tests: Sequence[str], *,
        payment: PaymentInput | None = None, priority: str = "routine",
    ) -> LabResult:
        """A lab order and its payment; the sample id goes on the labels."""
        with self.transaction(operator_id) as tx:
            info = tx.patient(patient)
            order = tx.order_lab(info, visit, tests, priority=priority)
            codes = order.extra["tests"]
            cat = tx.catalog
            lines = billing.test_lines(cat, codes)
            pay = None
            if payment is not None:
                due = billing.due_lines(lines)
                if payment.items is None:
                    billing.check_total(payment.amount_paise, due)
                pay = self._pay(tx, info, payment, tx.category_of(info), due, visit=visit,
                                lab_order=order.local_ref)
            return LabResult(order, pay, info, lines)

    def pay_lab_order(self, operator_id: str, lab_order: str, payment: PaymentInput) -> LabResult:
        """Take payment for a lab order, this counter's or another counter's of the
        LAN (pulled from the hub): the patient, visit and tests come from the order.
        The billing desk's payment: cash, UPI, card, or a waiver (a supervisor's
        approval when the category does not grant it, as at registration). An order
        already paid anywhere on the LAN is refused (never taken twice)."""
        with self.transaction(operator_id) as tx:
            key = (lab_order or "").strip().upper()
            own = tx.session.exec(select(LabOrder).where(LabOrder.local_ref == key)).first()
            if own is not None:
                patient_key = own.patient_local_ref or own.patient_uhid or ""
                visit_key, codes = own.visit_local_ref or own.visit_central_id, list(outbox.loads(own.tests) or [])
                order_ref, order_op = own.local_ref, own.op_id
            else:
                other = shared_records.get(tx.session, key, "lab_order")
                if other is None:
                    raise DomainError.field("lab_order", f"no lab order {lab_order} at this counter or on the LAN; "
                                            "share with the hub and try again", code="not_found")
                d = shared_records.detail(other)
                patient_key, visit_key = other.patient_ref or "", other.visit_ref
                codes, order_ref, order_op = list(d.get("tests") or []), other.local_ref, other.op_id
            paid = billing.order_settled(tx.session, order_ref)
            if paid:
                where = f" at {paid[0].device_id}" if paid[0].device_id else ""
                raise DomainError.field(
                    "lab_order", f"lab order {order_ref} is already paid (receipt {paid[0].receipt_no}{where}); "
                    "nothing is due: reprint that receipt if the patient lost it", code="already_paid")
            info = tx.patient(patient_key)
            cat = tx.catalog
            lines = billing.test_lines(cat, codes)
            due = billing.due_lines(lines)
            if payment.items is None and payment.mode != "waived":
                billing.check_total(payment.amount_paise, due)
            pay = self._pay(tx, info, payment, tx.category_of(info), due, visit=visit_key, lab_order=order_ref)
            order = Saved("lab_order", order_ref, order_op, 0, {"tests": codes})
            return LabResult(order, pay, info, lines)

    def void(self, operator_id: str, payment: str, reason: str, *, approved_by: str) -> Saved:
        with self.transaction(operator_id) as tx:
            return tx.void_payment(payment, reason, approved_by=approved_by)

    def update_patient(self, operator_id: str, patient: str, changes: Mapping[str, object],
                       *, base_version: int | None = None) -> Saved:
        with self.transaction(operator_id) as tx:
            return tx.update_patient(patient, changes, base_version=base_version)

    # --- reading -------------------------------------------------------------------
    def search_patients(self, query: str, *, limit: int = 20) -> list[PatientHit]:
        with self.store.read() as s:
            return find_patients(s, query, limit=limit)

    def cash_summary(self, operator_id: str, day: date | None = None) -> CashSummary:
        d = (day or domain_clock.now_ist().date()).isoformat()
        with self.store.read() as s:
            return day_totals(s, d, operator_id)

    def queue(self, states: Sequence[str] | None = None, *, offset: int = 0, limit: int = 50) -> list[Op]:
        with self.store.read() as s:
            return list(outbox.list_ops(s, states=states, offset=offset, limit=limit))


def day_totals(session: Session, day: str, operator_id: str | None = None) -> CashSummary:
    """Payments of ``day`` (YYYY-MM-DD, IST) by mode, for one operator or all, with
    their voids; what review cancelled is counted apart (see ``CashSummary``)."""
    return totals_for_day(lambda sql, params: session.execute(text(sql), params).all(), day, operator_id)

"""What the counter screens call, over the store and ``CounterService``.

Every method here may block (SQLite, PIN hashing): the app calls them from
thread workers only. Methods return plain values and printable documents, so
screens stay free of SQL and of printing details.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from rapidfuzz import fuzz, process, utils

from opd_fallback.application.printouts import Printouts
from opd_fallback.application.services import (
    CounterService,
    LabResult,
    PaymentInput,
    Registration,
    VisitResult,
)
from opd_fallback.domain import rules
from opd_fallback.domain.clock import now_ist, parse_iso, today_ist
from opd_fallback.domain.contract import Department, Test
from opd_fallback.domain.errors import DomainError, error_words
from opd_fallback.domain.masterdata import Catalog, FeeQuote
from opd_fallback.printing import templates as T
from opd_fallback.printing.document import Document
from opd_fallback.store import meta as meta_keys
from opd_fallback.store import outbox, reads
from opd_fallback.store import shared as shared_records
from opd_fallback.store.engine import Store
from opd_fallback.store.operators import verify_operator, verify_supervisor
from opd_fallback.store.patient_index import PatientHit
from opd_fallback.store.samples import person_of
from opd_fallback.store.tables import Op, Patient, Visit
from opd_fallback.tui.ports import Approver, PatientFields, PaymentInfo, QueueRow, Saved, StatusInfo
from opd_fallback.tui.state import Session

if TYPE_CHECKING:
    from opd_fallback.application.billing import Account
    from opd_fallback.application.clock import ClockReport
    from opd_fallback.application.collection import CollectionDesk
    from opd_fallback.application.daytotals import CashSummary
    from opd_fallback.application.matching import PossibleMatch
    from opd_fallback.application.review import ReviewService
    from opd_fallback.application.services import Saved as RecordSaved


class StoreBackend:
    """The counter's work over one store (``tui/ports.CounterBackend``). Thread-safe
    as SQLite is: each call opens its own session."""

    def __init__(self, store: Store, *, device_id: str, hospital: str, district: str | None = None,
                 state: str | None = None) -> None:
        self.store = store
        self.device_id = device_id
        self.hospital = hospital
        self.district = district  # the hospital's: the registration form's default
        self.state = state
        self.svc = CounterService(store, device_id)
        self.printouts = Printouts(store, device_id=device_id, hospital=hospital, svc=self.svc)
        self._test_choices: dict[str, str] | None = None
        self._catalog_seen: Catalog | None = None

    # ------------------------------------------------------------ operators
    def verify_operator(self, operator_id: str, pin: str, purpose: str = "login") -> Session:
        """The operator's session, else ``PinRefused`` with the sentence to show
        (wrong PIN, or locked and for how long); wrong PINs are counted and audited."""
        op = verify_operator(self.store, operator_id.strip(), pin, purpose=purpose)
        return Session(op.id, op.name, op.role)

    def verify_supervisor(self, operator_id: str, pin: str) -> Session:
        op = verify_supervisor(self.store, operator_id.strip(), pin, purpose="approval")
        return Session(op.id, op.name, op.role)

    # ---------------------------------------------------------- master data
    def catalog(self) -> Catalog | None:
        return self.svc.catalog()

    def departments(self) -> list[Department]:
        cat = self.catalog()
        return list(cat.data.departments) if cat else []

    def opd_fee(self, visit_type: str, category: str) -> FeeQuote | None:
        cat = self.catalog()
        return cat.opd_fee(visit_type, category) if cat else None

    def find_tests(self, query: str, *, limit: int = 5) -> list[Test]:
        """Tests by exact code first, then fuzzy on code and name (rapidfuzz)."""
        cat = self.catalog()
        if cat is None or not query.strip():
            return []
        if cat is not self._catalog_seen:
            self._test_choices = {t.code: f"{t.code} {t.name}" for t in cat.data.tests}
            self._catalog_seen = cat
        q = query.strip()
        exact = cat.tests.get(q.upper())
        found = process.extract(
            q, self._test_choices or {}, scorer=fuzz.WRatio, processor=utils.default_process, limit=limit + 1
        )
        out: list[Test] = [exact] if exact else []
        for _choice, score, code in found:
            if score >= 50 and code in cat.tests and cat.tests[code] not in out:
                out.append(cat.tests[code])
        return out[:limit]

    # ---------------------------------------------------------------- writes
    def _approved(self, payment: PaymentInput | None, approver: Approver | None) -> PaymentInput | None:
        """A waiver with a supervisor's ID and PIN: checked here (the one PIN
        check in store/operators.py), good for this one save only."""
        if payment is None or payment.mode != "waived" or not approver or not any(approver):
            return payment
        sup = self.verify_supervisor(*approver)  # PinRefused says why (wrong, locked, not a supervisor)
        return replace(payment, approved_by=sup.operator_id)

    def register_new(self, session: Session, patient: PatientFields, *, department: str, unit: str | None,
                     payment: PaymentInput | None, approver: Approver | None = None) -> Saved:
        payment = self._approved(payment, approver)
        reg: Registration = self.svc.register_new(
            session.operator_id, patient, department=department, unit=unit, payment=payment
        )
        return self._visit_saved(session, reg.visit, reg.payment, patient=patient, info_name=reg.info.name,
                                 uhid=reg.info.uhid, patient_ref=reg.patient.local_ref)

    def revisit(self, session: Session, hit: PatientHit, *, department: str, unit: str | None,
                payment: PaymentInput | None, category: str = "general",
                approver: Approver | None = None) -> Saved:
        payment = self._approved(payment, approver)
        key = hit.uhid or hit.local_ref or ""
        res: VisitResult = self.svc.revisit(session.operator_id, key, department=department, unit=unit,
                                            payment=payment, category=category)
        patient: PatientFields = {"name": hit.name, "sex": hit.sex or "", "age_years": hit.age_years,
                                  "guardian_name": hit.guardian_name, "mobile": hit.mobile, "name_local": None}
        return self._visit_saved(session, res.visit, res.payment, patient=patient,
                                 info_name=res.info.name or hit.name, uhid=res.info.uhid,
                                 patient_ref=hit.uhid or hit.local_ref or "")

    def todays_visit(self, hit: PatientHit) -> str | None:
        """This patient's latest visit today at this counter (a lab order needs one)."""
        day = today_ist().isoformat()
        if not hit.uhid and not hit.local_ref:
            return None
        with self.store.read() as s:
            visit = reads.latest_visit(s, day, uhid=hit.uhid, local_ref=hit.local_ref)
            if visit is None:  # a visit registered at another counter of the LAN (from the hub)
                return shared_records.latest_visit_on(s, [hit.uhid or "", hit.local_ref or ""], day)
        return visit

    def lab_request(self, session: Session, hit: PatientHit, visit: str, tests: list[str], *,
                    payment: PaymentInput | None, priority: str = "routine",
                    approver: Approver | None = None) -> Saved:
        payment = self._approved(payment, approver)
        res: LabResult = self.svc.lab_request(session.operator_id, hit.uhid or hit.local_ref or "", visit, tests,
                                              payment=payment, priority=priority)
        # the receipt, then one label per tube, each with its own sample id; an order to pay at
        # billing prints nothing here: the billing desk prints its receipt and labels
        docs = self.printouts.for_lab_order(res.order.local_ref) if res.payment is not None else []
        tubes = len(res.order.extra.get("samples") or ()) or 1
        sample = res.order.extra["sample_id"] + (f" (+{tubes - 1})" if tubes > 1 else "")
        return Saved(res.order.local_ref, {"sample": sample, "tubes": tubes,
                                           "receipt": res.payment.extra["receipt_no"] if res.payment else None}, docs)

    # ------------------------------------------------------------ billing desk
    def account(self, hit: PatientHit) -> Account:
        """The patient's visits and lab orders at every counter, with paid and due (application/billing.py)."""
        from opd_fallback.application.billing import account

        with self.store.read() as s:
            return account(s, [hit.local_ref or "", hit.uhid or ""], own_device=self.device_id,
                           catalog=self.svc.catalog(s))

    def pay_order(self, session: Session, order_ref: str, payment: PaymentInput,
                  approver: Approver | None = None) -> Saved:
        """Take a lab order's payment (any counter's order); the receipt and the tube labels to print."""
        approved = self._approved(payment, approver) or payment
        res: LabResult = self.svc.pay_lab_order(session.operator_id, order_ref, approved)
        assert res.payment is not None
        receipt = res.payment.extra["receipt_no"]
        docs = self.printouts.for_order_payment(receipt, res.order.local_ref)
        return Saved(res.order.local_ref, {"receipt": receipt, "amount_paise": res.payment.extra["amount_paise"],
                                           "labels": sum(1 for d in docs if d.kind == "labels")}, docs)

    def find_payment(self, key: str) -> PaymentInfo | None:
        k = key.strip().upper()
        with self.store.read() as s:
            row = reads.payment_by_key(s, k)
            if row is None:
                return None
            # the patient's name now (an edit since, here or at another counter), as the receipt reprints it
            name = person_of(s, row[7] or row[8] or "", row[2]).name
        return PaymentInfo(receipt_no=row[0], local_ref=row[1], patient_name=name, amount_paise=int(row[3]),
                           mode=row[4], created_at=row[5], voided=bool(row[6]))

    def void(self, session: Session, receipt_no: str, reason: str, supervisor_id: str, supervisor_pin: str) -> Saved:
        if not supervisor_id.strip() or not supervisor_pin:
            raise DomainError.field("supervisor", "a supervisor's ID and PIN are required", code="not_supervisor")
        sup = self.verify_supervisor(supervisor_id, supervisor_pin)  # PinRefused says why
        res = self.svc.void(session.operator_id, receipt_no, reason, approved_by=sup.operator_id)
        doc = T.void_notice(hospital=self.hospital, receipt_no=res.extra["receipt_no"],
                            amount_paise=res.extra["amount_paise"], reason=rules.clean_text(reason),
                            operator_id=session.operator_id, supervisor_id=sup.operator_id,
                            recorded_at=now_ist().isoformat())
        return Saved(res.extra["receipt_no"], {"receipt": res.extra["receipt_no"]}, [doc])

    def possible_duplicates(self, patient: PatientFields) -> list[PossibleMatch]:
        """Registered patients a new one may be (this counter's and the index)."""
        from opd_fallback.application.matching import possible_duplicates

        return possible_duplicates(self.store, patient)

    # ----------------------------------------------------------------- reads
    def search_patients(self, query: str, *, limit: int = 20) -> list[PatientHit]:
        """Patients of the hospital by every key of store/search.py (offline number, uhid,
        visit, order or receipt number, sample id, whole or part of a mobile, name)."""
        return self.svc.search_patients(query, limit=limit)

    def queue_page(self, states: list[str] | None, offset: int, limit: int) -> tuple[list[QueueRow], int]:
        with self.store.read() as s:
            ops: list[Op] = list(outbox.list_ops(s, states=states, offset=offset, limit=limit))
            counts = outbox.counts_by_state(s)
        total = sum(counts.get(st, 0) for st in states) if states else sum(counts.values())
        rows = [QueueRow(op.seq, op.kind, op.state, op.record_ref, op.recorded_at, _reason(op)) for op in ops]
        return rows, total

    def cash_summary_doc(self, session: Session) -> tuple[CashSummary, Document]:
        summary = self.svc.cash_summary(session.operator_id)
        modes = [T.ModeTotal(m, t.count, t.total_paise) for m, t in summary.by_mode.items()]
        doc = T.cash_summary(hospital=self.hospital, device_id=self.device_id, operator_id=session.operator_id,
                             operator_name=session.name, day=summary.day, modes=modes,
                             voids_count=summary.voids.count, voids_paise=summary.voids.total_paise,
                             printed_at=now_ist().isoformat(), collected_paise=summary.collected_paise,
                             cash_in_hand_paise=summary.by_mode["cash"].total_paise
                             - summary.voided_by_mode.get("cash", type(summary.voids)()).total_paise)
        return summary, doc

    def status(self) -> StatusInfo:
        """Counts for the status bar: one cheap query each."""
        with self.store.read() as s:
            counts = outbox.counts_by_state(s)
            oldest = outbox.oldest_recorded_at(s, [outbox.PENDING])
            from opd_fallback.application.clock import report as clock_report

            clock = clock_report(s)
            conflicts = reads.open_lan_conflicts(s)
            meta = {k: v for k in (meta_keys.LAST_SYNC_AT, meta_keys.LAST_SYNC_OUTCOME)
                    if (v := meta_keys.get(s, k)) is not None}
        age = None
        if oldest:
            try:
                age = max(0.0, (now_ist() - parse_iso(oldest)).total_seconds())
            except ValueError:
                age = None
        last = None
        if meta.get(meta_keys.LAST_SYNC_AT):
            last = _short_time(str(meta[meta_keys.LAST_SYNC_AT]))
            outcome = str(meta.get(meta_keys.LAST_SYNC_OUTCOME) or "")
            if outcome.startswith("{"):
                try:
                    outcome = str(outbox.loads(outcome).get("outcome", ""))
                except (ValueError, AttributeError):
                    outcome = ""
            if outcome and len(outcome) <= 16:
                last += f" ({outcome})"
        return StatusInfo(ops_waiting=counts.get(outbox.PENDING, 0), oldest_age_s=age,
                          ops_flagged=sum(counts.get(s_, 0) for s_ in outbox.FLAGGED), last_sync=last,
                          lan_conflicts=conflicts.n,
                          # the PC clock more than 5 minutes off the hub's or central's (application/clock.py)
                          clock_off=clock.message if clock.off else None, clock_confirmed=bool(clock.confirmed_by))

    # ----------------------------------------------------------------- clock
    def clock_report(self) -> ClockReport:
        """The last measure of this PC's clock against the hub's or central's."""
        from opd_fallback.application.clock import report

        with self.store.read() as s:
            return report(s)

    def confirm_clock(self, supervisor_id: str, pin: str) -> ClockReport:
        """What ``opd-fallback clock confirm`` does: a supervisor's PIN (``PinRefused``
        says why not), then the confirmation for this offset, audited ``clock.confirmed``."""
        from opd_fallback.application.clock import confirm

        return confirm(self.store, supervisor_id.strip(), pin)

    # --------------------------------------------------- desks with a service
    def review(self) -> ReviewService:
        from opd_fallback.application.review import ReviewService

        return ReviewService(self.store)

    def collection(self) -> CollectionDesk:
        from opd_fallback.application.collection import CollectionDesk

        return CollectionDesk(self.store, self.device_id, hospital=self.hospital, svc=self.svc)

    def storage_path(self) -> str | None:
        return str(self.store.path)

    # --------------------------------------------------------------- helpers
    def _visit_saved(self, session: Session, visit: RecordSaved, payment: RecordSaved | None, *, patient: PatientFields,
                     info_name: str,
                     uhid: str | None, patient_ref: str) -> Saved:
        """A saved visit (new or revisit): the slip, the receipt if paid, and what to tell the clerk.
        The papers are built from the saved records (the patient as registered)."""
        docs = self.printouts.for_visit(visit.local_ref)
        # the visit's number is the one printed large on the slip
        return Saved(visit.local_ref, {"token": visit.extra["token_no"],
                                       "receipt": payment.extra["receipt_no"] if payment else None}, docs)

    def reprint(self, session: Session, doc: Document) -> Document:
        """A spooled document marked DUPLICATE (and VOIDED for a voided receipt); audited."""
        return self.printouts.reprint(session.operator_id, doc)


def _reason(op: Op) -> str:
    if op.wait_reason:
        return op.wait_reason
    if op.last_error:
        return error_words(outbox.loads(op.last_error) or {})
    if op.state == outbox.PENDING:
        return "waiting for the central server" if op.attempts == 0 else f"not accepted yet ({op.last_status})"
    return op.last_status or ""


def _short_time(value: str) -> str:
    try:
        return datetime.fromisoformat(value.strip('"')).strftime("%d-%m %H:%M")
    except ValueError:
        return value[:16]


def local_patient_hit(patient: Patient) -> PatientHit:
    return PatientHit(patient.uhid, patient.local_ref, patient.name, patient.sex, patient.age_years,
                      patient.guardian_name, patient.mobile, patient.district, "local", patient.version,
                      patient.age_months, patient.age_days)


__all__ = ["QueueRow", "Saved", "StoreBackend", "Visit", "local_patient_hit"]

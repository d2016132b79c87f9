"""The papers of a record, built from what is saved, and their reprints.

A slip, receipt or tube label is built here from the store's rows (the
patient as her row holds it now: guardian relation, age in months, Hindi name,
category, and a name edited since, here or at another counter), never from
what a screen happened to hold, so the first print, a reprint and
``opd-fallback preview`` show the same thing but for such an edit. The
``patient_name`` copies of visits, orders and payments are not read while the
patient is known here (decided in store/tables.py). A reprint
goes through ``reprint``: it is marked DUPLICATE with the time and operator
(a voided receipt also VOIDED with the void's reason, time and supervisor)
and written to the audit log in the same step.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select

from opd_fallback.application.billing import Sample
from opd_fallback.application.services import CounterService
from opd_fallback.domain.clock import now_ist
from opd_fallback.domain.errors import DomainError
from opd_fallback.domain.masterdata import Catalog
from opd_fallback.printing import templates as T
from opd_fallback.printing.document import Document
from opd_fallback.store import audit, outbox
from opd_fallback.store import shared as shared_records
from opd_fallback.store.engine import Store
from opd_fallback.store.tables import (
    AuditEntry,
    IndexedPatient,
    LabOrder,
    Op,
    Patient,
    Payment,
    PaymentVoid,
    Visit,
)

REPRINT_ACTION = "print.reprint"
WAIVER_ACTION = "payment.waive"  # the audit entry of a supervisor-approved waiver (reason, approved_by)


@dataclass(frozen=True)
class Person:
    """The patient as the papers print them."""

    number: str
    name: str
    name_local: str | None
    sex: str
    age: tuple[int | None, int | None, int | None]
    guardian: str | None
    mobile: str | None
    category: str | None

    @property
    def age_sex(self) -> str:
        return f"{T.age_text(*self.age)}/{self.sex}"


class Printouts:
    """Builds the documents of a record (by its offline number, receipt number
    or sample id) and marks and audits their reprints."""

    def __init__(self, store: Store, *, device_id: str, hospital: str, svc: CounterService | None = None) -> None:
        self.store = store
        self.device_id = device_id
        self.hospital = hospital
        self.svc = svc or CounterService(store, device_id)

    # ------------------------------------------------------------- building
    def for_record(self, ref: str) -> list[Document]:
        """Every paper printed for ``ref``: a visit's slip and receipt; a lab
        order's receipt and one label per tube; a receipt; a tube's label."""
        key = ref.strip().upper()
        with self.store.read() as s:
            if s.exec(select(Visit).where(Visit.local_ref == key)).first() is not None:
                return self._visit_docs(s, key)
            order = s.exec(select(LabOrder).where(LabOrder.local_ref == key)).first()
            if order is not None:
                return self._lab_docs(s, order)
            pay = s.exec(select(Payment).where((Payment.receipt_no == key) | (Payment.local_ref == key))).first()
            if pay is not None:
                return [self._receipt(s, pay)]
            # a tube's sample id is in its order's op payload (``samples``)
            ops = s.exec(select(Op).where(Op.kind == "lab.order", col(Op.payload).contains(f'"{key}"', autoescape=True)))
            for op in ops:
                order = s.exec(select(LabOrder).where(LabOrder.op_id == op.op_id)).first()
                labels = [d for d in self._labels(s, order) if d.ref == key] if order is not None else []
                if labels:
                    return labels
            patient = s.exec(select(Patient).where((Patient.local_ref == key) | (Patient.uhid == key))).first()
        if patient is not None:
            raise DomainError.field("ref", f"{key} is a patient's number; give the visit number (printed large on "
                                           "the slip), a receipt number or a sample id", code="patient_ref")
        raise DomainError.field("ref", f"no visit, lab order, receipt or sample numbered {key} on this counter; "
                                       "check the number on the slip", code="not_found")

    def for_visit(self, visit_ref: str) -> list[Document]:
        with self.store.read() as s:
            return self._visit_docs(s, visit_ref)

    def for_lab_order(self, order_ref: str) -> list[Document]:
        with self.store.read() as s:
            order = s.exec(select(LabOrder).where(LabOrder.local_ref == order_ref)).one()
            return self._lab_docs(s, order)

    def for_order_payment(self, receipt_no: str, order_ref: str) -> list[Document]:
        """The billing desk's papers: the receipt just taken and the order's tube
        labels (an order saved "pay at billing" printed none), for this counter's
        order or another counter's of the LAN."""
        key = order_ref.strip().upper()
        with self.store.read() as s:
            pay = s.exec(select(Payment).where(Payment.receipt_no == receipt_no)).one()
            order = s.exec(select(LabOrder).where(LabOrder.local_ref == key)).first()
            if order is not None:
                return [self._receipt(s, pay), *self._labels(s, order)]
            other = shared_records.get(s, key, "lab_order")
            if other is None:
                return [self._receipt(s, pay)]
            d = shared_records.detail(other)
            who = self._person(s, other.patient_ref, other.patient_ref, pay.patient_name)
            samples = d.get("samples") or [{"sample_id": d.get("sample_id") or other.local_ref,
                                            "sample_type": "sample", "tests": d.get("tests") or []}]
            tubes = [T.Tube(t["sample_id"], t["sample_type"], t["tests"]) for t in samples]
            labels = T.tube_labels(order_no=other.local_ref, tubes=tubes, patient_name=who.name,
                                   patient_name_local=who.name_local, patient_ref=who.number, age_sex=who.age_sex,
                                   recorded_at=other.recorded_at, priority=str(d.get("priority") or "routine"))
            return [self._receipt(s, pay, who), *labels]

    def _visit_docs(self, s: Session, visit_ref: str) -> list[Document]:
        visit = s.exec(select(Visit).where(Visit.local_ref == visit_ref)).one()
        who = self._person(s, visit.patient_local_ref, visit.patient_uhid, visit.patient_name)
        pays = list(s.exec(select(Payment).where(Payment.visit_local_ref == visit.local_ref,
                                                 Payment.lab_order_local_ref == None)  # noqa: E711
                           .order_by(Payment.id)))  # type: ignore[arg-type]
        first = pays[0] if pays else None
        cat = self.svc.catalog(s)
        dept = cat.departments.get(visit.department) if cat is not None else None
        slip = T.opd_slip(
            hospital=self.hospital, device_id=self.device_id, offline_no=visit.local_ref, name=who.name,
            name_local=who.name_local, sex=who.sex, age=who.age, department=visit.department, unit=visit.unit,
            token_no=visit.token_no, visit_type=visit.visit_type, recorded_at=visit.created_at,
            operator_id=visit.operator_id, uhid=None, guardian=who.guardian, mobile=who.mobile,
            fee_paise=first.amount_paise if first else None, receipt_no=first.receipt_no if first else None,
            patient_ref=who.number, category=who.category,
            department_name=dept.name if dept else None, department_name_local=dept.name_hi if dept else None,
        )
        return [slip, *(self._receipt(s, p, who) for p in pays)]

    def _lab_docs(self, s: Session, order: LabOrder) -> list[Document]:
        pays = s.exec(select(Payment).where(Payment.lab_order_local_ref == order.local_ref).order_by(Payment.id))  # type: ignore[arg-type]
        return [*(self._receipt(s, p) for p in pays), *self._labels(s, order)]

    def _labels(self, s: Session, order: LabOrder) -> list[Document]:
        who = self._person(s, order.patient_local_ref, order.patient_uhid, order.patient_name)
        tubes = [T.Tube(t["sample_id"], t["sample_type"], t["tests"]) for t in self._tubes(s, order)]
        return T.tube_labels(order_no=order.local_ref, tubes=tubes, patient_name=who.name,
                             patient_name_local=who.name_local, patient_ref=who.number, age_sex=who.age_sex,
                             recorded_at=order.created_at, priority=order.priority)

    def _tubes(self, s: Session, order: LabOrder) -> list[Sample]:
        """The tubes as sent in the op (``samples``); an order saved before
        there were several keeps its one sample id for all its tests."""
        op = s.exec(select(Op).where(Op.op_id == order.op_id)).first()
        payload = outbox.loads(op.payload) if op is not None else {}
        if isinstance(payload, dict) and payload.get("samples"):
            return list(payload["samples"])
        codes = outbox.loads(order.tests) or []
        return [{"sample_id": order.sample_id or order.local_ref, "sample_type": "sample", "tests": codes}]

    def _receipt(self, s: Session, pay: Payment, who: Person | None = None) -> Document:
        who = who or self._person(s, pay.patient_local_ref, pay.patient_uhid, pay.patient_name)
        cat = self.svc.catalog(s)
        items = [T.LineItem(i["code"], _item_name(cat, i["code"]), int(i["amount_paise"]), int(i.get("qty", 1)))
                 for i in outbox.loads(pay.items) or []]
        mode_ref = pay.mode_ref
        waiver = self._waiver_of(s, pay)
        if waiver is not None:  # printed beside "Paid by WAIVED"
            mode_ref = f"({waiver[0]}; approved by {waiver[1]})"
        return T.receipt(hospital=self.hospital, device_id=self.device_id, receipt_no=pay.receipt_no,
                         patient_name=who.name, patient_ref=who.number, items=items,
                         amount_paise=pay.amount_paise, mode=pay.mode, mode_ref=mode_ref,
                         recorded_at=pay.created_at, operator_id=pay.operator_id,
                         patient_name_local=who.name_local,
                         visit_no=pay.visit_local_ref)

    @staticmethod
    def _waiver_of(s: Session, pay: Payment) -> tuple[str, str] | None:
        """A supervisor-approved waiver's reason and approver, from the audit log."""
        if pay.mode != "waived":
            return None
        entry = s.exec(select(AuditEntry).where(AuditEntry.action == WAIVER_ACTION, AuditEntry.subject == pay.local_ref)
                       .order_by(col(AuditEntry.id).desc())).first()
        detail = outbox.loads(entry.detail) if entry is not None else None
        if not isinstance(detail, dict) or not detail.get("reason"):
            return None
        return str(detail["reason"]), str(detail.get("approved_by") or "?")

    def _person(self, s: Session, local_ref: str | None, uhid: str | None, name: str) -> Person:
        p = None
        if local_ref:
            p = s.exec(select(Patient).where(Patient.local_ref == local_ref)).first()
        if p is None and uhid:
            p = s.exec(select(Patient).where(Patient.uhid == uhid)).first()
        if p is not None:
            return Person(T.patient_no(p.uhid or uhid, p.local_ref), p.name, p.name_local, p.sex,
                          (p.age_years, p.age_months, p.age_days),
                          T.guardian_line(p.guardian_relation, p.guardian_name), p.mobile, p.category)
        other = next((r for r in (shared_records.get(s, k, "patient") for k in (local_ref, uhid) if k) if r), None)
        if other is not None:  # registered at another counter of the LAN: printed as it was registered there
            d = shared_records.detail(other)
            return Person(T.patient_no(other.central_id or uhid, other.local_ref), other.name or name,
                          d.get("name_local"), d.get("sex") or "?",
                          (d.get("age_years"), d.get("age_months"), d.get("age_days")),
                          T.guardian_line(d.get("guardian_relation"), d.get("guardian_name")), other.mobile,
                          d.get("category"))
        ip = s.exec(select(IndexedPatient).where(IndexedPatient.uhid == uhid)).first() if uhid else None
        if ip is not None:
            # central's patient list has no relation, months or Hindi name: print what is known
            return Person(T.patient_no(uhid, local_ref), ip.name, None, ip.sex or "?", (ip.age_years, None, None),
                          T.guardian_line(None, ip.guardian_name), ip.mobile, None)
        return Person(T.patient_no(uhid, local_ref), name, None, "?", (None, None, None), None, None, None)

    # -------------------------------------------------------------- reprints
    def reprint(self, operator_id: str, doc: Document) -> Document:
        """``doc`` (from the spool) as it must be reprinted: rebuilt from the
        store where it can be (so a void since then shows), marked DUPLICATE,
        and VOIDED for a voided receipt; the reprint is audited."""
        original = T.unmark(doc)
        if original.kind in ("slip", "receipt", "labels"):
            try:
                fresh = [d for d in self.for_record(original.ref) if d.kind == original.kind and d.ref == original.ref]
            except DomainError:
                fresh = []
            if fresh:
                original = fresh[0]
        now = now_ist().isoformat()
        with self.store.write() as s:
            voided = self._void_of(s, original) if original.kind == "receipt" else None
            audit.record(s, operator_id, REPRINT_ACTION, original.ref, kind=original.kind, title=original.title,
                         voided=voided is not None)
        return T.mark_reprint(original, reprinted_at=now, operator_id=operator_id, voided=voided)

    def _void_of(self, s: Session, doc: Document) -> tuple[str, str, str] | None:
        pay = s.exec(select(Payment).where(Payment.receipt_no == doc.ref)).first()
        if pay is None:
            return None
        v = s.exec(select(PaymentVoid).where(PaymentVoid.payment_local_ref == pay.local_ref)).first()
        return None if v is None else (v.reason, v.created_at, v.approved_by)


def _item_name(cat: Catalog | None, code: str) -> str:
    if cat is not None and code in cat.fees:
        return cat.fees[code].name
    if cat is not None and code in cat.tests:
        return cat.tests[code].name
    return code


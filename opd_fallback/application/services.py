"""The one way a counter writes: each service saves its record and its outbox op
in one transaction, with the numbers printed for people.

The TUI, the CLI and the CSV import all call these; none of them writes tables
directly. Saving touches only the local SQLite file, never the network.

    svc = CounterService(store, device_id="C07")
    reg = svc.register_new("op-114", {"name": "Ram Kumar", "sex": "M", "age_years": 40},
                           department="MED", unit="U1", payment=PaymentInput(mode="cash"))
    reg.patient.local_ref, reg.visit.extra["token_no"], reg.payment.extra["receipt_no"]

A flow is also available piece by piece inside one transaction:

    with svc.transaction("op-114") as tx:
        p = tx.register_patient({...}); v = tx.open_visit(p.local_ref, "MED")
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import event, text
from sqlmodel import Session, select

from opd_fallback.application.daytotals import (  # noqa: F401 - ModeTotal re-exported
    WAIVER_ACTION,
    CashSummary,
    ModeTotal,
    totals_for_day,
)
from opd_fallback.domain import payloads as P
from opd_fallback.domain import rules
from opd_fallback.domain.clock import now_ist
from opd_fallback.domain.contract import MasterData
from opd_fallback.domain.errors import DomainError, FieldProblem, validate
from opd_fallback.domain.masterdata import Catalog, is_exempt
from opd_fallback.store import audit, meta, numbers, outbox, reserved
from opd_fallback.store import shared as shared_records
from opd_fallback.store.engine import Store
from opd_fallback.store.operators import active_supervisor
from opd_fallback.store.patient_index import PatientHit, uhid_for_local_ref
from opd_fallback.store.records import new_record
from opd_fallback.store.search import search as find_patients
from opd_fallback.store.tables import (
    IndexedPatient,
    LabOrder,
    MasterDataCache,
    Op,
    Patient,
    Payment,
    PaymentVoid,
    Visit,
)

_LOCAL_REF_PLACEHOLDER = "X-000000"


def _is_exempt(catalog: Catalog | None, category: str, fee_code: str) -> bool:
    """Do the category's rules grant this fee free? Without master data, the default exemptions."""
    return catalog.is_exempt(category, fee_code) if catalog is not None else is_exempt(category, fee_code)


@dataclass
class PaymentInput:
    """What the clerk took. ``amount_paise`` None means 'the amount due'."""

    mode: str
    amount_paise: int | None = None
    mode_ref: str | None = None
    items: list[dict[str, Any]] | None = None
    # A waiver the category's rules do not grant: who approved it and why
    # (the approver's PIN is checked by the caller, just before saving).
    waiver_reason: str | None = None
    approved_by: str | None = None


@dataclass(frozen=True)
class Saved:
    """One record saved with its op. ``extra`` holds printed numbers
    (receipt_no, sample_id, token_no, uhid, amount_paise...)."""

    kind: str
    local_ref: str
    op_id: str
    seq: int
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PatientInfo:
    """Who a record is for, as printed on slips."""

    ref: P.Ref
    name: str
    local_ref: str | None
    uhid: str | None
    depends_on: tuple[str, ...] = ()
    sex: str | None = None
    age_years: int | None = None
    version: int = 0


@dataclass(frozen=True)
class Registration:
    patient: Saved
    visit: Saved
    payment: Saved | None
    info: PatientInfo


@dataclass(frozen=True)
class VisitResult:
    visit: Saved
    payment: Saved | None
    info: PatientInfo


@dataclass(frozen=True)
class LabResult:
    order: Saved
    payment: Saved | None
    info: PatientInfo
    tests: list[dict[str, Any]]  # code, name, sample_type, price_paise


@dataclass(frozen=True)
class _Made:
    """A record made in the open transaction: its op is surely not synced yet."""

    kind: str
    op_id: str
    patient_local_ref: str | None = None
    patient_uhid: str | None = None
    info: PatientInfo | None = None


def _origin(origin: dict[str, Any] | None) -> dict[str, str] | None:
    """An envelope's ``origin`` checked by the contract's model; None when no key has a value."""
    return None if not origin else validate(P.Origin, origin).wire()


class Tx:
    """One open write transaction at the counter (see ``CounterService.transaction``)."""

    def __init__(
        self,
        svc: CounterService,
        session: Session,
        operator_id: str,
        *,
        recorded_at: datetime | None = None,
        source: str = "counter",
        origin: dict[str, Any] | None = None,
    ) -> None:
        self.svc = svc
        self.session = session
        self.operator_id = operator_id
        self.recorded_at = recorded_at
        self.source = source
        # contract 1.2: where the ops of a back-entered slip were written on paper
        # (written_by, device_id, slip_no), sent on each op's envelope; see from_paper
        self.origin = _origin(origin)
        self.catalog = svc.catalog(session)
        # Records made in this transaction by local_ref (and uhid), so the next step
        # of a flow (the visit of a patient just registered, the payment of a lab
        # order just made) finds them without a query.
        self._made: dict[str, _Made] = {}
        self._added: list[Any] = []  # records added to the session, in order (for savepoint)
        self._flushes = 0
        self._savepoints = 0
        event.listen(session, "transient_to_pending", lambda _s, obj: self._added.append(obj))
        event.listen(session, "after_flush", lambda _s, _ctx: self._count_flush())

    def _count_flush(self) -> None:
        self._flushes += 1

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A part of the transaction undone alone if it raises (the exception goes
        on to the caller), for many small units in one transaction (the CSV import).

        Inside it nothing is flushed: what it adds is written with the rest of the
        transaction at commit, many rows at a time, and is dropped if the part is
        undone. The steps of a flow find what this transaction made through
        ``_made``, never by a query that would miss an unflushed record."""
        made, mark, flushes = dict(self._made), len(self._added), self._flushes
        self._savepoints += 1
        name = f"tx_part_{self._savepoints}"
        conn = self.session.connection()
        conn.exec_driver_sql(f"SAVEPOINT {name}")
        try:
            with self.session.no_autoflush:
                yield
        except BaseException:
            conn.exec_driver_sql(f"ROLLBACK TO {name}")
            conn.exec_driver_sql(f"RELEASE {name}")
            for obj in self._added[mark:]:
                if obj in self.session:
                    self.session.expunge(obj)
            del self._added[mark:]
            self._made = made
            if self._flushes != flushes:
                # a flush inside the part wrote earlier parts' records that the
                # rollback just undid: only undoing the whole transaction is safe
                raise RuntimeError("a flush inside a savepoint; the whole transaction is undone") from None
            raise
        conn.exec_driver_sql(f"RELEASE {name}")

    @contextmanager
    def from_paper(self, origin: dict[str, Any] | None) -> Iterator[None]:
        """The ops made inside carry ``origin`` (one slip of a back-entry file,
        within the import's one transaction); the transaction's own afterwards."""
        before, self.origin = self.origin, _origin(origin)
        try:
            yield
        finally:
            self.origin = before

    # --- helpers -------------------------------------------------------------
    def _when(self) -> datetime:
        return self.recorded_at or now_ist()

    def _begin_op(self) -> tuple[int, str, datetime]:
        return numbers.next_seq(self.session), outbox.new_op_id(), self._when()

    def _enqueue(
        self, seq: int, op_id: str, when: datetime, kind: str, payload: P.Model,
        depends_on: Sequence[str], record_kind: str, record_ref: str | None,
    ) -> Op:
        return outbox.enqueue(
            self.session, seq=seq, op_id=op_id, kind=kind, device_id=self.svc.device_id,
            operator_id=self.operator_id, payload=payload, depends_on=depends_on,
            recorded_at=when, record_kind=record_kind, record_ref=record_ref, source=self.source,
            origin=self.origin,
        )

    def _unsynced(self, *op_ids: str | None) -> list[str]:
        return outbox.unsynced_op_ids(self.session, [i for i in op_ids if i])

    def patient(self, key: str | PatientInfo) -> PatientInfo:
        """Resolve a patient by local offline number or uhid (local registrations
        first, then the central index). Unknown keys shaped like an offline
        number are taken as local refs, any other as central ids."""
        if isinstance(key, PatientInfo):
            return key
        k = (key or "").strip().upper()
        if not k:
            raise DomainError.field("patient", "choose a patient first", code="required")
        made = self._made.get(k)
        if made is not None and made.info is not None:
            return made.info
        s = self.session
        local = s.exec(select(Patient).where((Patient.local_ref == k) | (Patient.uhid == k))).first()
        if local is not None:
            return PatientInfo(
                ref=P.Ref.local(local.local_ref), name=local.name, local_ref=local.local_ref,
                uhid=local.uhid, depends_on=tuple(self._unsynced(local.op_id)), sex=local.sex,
                age_years=local.age_years, version=local.version,
            )
        other = shared_records.get(s, k, "patient")
        if other is not None and other.local_ref != k and s.exec(
                select(IndexedPatient).where(IndexedPatient.uhid == k)).first() is not None:
            # provenance: a central id learnt through the hub never outranks central's own index
            other = None
        if other is not None:
            # registered at another counter of this LAN (pulled from the hub): its ops
            # carry that counter's offline number, which central maps once it syncs
            d = shared_records.detail(other)
            return PatientInfo(
                ref=P.Ref.local(other.local_ref), name=other.name or "", local_ref=other.local_ref,
                uhid=other.central_id, sex=d.get("sex"), age_years=d.get("age_years"),
            )
        idx = s.exec(select(IndexedPatient).where(IndexedPatient.uhid == k)).first()
        if idx is None and numbers.is_local_ref(k):
            # another counter's offline number that central has mapped (local_refs)
            mapped = uhid_for_local_ref(s, k)
            if mapped is not None:
                idx = s.exec(select(IndexedPatient).where(IndexedPatient.uhid == mapped)).first()
        if idx is not None:
            return PatientInfo(
                ref=P.Ref.central(idx.uhid), name=idx.name, local_ref=None, uhid=idx.uhid,
                sex=idx.sex, age_years=idx.age_years, version=idx.version,
            )
        if numbers.is_local_ref(k):
            # an offline number on the patient's slip that this store does not
            # hold (another counter's, or this one's before a restore): central
            # knows it by its local_ref
            return PatientInfo(ref=P.Ref.local(k), name="", local_ref=k, uhid=None)
        return PatientInfo(ref=P.Ref.central(k), name="", local_ref=None, uhid=k)

    def category_of(self, info: PatientInfo) -> str:
        """The patient's category as registered at this counter or another of the LAN ('general' otherwise)."""
        if info.local_ref:
            rec = self.session.exec(select(Patient).where(Patient.local_ref == info.local_ref)).first()
            if rec is not None and rec.category:
                return str(rec.category)
            other = shared_records.get(self.session, info.local_ref, "patient")
            if other is not None and shared_records.detail(other).get("category"):
                return str(shared_records.detail(other)["category"])
        return "general"

    def _visit_ref(self, key: str, patient: PatientInfo | None = None) -> tuple[P.Ref, list[str], str | None]:
        """The visit as a reference; a visit of this counter must belong to ``patient``."""
        k = key.strip().upper()
        made = self._made.get(k)
        if made is not None and made.kind == "visit":
            if patient is not None and not (
                (made.patient_local_ref and made.patient_local_ref == patient.local_ref)
                or (made.patient_uhid and made.patient_uhid == patient.uhid)
            ):
                raise DomainError.field("visit", f"visit {k} is another patient's, not this patient's",
                                        code="other_patient")
            return P.Ref.local(k), [made.op_id], k
        v = self.session.exec(select(Visit).where(Visit.local_ref == k)).first()
        if v is not None:
            if patient is not None and not (
                (v.patient_local_ref and v.patient_local_ref == patient.local_ref)
                or (v.patient_uhid and v.patient_uhid == patient.uhid)
            ):
                raise DomainError.field(
                    "visit", f"visit {v.local_ref} is {v.patient_name}'s, not this patient's", code="other_patient")
            return P.Ref.local(v.local_ref), [] if v.central_id else self._unsynced(v.op_id), v.local_ref
        other = shared_records.get(self.session, k, "visit")
        if other is not None:  # another counter's visit (from the hub)
            if patient is not None and other.patient_ref not in (patient.local_ref, patient.uhid):
                raise DomainError.field(
                    "visit", f"visit {other.local_ref} (counter {other.device_id}) is another patient's",
                    code="other_patient")
            return P.Ref.local(other.local_ref), [], other.local_ref
        if numbers.is_local_ref(k):
            return P.Ref.local(k), [], k
        return P.Ref.central(k), [], None

    # --- the six services ------------------------------------------------------
    def register_patient(self, fields: dict[str, Any]) -> Saved:
        """A new patient; takes a reserved central uhid when the counter holds one."""
        data = {k: v for k, v in fields.items() if k not in ("local_ref", "uhid")}
        validate(P.PatientRegister, {**data, "local_ref": _LOCAL_REF_PLACEHOLDER})
        seq, op_id, when = self._begin_op()
        local_ref = numbers.local_ref(self.svc.device_id, seq, when)
        uhid = reserved.take(self.session, "uhid", op_id)
        payload = validate(P.PatientRegister, {**data, "local_ref": local_ref, "uhid": uhid})
        body = payload.model_dump(mode="json")
        rec = new_record(
            Patient,
            **{k: body[k] for k in Patient.model_fields if k in body and k not in ("id",)},
            op_id=op_id, operator_id=self.operator_id, created_at=when.isoformat(),
        )
        self.session.add(rec)
        self._enqueue(seq, op_id, when, "patient.register", payload, [], "patient", local_ref)
        info = PatientInfo(ref=P.Ref.local(local_ref), name=payload.name, local_ref=local_ref, uhid=uhid,
                           depends_on=(op_id,), sex=payload.sex, age_years=payload.age_years, version=rec.version)
        for k in (local_ref, uhid):
            if k:
                self._made[k] = _Made("patient", op_id, info=info)
        return Saved("patient", local_ref, op_id, seq, {"uhid": uhid, "name": payload.name})

    def open_visit(
        self, patient: str | PatientInfo, department: str, unit: str | None = None, *,
        visit_type: str | None = None, visit_date: date | None = None,
    ) -> Saved:
        info = self.patient(patient)
        vtype = visit_type or ("new" if info.depends_on and info.local_ref else "revisit")
        day = visit_date or self._when().date()
        dept = (department or "").strip().upper()
        unit_code = (unit or "").strip().upper() or None
        if self.catalog is not None and dept:
            self.catalog.check_department(dept, unit_code)
        seq, op_id, when = self._begin_op()
        local_ref = numbers.local_ref(self.svc.device_id, seq, when)
        token = numbers.next_token(self.session, dept or "?", day.isoformat())
        payload = validate(P.VisitOpen, {
            "local_ref": local_ref, "patient": info.ref.wire(), "department": dept, "unit": unit_code,
            "visit_type": vtype, "visit_date": day, "token_no": token,
        })
        self.session.add(new_record(
            Visit,
            local_ref=local_ref, patient_local_ref=info.local_ref, patient_uhid=info.uhid,
            patient_name=info.name, department=dept, unit=unit_code, visit_type=vtype,
            visit_date=day.isoformat(), token_no=token, op_id=op_id, operator_id=self.operator_id,
            created_at=when.isoformat(),
        ))
        self._enqueue(seq, op_id, when, "visit.open", payload, info.depends_on, "visit", local_ref)
        self._made[local_ref] = _Made("visit", op_id, info.local_ref, info.uhid)
        return Saved("visit", local_ref, op_id, seq, {
            "token_no": token, "department": dept, "unit": unit_code, "visit_type": vtype,
            "visit_date": day.isoformat(),
        })

    def order_lab(
        self, patient: str | PatientInfo, visit: str, tests: Sequence[str], *,
        priority: str = "routine", ordered_by: str | None = None,
    ) -> Saved:
        info = self.patient(patient)
        codes = [c.strip().upper() for c in tests if c and c.strip()]
        if not codes:
            raise DomainError.field("tests", "choose at least one test", code="required")
        if self.catalog is not None:
            self.catalog.check_tests(codes)
        visit_ref, visit_deps, visit_local = self._visit_ref(visit, info)
        seq, op_id, when = self._begin_op()
        local_ref = numbers.local_ref(self.svc.device_id, seq, when)
        tubes = self._tubes(codes)
        samples: list[dict[str, Any]] = []
        for n, (sample_type, tube_codes) in enumerate(tubes.items(), start=1):
            tube_id = reserved.take(self.session, "sample", op_id) or numbers.local_sample_id(
                self.svc.device_id, seq, n if len(tubes) > 1 else None
            )
            samples.append({"sample_id": tube_id, "sample_type": sample_type, "tests": tube_codes})
        sample_id = samples[0]["sample_id"]
        payload = validate(P.LabOrder, {
            "local_ref": local_ref, "patient": info.ref.wire(), "visit": visit_ref.wire(),
            "tests": [{"code": c} for c in codes], "sample_id": sample_id, "samples": samples,
            "priority": priority, "ordered_by": ordered_by,
        })
        total = self.catalog.tests_total(codes) if self.catalog else 0
        self.session.add(new_record(
            LabOrder,
            local_ref=local_ref, patient_local_ref=info.local_ref, patient_uhid=info.uhid,
            patient_name=info.name, visit_local_ref=visit_local,
            visit_central_id=visit_ref.central_id, tests=outbox.dumps(codes), sample_id=sample_id,
            priority=priority, total_paise=total, op_id=op_id, operator_id=self.operator_id,
            created_at=when.isoformat(),
        ))
        deps = [*info.depends_on, *visit_deps]
        self._enqueue(seq, op_id, when, "lab.order", payload, deps, "lab_order", local_ref)
        self._made[local_ref] = _Made("lab_order", op_id, info.local_ref, info.uhid)
        return Saved("lab_order", local_ref, op_id, seq, {"sample_id": sample_id, "tests": codes,
                                                          "samples": samples, "total_paise": total})

    def _tubes(self, codes: Sequence[str]) -> dict[str, list[str]]:
        """Tests grouped by the master data's ``sample_type``: one tube (and one
        sample id, one label) each, in the order the tests were chosen."""
        tubes: dict[str, list[str]] = {}
        spelled: dict[str, str] = {}
        for c in codes:
            test = self.catalog.tests.get(c) if self.catalog is not None else None
            kind = ((test.sample_type if test is not None else None) or "").strip() or "sample"
            tubes.setdefault(spelled.setdefault(kind.lower(), kind), []).append(c)
        return tubes

    def record_payment(
        self, patient: str | PatientInfo, payment: PaymentInput, *,
        visit: str | None = None, lab_order: str | None = None, due_items: list[dict[str, Any]] | None = None,
        waiver: dict[str, str] | None = None,
    ) -> Saved:
        """Money taken. ``due_items`` (code, qty, amount_paise) is what the
        amount is for; when the clerk gives no amount, the amount is their sum.
        ``waiver`` (contract 1.2: reason, approved_by) goes with a waived fee the
        patient's category does not exempt."""
        info = self.patient(patient)
        items = payment.items or due_items
        if not items:
            raise DomainError.field("items", "say what the payment is for", code="required")
        amount = payment.amount_paise
        if amount is None:
            amount = sum(int(i["amount_paise"]) for i in items)
        deps = list(info.depends_on)
        visit_wire = lab_wire = None
        visit_local = lab_local = None
        if visit:
            vref, vdeps, visit_local = self._visit_ref(visit, info)
            visit_wire, deps = vref.wire(), deps + vdeps
        if lab_order:
            k = lab_order.strip().upper()
            lab_local = k
            lab_wire = {"local_ref": k}
            made = self._made.get(k)
            if made is not None and made.kind == "lab_order":
                deps.append(made.op_id)
            else:
                lab = self.session.exec(select(LabOrder).where(LabOrder.local_ref == k)).first()
                if lab is not None:
                    deps += self._unsynced(lab.op_id)
                else:
                    other = shared_records.get(self.session, k, "lab_order")
                    if other is not None:  # another counter's order (from the hub)
                        if other.patient_ref not in (info.local_ref, info.uhid):
                            raise DomainError.field(
                                "lab_order", f"lab order {other.local_ref} (counter {other.device_id}) is another "
                                "patient's", code="other_patient")
                        lab_local = other.local_ref
                        lab_wire = {"local_ref": other.local_ref}
        seq, op_id, when = self._begin_op()
        local_ref = numbers.local_ref(self.svc.device_id, seq, when)
        receipt = reserved.take(self.session, "receipt", op_id) or numbers.local_receipt_no(
            self.svc.device_id, seq
        )
        model = validate(P.PaymentRecord, {
            "local_ref": local_ref, "receipt_no": receipt, "patient": info.ref.wire(),
            "visit": visit_wire, "lab_order": lab_wire, "amount_paise": amount, "mode": payment.mode,
            "mode_ref": payment.mode_ref, "items": items, "waiver": waiver,
        })
        self.session.add(new_record(
            Payment,
            local_ref=local_ref, receipt_no=receipt, patient_local_ref=info.local_ref,
            patient_uhid=info.uhid, patient_name=info.name, visit_local_ref=visit_local,
            lab_order_local_ref=lab_local, amount_paise=model.amount_paise, mode=model.mode,
            mode_ref=model.mode_ref, items=outbox.dumps([i.model_dump() for i in model.items]),
            op_id=op_id, operator_id=self.operator_id, created_at=when.isoformat(),
        ))
        self._enqueue(seq, op_id, when, "payment.record", model, deps, "payment", local_ref)
        return Saved("payment", local_ref, op_id, seq, {
            "receipt_no": receipt, "amount_paise": model.amount_paise, "mode": model.mode,
            "mode_ref": model.mode_ref, "items": [i.model_dump() for i in model.items],
        })

    def void_payment(self, payment: str, reason: str, *, approved_by: str) -> Saved:
        """Void a payment (by receipt number or offline number); a supervisor approves."""
        if active_supervisor(self.session, approved_by) is None:
            raise DomainError.field("approved_by", "a supervisor must approve a void", code="not_supervisor")
        k = (payment or "").strip().upper()
        pay = self.session.exec(
            select(Payment).where((Payment.local_ref == k) | (Payment.receipt_no == k))
        ).first()
        if pay is None:
            raise DomainError.field("payment", f"no payment {payment} at this counter", code="not_found")
        if self.session.exec(select(PaymentVoid).where(PaymentVoid.payment_local_ref == pay.local_ref)).first():
            raise DomainError.field("payment", f"receipt {pay.receipt_no} is already voided", code="already_voided")
        model = validate(P.PaymentVoid, {"payment": {"local_ref": pay.local_ref}, "reason": reason})
        seq, op_id, when = self._begin_op()
        self.session.add(PaymentVoid(
            payment_local_ref=pay.local_ref, reason=model.reason, approved_by=approved_by,
            op_id=op_id, operator_id=self.operator_id, created_at=when.isoformat(),
        ))
        self._enqueue(seq, op_id, when, "payment.void", model, self._unsynced(pay.op_id), "payment_void",
                      pay.local_ref)
        audit.record(self.session, self.operator_id, "payment.void", pay.local_ref,
                     receipt_no=pay.receipt_no, approved_by=approved_by, reason=model.reason)
        return Saved("payment_void", pay.local_ref, op_id, seq, {
            "receipt_no": pay.receipt_no, "amount_paise": pay.amount_paise, "mode": pay.mode,
        })

    def update_patient(self, patient: str | PatientInfo, changes: dict[str, Any],
                       *, base_version: int | None = None) -> Saved:
        info = self.patient(patient)
        base = info.version if base_version is None else base_version
        model = validate(P.PatientUpdate, {"patient": info.ref.wire(), "base_version": base,
                                           "changes": changes})
        seq, op_id, when = self._begin_op()
        if info.local_ref:  # registered here (under this or an earlier device id)?
            rec = self.session.exec(select(Patient).where(Patient.local_ref == info.local_ref)).first()
            if rec is not None:
                for k, v in model.changes.items():
                    setattr(rec, k, v)
                self.session.add(rec)
        self._enqueue(seq, op_id, when, "patient.update", model, info.depends_on, "patient",
                      info.local_ref or info.uhid)
        return Saved("patient_update", info.local_ref or info.uhid or "", op_id, seq,
                     {"changes": model.changes, "base_version": base})



def _test_lines(cat: Catalog | None, codes: Sequence[str]) -> list[dict[str, Any]]:
    """The ordered tests as the slip and the payment see them (name, sample type, price)."""
    def line(c: str) -> dict[str, Any]:
        t = cat.tests.get(c) if cat else None
        return {"code": c, "name": t.name if t else c, "sample_type": t.sample_type if t else None,
                "price_paise": t.price_paise if t else 0}
    return [line(c) for c in codes]

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
            row = s.get(MasterDataCache, 1)
            if row is None:
                return None
            if self._catalog is None or row.version != self._catalog_version:
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
                    source: str = "counter", origin: dict[str, Any] | None = None) -> Iterator[Tx]:
        with self.store.write() as session:
            hold = meta.get(session, meta.NEEDS_SEQ_CHECK)
            if hold:
                raise DomainError(
                    f"this counter was restored from a backup and must check its numbers with central "
                    f"before taking new work ({hold}); ask a supervisor", code="not_ready")
            from opd_fallback.application import clock  # a PC clock far off the hub's or central's

            clock.check_before_save(session)
            yield Tx(self, session, operator_id, recorded_at=recorded_at, source=source, origin=origin)

    def _fee_items(self, tx: Tx, visit_type: str, category: str, payment: PaymentInput) -> list[dict[str, Any]]:
        quote = tx.catalog.opd_fee(visit_type, category) if tx.catalog else None
        if quote is None:
            if payment.amount_paise is None and payment.mode != "waived":
                # without a price list nobody knows the fee: never record a silent ₹0 cash payment
                raise DomainError.field(
                    "amount_paise", "enter the fee: this counter has no price list yet", code="fee_unknown")
            amount = payment.amount_paise or 0
            return [{"code": "OPD-NEW" if visit_type == "new" else "OPD-REVISIT", "qty": 1, "amount_paise": amount}]
        amount = quote.due_paise if payment.amount_paise is None else payment.amount_paise
        return [{"code": quote.code, "qty": 1, "amount_paise": amount}]

    def _pay(self, tx: Tx, info: PatientInfo, payment: PaymentInput, category: str,
             items: list[dict[str, Any]], *, visit: str | None = None, lab_order: str | None = None) -> Saved:
        """Record a counter payment. A waiver the category's rules do not grant
        (master data exemptions) needs a supervisor and a reason; it is written
        to the audit log and nothing is collected (amount 0)."""
        if payment.mode != "waived":
            return tx.record_payment(info, payment, visit=visit, lab_order=lab_order, due_items=items)
        granted = all(_is_exempt(tx.catalog, category, str(i["code"])) for i in items)
        list_paise = sum(int(i["amount_paise"]) for i in items)
        zero = [{**i, "amount_paise": 0} for i in items]
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
        self, operator_id: str, patient: dict[str, Any], *, department: str, unit: str | None = None,
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
                items = self._fee_items(tx, "new", category, payment)
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
                items = self._fee_items(tx, "revisit", category, payment)
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
            lines = _test_lines(cat, codes)
            pay = None
            if payment is not None:
                due = [{"code": ln["code"], "qty": 1, "amount_paise": ln["price_paise"]} for ln in lines]
                if payment.amount_paise is not None and payment.items is None and \
                        payment.amount_paise != sum(d["amount_paise"] for d in due):
                    raise DomainError.field(
                        "amount_paise", "the amount must equal the tests' total from the price list",
                        code="amount_not_total")
                pay = self._pay(tx, info, payment, tx.category_of(info), due, visit=visit,
                                lab_order=order.local_ref)
            return LabResult(order, pay, info, lines)

    def pay_lab_order(self, operator_id: str, lab_order: str, payment: PaymentInput) -> LabResult:
        """Take payment for a lab order, this counter's or another counter's of the
        LAN (pulled from the hub): the patient, visit and tests come from the order.
        The billing desk's payment: cash, UPI, card, or a waiver (a supervisor's
        approval when the category does not grant it, as at registration). An order
        already paid anywhere on the LAN is refused (never taken twice)."""
        from opd_fallback.application.billing import order_settled

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
            paid = order_settled(tx.session, order_ref)
            if paid:
                where = f" at {paid[0].device_id}" if paid[0].device_id else ""
                raise DomainError.field(
                    "lab_order", f"lab order {order_ref} is already paid (receipt {paid[0].receipt_no}{where}); "
                    "nothing is due: reprint that receipt if the patient lost it", code="already_paid")
            info = tx.patient(patient_key)
            cat = tx.catalog
            lines = _test_lines(cat, codes)
            due = [{"code": ln["code"], "qty": 1, "amount_paise": ln["price_paise"]} for ln in lines]
            if payment.amount_paise is not None and payment.items is None and payment.mode != "waived" and \
                    payment.amount_paise != sum(d["amount_paise"] for d in due):
                raise DomainError.field(
                    "amount_paise", "the amount must equal the tests' total from the price list",
                    code="amount_not_total")
            pay = self._pay(tx, info, payment, tx.category_of(info), due, visit=visit_key, lab_order=order_ref)
            order = Saved("lab_order", order_ref, order_op, 0, {"tests": codes})
            return LabResult(order, pay, info, lines)

    def void(self, operator_id: str, payment: str, reason: str, *, approved_by: str) -> Saved:
        with self.transaction(operator_id) as tx:
            return tx.void_payment(payment, reason, approved_by=approved_by)

    def update_patient(self, operator_id: str, patient: str, changes: dict[str, Any],
                       *, base_version: int | None = None) -> Saved:
        with self.transaction(operator_id) as tx:
            return tx.update_patient(patient, changes, base_version=base_version)

    # --- reading -------------------------------------------------------------------
    def search_patients(self, query: str, *, limit: int = 20) -> list[PatientHit]:
        with self.store.read() as s:
            return find_patients(s, query, limit=limit)

    def cash_summary(self, operator_id: str, day: date | None = None) -> CashSummary:
        d = (day or now_ist().date()).isoformat()
        with self.store.read() as s:
            return day_totals(s, d, operator_id)

    def queue(self, states: Sequence[str] | None = None, *, offset: int = 0, limit: int = 50) -> list[Op]:
        with self.store.read() as s:
            return list(outbox.list_ops(s, states=states, offset=offset, limit=limit))


def day_totals(session: Session, day: str, operator_id: str | None = None) -> CashSummary:
    """Payments of ``day`` (YYYY-MM-DD, IST) by mode, for one operator or all, with
    their voids; what review cancelled is counted apart (see ``CashSummary``)."""
    return totals_for_day(lambda sql, params: session.execute(text(sql), params).all(), day, operator_id)

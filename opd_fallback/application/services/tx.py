"""One open write transaction at the counter: each method saves a record and its
outbox op (``CounterService.transaction`` opens it; a flow chains methods inside
one). The clock is read through ``domain.clock`` at save time (tests fix it there).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from typing import TYPE_CHECKING, cast

from sqlalchemy import event
from sqlmodel import Session, SQLModel, select

from opd_fallback.application.services.records import (
    _LOCAL_REF_PLACEHOLDER,
    PatientInfo,
    PaymentInput,
    Saved,
    _Made,
    _origin,
)
from opd_fallback.domain import clock as domain_clock
from opd_fallback.domain import payloads as P
from opd_fallback.domain.errors import DomainError, validate
from opd_fallback.store import audit, numbers, outbox, reserved
from opd_fallback.store import shared as shared_records
from opd_fallback.store.engine import driver_execute
from opd_fallback.store.operators import active_supervisor
from opd_fallback.store.patient_index import uhid_for_local_ref
from opd_fallback.store.records import insert_rows, new_record, record_values
from opd_fallback.store.tables import (
    IndexedPatient,
    LabOrder,
    Op,
    Patient,
    Payment,
    PaymentVoid,
    Visit,
)

if TYPE_CHECKING:
    from opd_fallback.application.billing import PayLine, Sample
    from opd_fallback.application.services.counter import CounterService


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
        origin: Mapping[str, object] | None = None,
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
        self._added: list[object] = []  # records added to the session, in order (for savepoint)
        self._rows: list[tuple[type[SQLModel], dict[str, object]]] | None = None  # see write_at_commit
        self._flushes = 0
        self._savepoints = 0
        self._used_up: set[str] = set()  # kinds of reserved central id found none left of (none come back)
        event.listen(session, "transient_to_pending", lambda _s, obj: self._added.append(obj))
        event.listen(session, "after_flush", lambda _s, _ctx: self._count_flush())

    def _count_flush(self) -> None:
        self._flushes += 1

    def write_at_commit(self) -> None:
        """From now on new records are kept as their column values and written at
        commit, one ``executemany`` a table (``records.insert_rows``), not as objects
        through the session's unit of work: for a back-entry batch of many rows.
        The values are the ones ``_put`` would give the session; a savepoint undone
        drops its rows. As inside a savepoint, a query does not see them before the
        commit: a flow finds what it made through ``_made``."""
        if self._rows is None:
            self._rows = []
            event.listen(self.session, "before_commit", lambda _s: self._write_rows())

    def _write_rows(self) -> None:
        rows, self._rows = self._rows or [], []
        insert_rows(self.session, rows)

    def _put(self, cls: type[SQLModel], **values: object) -> dict[str, object]:
        """A new record of ``cls`` in this transaction (its column values returned)."""
        if self._rows is None:
            rec = new_record(cls, **values)
            self.session.add(rec)
            return rec.__dict__
        full = record_values(cls, **values)
        self._rows.append((cls, full))
        return full

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A part of the transaction undone alone if it raises (the exception goes
        on to the caller), for many small units in one transaction (the CSV import).

        Inside it nothing is flushed: what it adds is written with the rest of the
        transaction at commit, many rows at a time, and is dropped if the part is
        undone. The steps of a flow find what this transaction made through
        ``_made``, never by a query that would miss an unflushed record."""
        made, mark, flushes, used_up = dict(self._made), len(self._added), self._flushes, set(self._used_up)
        rows = len(self._rows) if self._rows is not None else 0
        self._savepoints += 1
        name = f"tx_part_{self._savepoints}"
        def sql(statement: str) -> None:  # straight to the driver, in the session's transaction (twice a row)
            driver_execute(self.session, statement, ())

        sql(f"SAVEPOINT {name}")
        try:
            with self.session.no_autoflush:
                yield
        except BaseException:
            sql(f"ROLLBACK TO {name}")
            sql(f"RELEASE {name}")
            for obj in self._added[mark:]:
                if obj in self.session:
                    self.session.expunge(obj)
            del self._added[mark:]
            if self._rows is not None:
                del self._rows[rows:]
            self._made, self._used_up = made, used_up  # an id the part took is free again
            if self._flushes != flushes:
                # a flush inside the part wrote earlier parts' records that the
                # rollback just undid: only undoing the whole transaction is safe
                raise RuntimeError("a flush inside a savepoint; the whole transaction is undone") from None
            raise
        sql(f"RELEASE {name}")

    @contextmanager
    def from_paper(self, origin: Mapping[str, object] | None) -> Iterator[None]:
        """The ops made inside carry ``origin`` (one slip of a back-entry file,
        within the import's one transaction); the transaction's own afterwards."""
        before, self.origin = self.origin, _origin(origin)
        try:
            yield
        finally:
            self.origin = before

    # --- helpers -------------------------------------------------------------
    def _when(self) -> datetime:
        return self.recorded_at or domain_clock.now_ist()

    def _begin_op(self) -> tuple[int, str, datetime]:
        return numbers.next_seq(self.session), outbox.new_op_id(), self._when()

    def _enqueue(
        self, seq: int, op_id: str, when: datetime, kind: str, payload: P.Model,
        depends_on: Sequence[str], record_kind: str, record_ref: str | None,
    ) -> None:
        self._put(Op, **outbox.op_values(
            seq=seq, op_id=op_id, kind=kind, device_id=self.svc.device_id,
            operator_id=self.operator_id, payload=payload, depends_on=depends_on,
            recorded_at=when, record_kind=record_kind, record_ref=record_ref, source=self.source,
            origin=self.origin,
        ))

    def _reserved(self, kind: str, op_id: str) -> str | None:
        """The next reserved central id of ``kind`` for ``op_id``, or None; once none is
        left, not asked again in this transaction (nothing in it reserves more)."""
        if kind in self._used_up:
            return None
        value = reserved.take(self.session, kind, op_id)
        if value is None:
            self._used_up.add(kind)
        return value

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
                    "visit", f"visit {v.local_ref} is another patient's, not this patient's", code="other_patient")
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
    def register_patient(self, fields: Mapping[str, object]) -> Saved:
        """A new patient; takes a reserved central uhid when the counter holds one."""
        data = {k: v for k, v in fields.items() if k not in ("local_ref", "uhid")}
        validate(P.PatientRegister, {**data, "local_ref": _LOCAL_REF_PLACEHOLDER})
        seq, op_id, when = self._begin_op()
        local_ref = numbers.local_ref(self.svc.device_id, seq, when)
        uhid = self._reserved("uhid", op_id)
        payload = validate(P.PatientRegister, {**data, "local_ref": local_ref, "uhid": uhid})
        body = payload.model_dump(mode="json")
        rec = self._put(
            Patient,
            **{k: body[k] for k in Patient.model_fields if k in body and k not in ("id",)},
            op_id=op_id, operator_id=self.operator_id, created_at=when.isoformat(),
        )
        self._enqueue(seq, op_id, when, "patient.register", payload, [], "patient", local_ref)
        info = PatientInfo(ref=P.Ref.local(local_ref), name=payload.name, local_ref=local_ref, uhid=uhid,
                           depends_on=(op_id,), sex=payload.sex, age_years=payload.age_years,
                           version=cast(int, rec["version"]))
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
        self._put(
            Visit,
            local_ref=local_ref, patient_local_ref=info.local_ref, patient_uhid=info.uhid,
            patient_name=info.name, department=dept, unit=unit_code, visit_type=vtype,
            visit_date=day.isoformat(), token_no=token, op_id=op_id, operator_id=self.operator_id,
            created_at=when.isoformat(),
        )
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
        samples: list[Sample] = []
        for n, (sample_type, tube_codes) in enumerate(tubes.items(), start=1):
            tube_id = self._reserved("sample", op_id) or numbers.local_sample_id(
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
        self._put(
            LabOrder,
            local_ref=local_ref, patient_local_ref=info.local_ref, patient_uhid=info.uhid,
            patient_name=info.name, visit_local_ref=visit_local,
            visit_central_id=visit_ref.central_id, tests=outbox.dumps(codes), sample_id=sample_id,
            priority=priority, total_paise=total, op_id=op_id, operator_id=self.operator_id,
            created_at=when.isoformat(),
        )
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
        visit: str | None = None, lab_order: str | None = None, due_items: list[PayLine] | None = None,
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
        receipt = self._reserved("receipt", op_id) or numbers.local_receipt_no(
            self.svc.device_id, seq
        )
        model = validate(P.PaymentRecord, {
            "local_ref": local_ref, "receipt_no": receipt, "patient": info.ref.wire(),
            "visit": visit_wire, "lab_order": lab_wire, "amount_paise": amount, "mode": payment.mode,
            "mode_ref": payment.mode_ref, "items": items, "waiver": waiver,
        })
        self._put(
            Payment,
            local_ref=local_ref, receipt_no=receipt, patient_local_ref=info.local_ref,
            patient_uhid=info.uhid, patient_name=info.name, visit_local_ref=visit_local,
            lab_order_local_ref=lab_local, amount_paise=model.amount_paise, mode=model.mode,
            mode_ref=model.mode_ref, items=outbox.dumps([i.model_dump() for i in model.items]),
            op_id=op_id, operator_id=self.operator_id, created_at=when.isoformat(),
        )
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

    def update_patient(self, patient: str | PatientInfo, changes: Mapping[str, object],
                       *, base_version: int | None = None) -> Saved:
        info = self.patient(patient)
        base = info.version if base_version is None else base_version
        model = validate(P.PatientUpdate, {"patient": info.ref.wire(), "base_version": base,
                                           "changes": changes})
        seq, op_id, when = self._begin_op()
        rec = None if not info.local_ref else self.session.exec(  # registered here (or under an earlier id)?
            select(Patient).where(Patient.local_ref == info.local_ref)).first()
        for k, v in model.changes.items() if rec is not None else ():
            setattr(rec, k, v)
        if rec is None:  # another counter's patient (from the hub): its LAN record shows this edit too
            shared_records.note_own_edit(self.session, info.local_ref or info.uhid, model.changes, when, op_id)
        self._enqueue(seq, op_id, when, "patient.update", model, info.depends_on, "patient",
                      info.local_ref or info.uhid)
        return Saved("patient_update", info.local_ref or info.uhid or "", op_id, seq,
                     {"changes": model.changes, "base_version": base})



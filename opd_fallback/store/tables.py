"""SQLModel tables of the counter database.

Table models are storage, not wire models: what travels is in
:mod:`opd_fallback.domain.contract` / :mod:`opd_fallback.domain.payloads`. JSON columns are
TEXT holding compact JSON so an op's payload is stored byte-for-byte as sent.
Timestamps are RFC 3339 strings with the +05:30 offset.

Decided: ``visit``, ``lab_order`` and ``payment`` keep ``patient_name``, a copy
of the patient's name taken when the record was made, and it is never updated:
an edit of the patient (``patient.update`` here, another counter's from the LAN
in store/shared.py, a correction in review) changes the ``patient`` row (or the
LAN's ``shared_record``) alone, in its one transaction with its op. Whatever
shows a patient's name reads it *now* from the patient's row
(``printouts.Printouts._person`` for slips, receipts and labels and their
reprints, ``samples.person_of`` for the collection and billing desks and the
void screen); the copy is only the last fallback when the patient is known
nowhere here (central's index lacks her too). Not rewriting the copies keeps a
payment a fact never updated, adds no write to the LAN's apply path or to the
edit's transaction, and changes no wire op (the copy never travels).
"""

from __future__ import annotations

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel


class Patient(SQLModel, table=True):
    """A patient registered at this counter (new registrations only)."""

    __tablename__ = "patient"

    id: int | None = Field(default=None, primary_key=True)
    local_ref: str = Field(unique=True)
    uhid: str | None = Field(default=None, index=True)
    name: str
    name_local: str | None = None
    sex: str
    age_years: int | None = None
    age_months: int | None = None
    age_days: int | None = None
    birth_date: str | None = None
    guardian_relation: str | None = None
    guardian_name: str | None = None
    mobile: str | None = Field(default=None, index=True)
    abha_number: str | None = None
    address_line: str | None = None
    district: str | None = None
    state: str | None = None
    pin: str | None = None
    category: str = "general"
    version: int = 0
    op_id: str = Field(index=True)
    operator_id: str
    created_at: str


class Visit(SQLModel, table=True):
    __tablename__ = "visit"

    id: int | None = Field(default=None, primary_key=True)
    local_ref: str = Field(unique=True)
    patient_local_ref: str | None = Field(default=None, index=True)
    patient_uhid: str | None = Field(default=None, index=True)
    patient_name: str
    department: str
    unit: str | None = None
    visit_type: str
    visit_date: str = Field(index=True)
    token_no: int
    central_id: str | None = None
    op_id: str = Field(index=True)
    operator_id: str
    created_at: str


class LabOrder(SQLModel, table=True):
    __tablename__ = "lab_order"

    id: int | None = Field(default=None, primary_key=True)
    local_ref: str = Field(unique=True)
    patient_local_ref: str | None = Field(default=None, index=True)
    patient_uhid: str | None = Field(default=None, index=True)
    patient_name: str
    visit_local_ref: str | None = None
    visit_central_id: str | None = None
    tests: str  # JSON list of test codes
    sample_id: str | None = Field(default=None, index=True)
    priority: str = "routine"
    total_paise: int = 0
    central_id: str | None = None
    accession: str | None = None
    op_id: str = Field(index=True)
    operator_id: str
    created_at: str


class Payment(SQLModel, table=True):
    """Money taken (or waived). Never updated except to store the central
    receipt id and warnings once synced; a mistake is a PaymentVoid."""

    __tablename__ = "payment"

    id: int | None = Field(default=None, primary_key=True)
    local_ref: str = Field(unique=True)
    receipt_no: str = Field(unique=True)
    patient_local_ref: str | None = Field(default=None, index=True)
    patient_uhid: str | None = Field(default=None, index=True)
    patient_name: str
    visit_local_ref: str | None = None
    lab_order_local_ref: str | None = None
    amount_paise: int
    mode: str
    mode_ref: str | None = None
    items: str  # JSON list of {code, qty, amount_paise}
    central_id: str | None = None
    warnings: str | None = None  # JSON list from the server
    op_id: str = Field(index=True)
    operator_id: str
    created_at: str = Field(index=True)


class PaymentVoid(SQLModel, table=True):
    __tablename__ = "payment_void"

    id: int | None = Field(default=None, primary_key=True)
    payment_local_ref: str = Field(unique=True)
    reason: str
    approved_by: str
    op_id: str = Field(index=True)
    operator_id: str
    created_at: str


class SampleEvent(SQLModel, table=True):
    """A tube drawn or refused at a collection desk (``lab.sample_collect``).

    ``source`` 'here': recorded at this counter, written with its outbox op in
    one transaction. ``source`` 'hub': another counter's event pulled from the
    LAN hub (never in this outbox), kept so every desk sees a tube's state.
    Never updated but for the central order id learned at sync; a tube's
    state is its event with the latest ``collected_at`` (``collected_utc``
    sorts them, the op_id breaks a tie), as central decides it."""

    __tablename__ = "sample_event"
    __table_args__ = (Index("ix_sample_event_tube", "sample_id", "collected_utc"),)

    id: int | None = Field(default=None, primary_key=True)
    op_id: str = Field(unique=True)
    sample_id: str
    order_ref: str | None = None  # the lab order's offline number (local_ref)
    status: str  # collected | rejected
    reason: str | None = None
    note: str | None = None
    collected_at: str
    collected_utc: str
    device_id: str
    operator_id: str
    source: str = "here"  # here | hub
    order_central_id: str | None = None  # central's order_id, once the op is applied
    created_at: str


class Op(SQLModel, table=True):
    """The outbox: the contract's op envelope plus local sync state. Never deleted."""

    __tablename__ = "op"
    __table_args__ = (
        Index("ix_op_state_seq", "state", "seq"),
        Index("ix_op_device_recorded", "device_id", "recorded_at"),  # reconcile a day (schema 2)
    )

    seq: int = Field(primary_key=True)
    op_id: str = Field(unique=True)
    kind: str = Field(index=True)
    device_id: str
    operator_id: str
    recorded_at: str
    depends_on: str = "[]"  # JSON list of op_ids
    payload: str  # compact JSON, exactly as sent
    resolution: str | None = None  # JSON, set by review before a resubmission
    state: str = "pending"  # pending | synced | rejected | conflict | cancelled
    attempts: int = 0
    last_status: str | None = None  # last contract status seen
    last_error: str | None = None  # JSON error object from the server
    result: str | None = None  # JSON result of applied / duplicate
    wait_reason: str | None = None  # why a pending op is still waiting, in words
    first_deferred_at: str | None = None
    synced_at: str | None = None
    updated_at: str
    record_kind: str | None = None  # patient | visit | lab_order | payment | payment_void
    record_ref: str | None = None  # that record's local_ref
    supersedes: str | None = None  # op_id this op corrects (review)
    source: str = "counter"  # counter | backentry
    origin: str | None = None  # JSON, contract 1.2: where a back-entered op was written on paper


class Counter(SQLModel, table=True):
    """Named monotonic counters (seq, tokens per department and day)."""

    __tablename__ = "counter"

    name: str = Field(primary_key=True)
    value: int = 0


class IdReservation(SQLModel, table=True):
    """Central ids reserved for this device (uhid, receipt, sample)."""

    __tablename__ = "id_reservation"
    __table_args__ = (Index("ix_idres_kind_state", "kind", "state", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str
    value: str = Field(unique=True)
    state: str = "free"  # free | used | abandoned
    reserved_at: str
    used_at: str | None = None
    used_by_op: str | None = None


class MasterDataCache(SQLModel, table=True):
    """The last master data fetched from central (one row)."""

    __tablename__ = "master_data"

    id: int = Field(default=1, primary_key=True)
    version: str
    etag: str | None = None
    body: str  # JSON as served
    fetched_at: str


class Operator(SQLModel, table=True):
    __tablename__ = "operator"

    id: str = Field(primary_key=True)
    name: str
    pin_hash: str
    role: str = "operator"  # operator | supervisor
    active: bool = True
    created_at: str


class AuditEntry(SQLModel, table=True):
    """Append-only (triggers refuse UPDATE and DELETE)."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: str = Field(index=True)
    actor: str
    action: str = Field(index=True)
    subject: str | None = Field(default=None, index=True)
    detail: str = "{}"  # JSON


class IndexedPatient(SQLModel, table=True):
    """Patients known centrally, for lookup while offline (from /patients/changes)."""

    __tablename__ = "patient_index"

    id: int | None = Field(default=None, primary_key=True)
    uhid: str = Field(unique=True)
    name: str
    sex: str | None = None
    age_years: int | None = None
    guardian_name: str | None = None
    mobile: str | None = Field(default=None, index=True)
    district: str | None = None
    version: int = 1
    updated_at: str | None = None


class IndexedPatientRef(SQLModel, table=True):
    """Every offline number (local_ref) central maps to an indexed patient
    (``local_refs`` of /patients/changes, contract 1.1), so a slip printed at
    another counter is found while offline."""

    __tablename__ = "patient_index_ref"

    local_ref: str = Field(primary_key=True)
    uhid: str = Field(index=True)


class Meta(SQLModel, table=True):
    """Small key/value facts: index cursor, last sync attempt, device floor."""

    __tablename__ = "meta"

    key: str = Field(primary_key=True)
    value: str


class Lease(SQLModel, table=True):
    """Who may sync this database right now (one sync at a time)."""

    __tablename__ = "lease"

    name: str = Field(primary_key=True)
    holder: str
    pid: int
    host: str
    acquired_at: str
    expires_at: float


class BackEntrySlip(SQLModel, table=True):
    """A paper slip already imported (device, visit date, slip number), with what
    it said, so a different slip under the same number is never skipped in silence."""

    __tablename__ = "backentry_slip"
    __table_args__ = (
        UniqueConstraint("device_id", "visit_date", "slip_no"),
        Index("ix_backentry_slip_key", "device_id", "visit_date", "slip_key"),  # schema 5
    )

    id: int | None = Field(default=None, primary_key=True)
    device_id: str
    visit_date: str
    slip_no: str  # as written in the file
    imported_at: str
    op_ids: str  # JSON list
    # schema 5: the slip number compared ('00042' and ' 42' are 42), the row's
    # content in normal form (JSON; None for slips imported before schema 5),
    # where it came from, who wrote the paper slip and who imported it
    slip_key: str = ""
    content: str | None = None
    source_file: str | None = None
    source_line: int | None = None
    written_by: str | None = None
    imported_by: str | None = None


class SharedRecord(SQLModel, table=True):
    """A record of another counter of this hospital, pulled from the LAN hub.

    Never this counter's own work and never in the outbox: the counter that
    made it syncs it to central. Kept so this counter can find the patient,
    order tests on that visit and bill that order (its ops then carry the
    other counter's ``local_ref``)."""

    __tablename__ = "shared_record"

    id: int | None = Field(default=None, primary_key=True)
    local_ref: str = Field(unique=True)
    kind: str = Field(index=True)  # patient | visit | lab_order | payment
    device_id: str
    op_id: str
    recorded_at: str
    patient_ref: str | None = Field(default=None, index=True)
    visit_ref: str | None = None
    lab_order_ref: str | None = None
    name: str | None = None
    mobile: str | None = Field(default=None, index=True)
    uhid: str | None = None
    central_id: str | None = Field(default=None, index=True)
    voided: bool = False
    detail: str = "{}"  # JSON (see domain/shared.py)
    hub_seq: int
    pulled_at: str

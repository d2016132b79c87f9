"""The reference central server's own tables (SQLModel declarations).

The tables are declared here once; Alembic's migrations
(``central/migrations/``) create them on SQLite and PostgreSQL alike, and a
test checks the migrated schema against these declarations. The hot apply path
then talks to the database with plain prepared statements (see
:mod:`opd_fallback.serverdb`) because per-op ORM objects would cost more than
the whole rest of the apply.

Numbers that can pass 2**31 (seq, money, change cursors) are BIGINT: SQLite
does not care, PostgreSQL's INTEGER would overflow.

On PostgreSQL the id series come from the sequences declared at the end
(several workers take numbers at once, never the same one); on SQLite, whose
writers take turns, from the ``counter`` table, which has no gaps.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Index, MetaData, Sequence
from sqlmodel import Field, SQLModel


class CentralMeta(SQLModel):
    """Base class whose metadata holds only the central tables."""


# A separate MetaData so the counter store's tables never mix with ours.
CentralMeta.metadata = MetaData()


class Device(CentralMeta, table=True):
    """A counter allowed to sync; only the sha256 of its token is kept."""

    __tablename__ = "device"
    device_id: str = Field(primary_key=True)
    token_hash: str = Field(index=True, unique=True)
    created_at: str
    max_seq: int = Field(default=0, sa_type=BigInteger)
    ops_applied: int = 0
    last_recorded_at: str | None = None


class Setting(CentralMeta, table=True):
    """Server switches that a CLI in another process may flip (maintenance)."""

    __tablename__ = "setting"
    key: str = Field(primary_key=True)
    value: str


class Counter(CentralMeta, table=True):
    """Next number of each central id series (uhid, visit, order, accession, receipt, sample)."""

    __tablename__ = "counter"
    name: str = Field(primary_key=True)
    value: int = Field(default=0, sa_type=BigInteger)


class OpOutcome(CentralMeta, table=True):
    """The remembered final outcome of an op (applied or rejected), by op_id."""

    __tablename__ = "op_outcome"
    __table_args__ = (Index("ix_outcome_recon", "device_id", "local_date", "status", "op_id"),)
    op_id: str = Field(primary_key=True)
    kind: str
    device_id: str
    payload_hash: str
    status: str
    result: str | None = None  # JSON
    error: str | None = None  # JSON
    recorded_at: str
    local_date: str  # Asia/Kolkata date of recorded_at, for reconciliation
    seq: int = Field(sa_type=BigInteger)
    applied_at: str
    origin: str | None = None  # JSON, contract 1.2: where a back-entered op was written on paper


class RefMap(CentralMeta, table=True):
    """Hospital-wide map from a counter's local_ref to the central id it became."""

    __tablename__ = "ref_map"
    # /patients/changes lists the local_refs of each patient it returns
    __table_args__ = (Index("ix_ref_map_central", "central_id"),)
    local_ref: str = Field(primary_key=True)
    kind: str  # patient | visit | lab_order | payment
    central_id: str
    op_id: str


class Patient(CentralMeta, table=True):
    __tablename__ = "patient"
    __table_args__ = (
        Index("ix_patient_mobile", "mobile"),
        Index("ix_patient_abha", "abha_number"),
        Index("ix_patient_change", "change_seq", unique=True),
    )
    uhid: str = Field(primary_key=True)
    name: str
    name_local: str | None = None
    sex: str
    age_years: int | None = None
    age_months: int | None = None
    age_days: int | None = None
    birth_date: str | None = None
    guardian_relation: str | None = None
    guardian_name: str | None = None
    mobile: str | None = None
    abha_number: str | None = None
    address_line: str | None = None
    district: str | None = None
    state: str | None = None
    pin: str | None = None
    category: str = "general"
    version: int = 1
    change_seq: int = Field(sa_type=BigInteger)
    created_at: str
    updated_at: str
    device_id: str
    op_id: str


class PatientVersion(CentralMeta, table=True):
    """Every version of every patient record, for audit and merge review."""

    __tablename__ = "patient_version"
    uhid: str = Field(primary_key=True)
    version: int = Field(primary_key=True)
    record: str  # JSON
    op_id: str
    changed_at: str


class Visit(CentralMeta, table=True):
    __tablename__ = "visit"
    visit_id: str = Field(primary_key=True)
    uhid: str = Field(index=True)
    department: str
    unit: str | None = None
    visit_type: str
    visit_date: str
    token_no: int
    device_id: str
    op_id: str


class LabOrder(CentralMeta, table=True):
    __tablename__ = "lab_order"
    order_id: str = Field(primary_key=True)
    accession: str = Field(unique=True)
    uhid: str
    visit_id: str
    tests: str  # JSON list of codes
    sample_id: str | None = None
    priority: str
    ordered_by: str | None = None
    device_id: str
    op_id: str


class LabSample(CentralMeta, table=True):
    """One tube of a lab order (``samples``, contract 1.1). The sample id is the
    key: the id a lab scans names one tube only, whichever device sent it."""

    __tablename__ = "lab_sample"
    sample_id: str = Field(primary_key=True)
    order_id: str = Field(index=True)
    sample_type: str
    tests: str  # JSON list of codes
    op_id: str


class SampleEvent(CentralMeta, table=True):
    """One event at a collection desk (``lab.sample_collect``, contract 1.2): a
    tube drawn or refused. Never updated: a tube's state is its event with the
    latest ``collected_at`` (``collected_utc`` sorts them; the op_id, a ULID,
    breaks a tie), so events arriving in any order give the same state."""

    __tablename__ = "sample_event"
    __table_args__ = (Index("ix_sample_event_recon", "device_id", "local_date"),)
    op_id: str = Field(primary_key=True)
    sample_id: str = Field(index=True)
    order_id: str
    status: str  # collected | rejected
    collected_at: str  # as sent
    collected_utc: str  # the same instant in UTC, for ordering
    reason: str | None = None
    note: str | None = None
    device_id: str
    operator_id: str
    local_date: str  # Asia/Kolkata date of the op's recorded_at, for reconciliation


class Payment(CentralMeta, table=True):
    __tablename__ = "payment"
    __table_args__ = (Index("ix_payment_recon", "device_id", "local_date"),)
    receipt_id: str = Field(primary_key=True)
    receipt_no: str
    uhid: str
    visit_id: str | None = None
    order_id: str | None = None
    amount_paise: int = Field(sa_type=BigInteger)
    mode: str
    mode_ref: str | None = None
    items: str  # JSON
    warnings: str  # JSON
    voided: int = 0
    device_id: str
    local_date: str
    op_id: str
    waiver: str | None = None  # JSON, contract 1.2: who allowed a non-exempt fee to go unpaid, and why


class PaymentVoid(CentralMeta, table=True):
    __tablename__ = "payment_void"
    __table_args__ = (Index("ix_void_recon", "device_id", "local_date"),)
    receipt_id: str = Field(primary_key=True)
    reason: str
    amount_paise: int = Field(sa_type=BigInteger)
    device_id: str
    local_date: str
    op_id: str


class IssuedId(CentralMeta, table=True):
    """An id handed out in a block to one device (uhid, receipt or sample)."""

    __tablename__ = "issued_id"
    # contract 1.2: devices/me's reserved_used and GET /id-blocks/used read by device and kind
    __table_args__ = (Index("ix_issued_device_kind", "device_id", "kind", "id"),)
    id: str = Field(primary_key=True)
    kind: str
    device_id: str
    issued_at: str
    used_by_op: str | None = None


# PostgreSQL sequences behind each id series (see the module docstring); SQLite ignores them.
SERIES = ("uhid", "receipt", "sample", "visit", "lab_order", "change")
SEQUENCES = {name: Sequence(f"central_{name}_seq", metadata=CentralMeta.metadata) for name in SERIES}

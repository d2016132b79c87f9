"""Wire models of the central sync API, version 1.1 (docs/central-api.md).

The op envelope, batch results and the reading endpoints' bodies. Both the
sync client and the reference central server use these, so they cannot drift
apart; payload rules live in :mod:`opd_fallback.domain.payloads`.

:func:`canonical_payload` is the contract's payload equality for idempotency:
RFC 8785 canonical JSON (through the maintained ``rfc8785`` package, not our
own serialiser) after dropping null-valued keys, so an absent key equals null.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import rfc8785
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictInt

from opd_fallback.domain.payloads import OpKind

CONTRACT_VERSION = "1.1"
API_PREFIX = "/api/v1"
MAX_BATCH_OPS = 500
MAX_BATCH_BYTES = 1024 * 1024

OpStatus = Literal["applied", "duplicate", "rejected", "conflict", "deferred"]
FINAL_STATUSES = ("applied", "duplicate", "rejected")

# error.code values named by the contract
REJECT_CODES = (
    "validation_failed",
    "unknown_department",
    "unknown_test",
    "unknown_reference",
    "idempotency_mismatch",
    "device_mismatch",
    "reserved_id_not_owned",
    "void_target_missing",
)
CONFLICT_CODES = ("possible_duplicate", "stale_update")
DEFER_CODES = ("dependency_missing", "reference_pending")


class Wire(BaseModel):
    """Lenient about extra keys on what we read (a server may add fields)."""

    model_config = ConfigDict(extra="ignore")


class Resolution(Wire):
    action: Literal["link", "create_new", "apply"]
    uhid: str | None = None
    base_version: StrictInt | None = Field(default=None, ge=0)


class OpEnvelope(BaseModel):
    """One op as it travels. ``payload`` stays a dict here: it is validated per
    kind on its own so a malformed payload rejects only its op."""

    model_config = ConfigDict(extra="forbid")

    op_id: str = Field(min_length=1, max_length=64)
    kind: OpKind
    device_id: str = Field(min_length=1, max_length=32)
    operator_id: str = Field(min_length=1, max_length=64)
    seq: StrictInt = Field(ge=1)
    recorded_at: AwareDatetime
    depends_on: list[str] = Field(default_factory=list)
    payload: dict[str, Any]
    resolution: Resolution | None = None


class Candidate(Wire):
    uhid: str
    name: str
    sex: str | None = None
    age_years: int | None = None
    guardian_name: str | None = None
    mobile: str | None = None
    district: str | None = None


# What the contract lists for a possible-duplicate candidate, in its order.
CANDIDATE_FIELDS = ("uhid", "name", "sex", "age_years", "guardian_name", "mobile", "district")


class OpError(Wire):
    code: str
    message: str = ""
    fields: list[dict[str, Any]] | None = None
    candidates: list[Candidate] | None = None
    current: dict[str, Any] | None = None


class OpResult(Wire):
    op_id: str
    status: OpStatus
    result: dict[str, Any] | None = None
    error: OpError | None = None


class BatchRequest(BaseModel):
    ops: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_BATCH_OPS)


class BatchResponse(Wire):
    results: list[OpResult]


class Health(Wire):
    status: str
    server_time: datetime | None = None


class DeviceInfo(Wire):
    device_id: str
    max_seq: int
    ops_applied: int
    last_recorded_at: datetime | None = None


class Unit(Wire):
    code: str
    name: str


class Department(Wire):
    code: str
    name: str
    name_hi: str | None = None
    units: list[Unit] = Field(default_factory=list)


class Test(Wire):
    code: str
    name: str
    sample_type: str | None = None
    price_paise: int


class Fee(Wire):
    code: str
    name: str
    price_paise: int


class Exemption(Wire):
    """Contract 1.1: a patient category that pays nothing for the listed fee
    codes. Optional in master data; without it the counter has defaults
    (:data:`opd_fallback.domain.masterdata.DEFAULT_EXEMPTIONS`)."""

    category: str
    fee_codes: list[str] = Field(default_factory=list)


class MasterData(Wire):
    version: str
    departments: list[Department] = Field(default_factory=list)
    tests: list[Test] = Field(default_factory=list)
    fees: list[Fee] = Field(default_factory=list)
    exemptions: list[Exemption] | None = None


class PatientSummary(Candidate):
    """A patient in ``/patients/changes``: a candidate's fields and more."""

    version: int = 1
    updated_at: datetime | None = None
    # contract 1.1: every offline number (local_ref) mapped to this patient
    local_refs: list[str] = Field(default_factory=list)


class PatientChanges(Wire):
    patients: list[PatientSummary]
    next_cursor: str | None = None
    done: bool


class IdBlockRequest(BaseModel):
    kind: Literal["uhid", "receipt", "sample"]
    count: StrictInt = Field(ge=1, le=1000)


class IdBlock(Wire):
    kind: str
    ids: list[str]


class PaymentTotals(Wire):
    count: int
    total_paise: int
    by_mode: dict[str, int] = Field(default_factory=dict)


class VoidTotals(Wire):
    count: int
    total_paise: int


class SampleTotals(Wire):
    """Reconciliation ``samples`` (1.2): the day's collection-desk events of the device."""

    collected: int = 0
    rejected: int = 0


class Reconciliation(Wire):
    date: str
    device_id: str
    ops_applied: int
    by_kind: dict[str, int] = Field(default_factory=dict)
    payments: PaymentTotals
    voids: VoidTotals
    # 1.2; a 1.1 server sends none (then no tube was recorded there either)
    samples: SampleTotals = Field(default_factory=SampleTotals)
    op_ids_sha256: str


class SampleState(Wire):
    """``GET /samples/{sample_id}`` (1.2): one tube and its state."""

    sample_id: str
    order_id: str
    sample_type: str
    tests: list[str]
    status: Literal["ordered", "collected", "rejected"]
    collected_at: str | None = None


class ReconciliationOps(Wire):
    op_ids: list[str]
    next_cursor: str | None = None
    done: bool


def drop_nulls(value: Any) -> Any:
    """``value`` with every null-valued object key removed, at any depth
    (list items are kept as they are, nulls included)."""
    if isinstance(value, dict):
        return {k: drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_nulls(v) for v in value]
    return value


def canonical_payload(payload: Any) -> bytes:
    """The payload as RFC 8785 canonical JSON with an absent key equal to null:
    two payloads are the same for idempotency exactly when these bytes are.
    Raises ``rfc8785.CanonicalizationError`` (a ``ValueError``) for what JSON
    cannot carry between systems (an integer beyond 2**53, a lone surrogate)."""
    return rfc8785.dumps(drop_nulls(payload))


def op_ids_digest(op_ids: list[str] | set[str]) -> str:
    """SHA-256 of the op_ids, sorted, joined by newlines (the contract's digest)."""
    import hashlib

    return hashlib.sha256("\n".join(sorted(op_ids)).encode()).hexdigest()

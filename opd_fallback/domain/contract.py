"""Wire models of the central sync API, version 1.2 (docs/central-api.md).

The op envelope, batch results and the reading endpoints' bodies. Both the
sync client and the reference central server use these, so they cannot drift
apart; payload rules live in :mod:`opd_fallback.domain.payloads`.

:func:`canonical_payload` is the contract's payload equality for idempotency:
RFC 8785 canonical JSON (the maintained ``rfc8785`` package, through the fast
path of :mod:`opd_fallback.domain.canonical`, proven equal to it) after dropping null-valued keys, so an absent key equals null
(1.2: except inside ``patient.update``'s ``changes``, where null clears a
field). :func:`canonical_op` adds the envelope's ``origin`` (1.2), which is
compared with the payload.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictInt, field_validator

from opd_fallback.domain import canonical
from opd_fallback.domain.jsonio import JSONObjectField
from opd_fallback.domain.payloads import MAX_INT, OpKind, Origin

CONTRACT_VERSION = "1.2"
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
    "sample_id_reused",  # 1.2
    "unknown_sample",  # 1.2
)
CONFLICT_CODES = ("possible_duplicate", "stale_update")
DEFER_CODES = ("dependency_missing", "reference_pending")
# payment.record warnings (1.2 adds waiver_unapproved)
WARNING_CODES = ("amount_mismatch", "unknown_item", "waiver_unapproved")
# the kinds of record a local_ref names (GET /refs/{local_ref}, 1.2)
REF_KINDS = ("patient", "visit", "lab_order", "payment")
ID_KINDS = ("uhid", "receipt", "sample")


class Wire(BaseModel):
    """Lenient about extra keys on what we read (a server may add fields)."""

    model_config = ConfigDict(extra="ignore")


class Resolution(Wire):
    action: Literal["link", "create_new", "apply"]
    uhid: str | None = None
    base_version: StrictInt | None = Field(default=None, ge=0, le=MAX_INT)


class OpEnvelope(BaseModel):
    """One op as it travels. ``payload`` stays a dict here: it is validated per
    kind on its own so a malformed payload rejects only its op."""

    model_config = ConfigDict(extra="forbid")

    op_id: str = Field(min_length=1, max_length=64)
    kind: OpKind
    device_id: str = Field(min_length=1, max_length=32)
    operator_id: str = Field(min_length=1, max_length=64)
    seq: StrictInt = Field(ge=1, le=MAX_INT)
    recorded_at: AwareDatetime
    depends_on: list[str] = Field(default_factory=list)
    payload: JSONObjectField
    resolution: Resolution | None = None
    origin: Origin | None = None  # 1.2: where a back-entered op was written on paper

    @field_validator("depends_on", mode="before")
    @classmethod
    def _null_is_none(cls, v: object) -> object:
        return [] if v is None else v  # 1.2: a field without a value may be sent as null


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
    fields: list[JSONObjectField] | None = None
    candidates: list[Candidate] | None = None
    current: JSONObjectField | None = None
    # 1.2, on deferred: what the op waits for, {"op_id": ...} or {"local_ref": ...}
    waiting_for: dict[str, str] | None = None


class OpResult(Wire):
    op_id: str
    status: OpStatus
    result: JSONObjectField | None = None
    error: OpError | None = None


class BatchRequest(BaseModel):
    ops: list[JSONObjectField] = Field(min_length=1, max_length=MAX_BATCH_OPS)


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
    # 1.2: how many reserved ids of each kind applied ops of this device have used
    reserved_used: dict[str, int] | None = None


class UsedIds(Wire):
    """1.2 ``GET /id-blocks/used``: one page of the reserved ids of a kind that
    applied ops of the token's device have used."""

    kind: str
    ids: list[str]
    next_cursor: str | None = None
    done: bool


class RefInfo(Wire):
    """1.2 ``GET /refs/{local_ref}``: what a local_ref maps to."""

    local_ref: str
    kind: str
    central_id: str
    op_id: str


class SampleInfo(Wire):
    """1.2 ``GET /samples/{sample_id}``: one tube."""

    sample_id: str
    order_id: str
    sample_type: str | None = None
    tests: list[str] = Field(default_factory=list)
    status: str
    collected_at: datetime | None = None


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

    # 1.2: so a revisit slip of a patient registered elsewhere prints as registered
    name_local: str | None = None
    guardian_relation: str | None = None
    age_months: int | None = None
    age_days: int | None = None
    category: str | None = None
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
    samples: SampleTotals | None = None  # 1.2; a 1.1 server sends none (then no tube was recorded there)
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


def drop_nulls(value: object, *, keep_in: str | None = None) -> object:
    """``value`` with every null-valued object key removed, at any depth (list
    items are kept as they are, nulls included). The entries of an object under
    the key ``keep_in`` keep their nulls (1.2: ``changes``, where null clears)."""
    if isinstance(value, dict):
        return {k: (_keep_entries(v, keep_in) if k == keep_in else drop_nulls(v, keep_in=keep_in))
                for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_nulls(v, keep_in=keep_in) for v in value]
    return value


def _keep_entries(value: object, keep_in: str | None) -> object:
    if isinstance(value, dict):
        return {k: drop_nulls(v, keep_in=keep_in) for k, v in value.items()}
    return drop_nulls(value, keep_in=keep_in)


def canonical_payload(payload: object, kind: str | None = None) -> bytes:
    """The payload as RFC 8785 canonical JSON with an absent key equal to null:
    two payloads are the same for idempotency exactly when these bytes are.
    For a ``patient.update`` (1.2) a null inside ``changes`` is kept: it clears
    the field, so it differs from an absent key. Raises
    ``rfc8785.CanonicalizationError`` (a ``ValueError``) for what JSON cannot
    carry between systems (an integer beyond 2**53, a lone surrogate)."""
    keep = "changes" if kind == "patient.update" else None
    return canonical.dumps(drop_nulls(payload, keep_in=keep))


def canonical_op(payload: object, origin: object = None, kind: str | None = None) -> bytes:
    """What idempotency compares (1.2): the payload and, when the envelope carries
    one with a value, the ``origin``. An op without an origin compares exactly
    as under 1.1, so outcomes remembered then still match their resends."""
    body = drop_nulls(origin) if isinstance(origin, dict) else origin
    if not body:
        return canonical_payload(payload, kind)
    keep = "changes" if kind == "patient.update" else None
    return canonical.dumps({"origin": body, "payload": drop_nulls(payload, keep_in=keep)})


def big_int_path(value: object, path: str = "") -> str | None:
    """The dotted path of the first integer beyond 2**53-1 (either sign) in ``value``
    (1.2: such a value is ``validation_failed`` naming the field; it has no
    canonical form), or None. Negative numbers are left to each field's rule."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return None if -MAX_INT <= value <= MAX_INT else (path or "payload")
    if isinstance(value, dict):
        items: Iterable[tuple[object, object]] = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for k, v in items:
        found = big_int_path(v, f"{path}.{k}" if path else str(k))
        if found:
            return found
    return None


def op_ids_digest(op_ids: list[str] | set[str]) -> str:
    """SHA-256 of the op_ids, sorted, joined by newlines (the contract's digest)."""
    import hashlib

    return hashlib.sha256("\n".join(sorted(op_ids)).encode()).hexdigest()

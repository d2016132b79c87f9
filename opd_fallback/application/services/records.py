"""What the counter's services take and give back: the clerk's payment, a saved
record with its printed numbers, who a record is for, and a flow's result.
Plain dataclasses, no I/O; the transaction (``tx.py``) makes them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from opd_fallback.domain import payloads as P
from opd_fallback.domain.errors import validate

if TYPE_CHECKING:
    from opd_fallback.application.billing import PayLine, TestLine

_LOCAL_REF_PLACEHOLDER = "X-000000"


@dataclass
class PaymentInput:
    """What the clerk took. ``amount_paise`` None means 'the amount due'."""

    mode: str
    amount_paise: int | None = None
    mode_ref: str | None = None
    items: list[PayLine] | None = None
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
    tests: list[TestLine]


@dataclass(frozen=True)
class _Made:
    """A record made in the open transaction: its op is surely not synced yet."""

    kind: str
    op_id: str
    patient_local_ref: str | None = None
    patient_uhid: str | None = None
    info: PatientInfo | None = None


def _origin(origin: Mapping[str, object] | None) -> dict[str, str] | None:
    """An envelope's ``origin`` checked by the contract's model; None when no key has a value."""
    return None if not origin else validate(P.Origin, origin).wire()


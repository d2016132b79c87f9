"""What one batch keeps in memory before it is written, and the pure checks
run on the raw ops before an op is applied (the seq counted, the numbers a
batch will take, envelope values the database cannot store)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from opd_fallback.central.apply.common import ID_PATTERNS, PatientRow, _local_date
from opd_fallback.domain import registry
from opd_fallback.domain.contract import OpEnvelope
from opd_fallback.domain.payloads import MAX_INT


@dataclass(slots=True)
class _DeviceDelta:
    max_seq: int = 0
    applied: int = 0
    last: datetime | None = None


_MAX_SQL_INT = 2**63 - 1  # SQLite INTEGER and PostgreSQL BIGINT are signed 64-bit numbers

# op_id -> (kind, device_id, payload_hash, status, result_json, error_json)
Remembered = tuple[str, str, str, str, str | None, str | None]


@dataclass(slots=True)
class _BatchState:
    """What the ops of one batch see of each other before the batch is written."""

    # op_id -> (kind, device_id, payload_hash, status, result_json, error_json)
    outcomes: dict[str, Remembered] = field(default_factory=dict)
    # local_ref -> (kind, central_id, op_id), or None when known to be absent
    refs: dict[str, tuple[str, str, str] | None] = field(default_factory=dict)
    new_outcomes: list[tuple[object, ...]] = field(default_factory=list)
    new_refs: list[tuple[str, str, str, str]] = field(default_factory=list)
    new_versions: list[tuple[object, ...]] = field(default_factory=list)
    categories: dict[str, str] = field(default_factory=dict)  # uhid -> category
    changed: list[str] = field(default_factory=list)  # uhids written, for their change cursor
    # column (mobile / abha_number) -> value -> uhid -> the fields dedupe compares
    patients_by: dict[str, dict[str, dict[str, PatientRow]]] = field(
        default_factory=lambda: {"mobile": {}, "abha_number": {}})
    visit_owner: dict[str, str] = field(default_factory=dict)  # visit_id -> uhid



def _count_seq(raw: object, device_id: str, delta: _DeviceDelta) -> None:
    """Contract 1.1: ``max_seq`` is the highest seq received from the device in any
    request, whatever its outcome, so a seq is counted before anything is checked
    (an op naming another device is that device's numbering, not this one's).
    1.2: a seq beyond 2**53-1 is invalid and not counted, so a counter restored
    after such a mistake still has valid numbers above ``max_seq``."""
    if not isinstance(raw, dict) or raw.get("device_id") != device_id:
        return
    seq = raw.get("seq")
    if type(seq) is int and 0 < seq <= MAX_INT and seq > delta.max_seq:
        delta.max_seq = seq



# The numbers an op of each kind may take (domain/registry.py); a register or payment
# bringing its own block id (uhid / receipt_no) takes no new one.
_WANTS: dict[str, tuple[str, ...]] = {k.name: k.numbers for k in registry.KINDS if k.numbers}


def _numbers_wanted(ops: Sequence[object], remembered: Mapping[str, object]) -> dict[str, int]:
    """At most how many numbers of each series the batch's new ops will take."""
    wanted: dict[str, int] = {}
    for raw in ops:
        if not isinstance(raw, dict) or raw.get("op_id") in remembered:
            continue
        given = raw.get("payload")
        payload: dict[str, object] = given if isinstance(given, dict) else {}
        for name in _WANTS.get(str(raw.get("kind")), ()):
            if name == "uhid" and isinstance(payload.get("uhid"), str):
                continue
            if name == "receipt" and ID_PATTERNS["receipt"].match(str(payload.get("receipt_no"))):
                continue
            wanted[name] = wanted.get(name, 0) + 1
    return wanted


def _unstorable(env: OpEnvelope) -> list[dict[str, str]]:
    """Envelope values the model accepts but the server cannot store: they would
    fail the whole batch at the INSERT (a 5xx the counter resends forever)."""
    fields: list[dict[str, str]] = []
    if env.seq > _MAX_SQL_INT:
        fields.append({"field": "seq", "code": "too_large", "message": f"must be at most {_MAX_SQL_INT}"})
    try:
        _local_date(env.recorded_at)
    except OverflowError:
        fields.append({"field": "recorded_at", "code": "out_of_range",
                       "message": "is too far from today to be placed in Asia/Kolkata time"})
    return fields


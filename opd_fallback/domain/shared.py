"""What an op tells the other counters of a hospital: the record it made.

The LAN hub and every counter that pulls from it turn ops into one small,
searchable row per record (patient, visit, lab order with its tubes,
payment) with the offline number, who made it and when, and the references
it carries. Both sides use this one pure function so the hub's merged index
and a counter's copy of the LAN's records cannot drift apart. A
``lab.sample_collect`` makes no record: it is an event on a tube
(:func:`sample_event`), which every counter keeps so each desk sees the tube
drawn or refused. Nothing here validates an op for central: a mirror keeps
what the counters recorded, as they recorded it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, TypedDict

from opd_fallback.domain import registry
from opd_fallback.domain.jsonio import JSONObject

# op kind -> record kind it creates; op kind -> the result key holding its central id
# (both declared per kind in domain/registry.py)
CREATES = registry.CREATES
CENTRAL_ID_KEYS = registry.CENTRAL_ID_KEYS
RECORD_KINDS = registry.RECORD_KINDS
# patient fields a patient.update may change that the index keeps
_PATIENT_FIELDS = ("name", "name_local", "sex", "age_years", "guardian_name", "mobile", "district",
                   "guardian_relation", "age_months", "age_days", "category")


@dataclass
class SharedRecord:
    """One record of some counter as the LAN knows it."""

    kind: str  # patient | visit | lab_order | payment
    local_ref: str
    device_id: str
    op_id: str
    recorded_at: str
    patient_ref: str | None = None  # local_ref or central id of the patient
    visit_ref: str | None = None
    lab_order_ref: str | None = None
    name: str | None = None  # the patient's name (patient records only)
    mobile: str | None = None
    uhid: str | None = None  # a uhid the patient record was made with (reserved block)
    # untyped, not JSONObject, until store/shared.py narrows what it reads from it (issue 22)
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def ref_key(ref: object) -> str | None:
    """The one value of a contract reference (``{"local_ref": ...}`` or ``{"central_id": ...}``)."""
    if not isinstance(ref, dict):
        return None
    value = ref.get("local_ref") or ref.get("central_id")
    return str(value) if value else None


def _s(v: object) -> str | None:
    return None if v is None else str(v)


def record_of(op: Mapping[str, object]) -> SharedRecord | None:
    """The record an op creates, or None (updates and voids create none)."""
    kind = CREATES.get(str(op.get("kind")))
    payload = op.get("payload")
    if kind is None or not isinstance(payload, dict) or not payload.get("local_ref"):
        return None
    rec = SharedRecord(
        kind=kind, local_ref=str(payload["local_ref"]).upper(), device_id=str(op.get("device_id") or ""),
        op_id=str(op.get("op_id") or ""), recorded_at=str(op.get("recorded_at") or ""),
    )
    if kind == "patient":
        rec.name = _s(payload.get("name"))
        rec.mobile = _s(payload.get("mobile"))
        rec.uhid = _s(payload.get("uhid"))
        # everything the papers print of a patient, so another counter prints them as registered
        rec.detail = {k: payload.get(k) for k in _PATIENT_FIELDS}
        return rec
    rec.patient_ref = ref_key(payload.get("patient"))
    if kind == "visit":
        rec.detail = {k: payload.get(k) for k in ("department", "unit", "visit_type", "visit_date", "token_no")}
    elif kind == "lab_order":
        rec.visit_ref = ref_key(payload.get("visit"))
        tests = payload.get("tests") or []
        rec.detail = {"tests": [t.get("code") for t in tests if isinstance(t, dict)],
                      "sample_id": payload.get("sample_id"), "priority": payload.get("priority"),
                      # every tube (its id, sample type and tests): the billing desk prints their labels
                      "samples": tubes_of(payload)}
    else:
        rec.visit_ref = ref_key(payload.get("visit"))
        rec.lab_order_ref = ref_key(payload.get("lab_order"))
        rec.detail = {k: payload.get(k) for k in ("receipt_no", "amount_paise", "mode", "items")}
    return rec


def patient_changes(op: Mapping[str, object]) -> tuple[str, JSONObject] | None:
    """For a ``patient.update``: (patient reference, the index fields it changes)."""
    payload = op.get("payload")
    if op.get("kind") != "patient.update" or not isinstance(payload, dict):
        return None
    ref = ref_key(payload.get("patient"))
    changes = payload.get("changes")
    if not ref or not isinstance(changes, dict):
        return None
    keep = {k: v for k, v in changes.items() if k in _PATIENT_FIELDS}
    return (ref, keep) if keep else None


def voided_payment(op: Mapping[str, object]) -> str | None:
    """For a ``payment.void``: the payment reference it voids."""
    payload = op.get("payload")
    if op.get("kind") != "payment.void" or not isinstance(payload, dict):
        return None
    return ref_key(payload.get("payment"))


class TubeOf(TypedDict):
    """One tube of a lab order as the LAN keeps it (sample type and test codes as the counter sent them)."""

    sample_id: str
    sample_type: str | None
    tests: list[str | None]  # a 1.0 order's test without a code is kept as None, as mirrored


def tubes_of(payload: Mapping[str, object]) -> list[TubeOf]:
    """A ``lab.order`` payload's tubes (``samples``); an order of a 1.0 counter
    that names only ``sample_id`` has that one tube with every test."""
    tubes = payload.get("samples")
    tests = payload.get("tests")
    if isinstance(tubes, list) and tubes:
        return [{"sample_id": str(t.get("sample_id") or "").upper(), "sample_type": t.get("sample_type"),
                 "tests": list(t.get("tests") or [])} for t in tubes if isinstance(t, dict)]
    sid = payload.get("sample_id")
    if not sid:
        return []
    codes = [t.get("code") for t in (tests if isinstance(tests, list) else []) if isinstance(t, dict)]
    return [{"sample_id": str(sid).upper(), "sample_type": None, "tests": codes}]


@dataclass
class SampleEvent:
    """What a ``lab.sample_collect`` tells the other counters: a tube drawn or refused."""

    op_id: str
    sample_id: str
    status: str  # collected | rejected
    collected_at: str
    device_id: str
    operator_id: str
    reason: str | None = None
    note: str | None = None


def sample_event(op: Mapping[str, object]) -> SampleEvent | None:
    """For a ``lab.sample_collect``: the collection desk's event, else None."""
    payload = op.get("payload")
    if op.get("kind") != "lab.sample_collect" or not isinstance(payload, dict):
        return None
    sid, status, at = payload.get("sample_id"), payload.get("status"), payload.get("collected_at")
    if not sid or status not in ("collected", "rejected") or not at:
        return None
    return SampleEvent(op_id=str(op.get("op_id") or ""), sample_id=str(sid).upper(), status=str(status),
                       collected_at=str(at), device_id=str(op.get("device_id") or ""),
                       operator_id=str(op.get("operator_id") or ""), reason=_s(payload.get("reason")),
                       note=_s(payload.get("note")))


def central_id_of(kind: str, result: object) -> str | None:
    """The central id in an applied op's result (uhid, visit_id, order_id, receipt_id)."""
    key = CENTRAL_ID_KEYS.get(kind)
    if key is None or not isinstance(result, dict) or not result.get(key):
        return None
    return str(result[key])

"""The shapes of a reconciliation report (one day, schema ``opd-fallback/reconcile/1``)
and of a nightly run (``opd-fallback/nightly/1``), as ``TypedDict``s.

They describe the plain dicts ``DayReport.as_dict()`` and ``run_nightly``
return and the renderers of :mod:`opd_fallback.application.reports` read
(``docs/reconcile-json.md`` documents the same keys for people). Types only:
at run time a report is still a plain dict, so its JSON is what it was. A
report read back from a file is not checked against them; the renderers keep
reading it with ``.get``.
"""

from __future__ import annotations

from typing import Literal, NotRequired, Required, TypeAlias, TypedDict, TypeGuard

from opd_fallback.domain.jsonio import JSONObject, JSONValue

DAY_SCHEMA: Literal["opd-fallback/reconcile/1"] = "opd-fallback/reconcile/1"
NIGHTLY_SCHEMA: Literal["opd-fallback/nightly/1"] = "opd-fallback/nightly/1"

# the lists of report["ops"], in the order people read them
Section: TypeAlias = Literal["missing_centrally", "unknown_here", "marked_synced", "flagged", "waiting"]


class OpBrief(TypedDict):
    """One op of the outbox, as every list of a report names it."""

    op_id: str
    seq: int
    kind: str
    recorded_at: str
    state: str
    record_ref: str | None


class WaitingOp(OpBrief):
    wait_reason: str | None
    attempts: int
    last_status: str | None


class FlaggedOp(OpBrief):
    error_code: str | None
    error_message: str | None


class MarkedOp(OpBrief):
    """Applied centrally, its answer lost: now marked synced with central's remembered outcome."""

    previous_state: str
    central_status: str
    result: JSONObject | None


class MissingOp(OpBrief):
    """Synced here, missing centrally; put back in the queue or not."""

    requeued: bool


class UnknownOp(TypedDict, total=False):
    """Applied centrally: only ``op_id`` when not in this database, else its brief and
    the status central remembers (``None``: none)."""

    op_id: Required[str]
    seq: int
    kind: str
    recorded_at: str
    state: str
    record_ref: str | None
    central_status: str | None


# an op in one of the report's ``ops`` lists
ClassifiedOp: TypeAlias = WaitingOp | FlaggedOp | MarkedOp | MissingOp | UnknownOp


class OpsSections(TypedDict):
    marked_synced: list[MarkedOp]
    missing_centrally: list[MissingOp]
    unknown_here: list[UnknownOp]
    waiting: list[WaitingOp]
    flagged: list[FlaggedOp]


class Difference(TypedDict):
    """One compared field where the two sides differ (a missing key counts as 0)."""

    field: str
    local: int | str
    central: int | str


class PaymentWarning(TypedDict):
    """One warning central gave on a synced payment, with what was paid."""

    op_id: str
    seq: int
    recorded_at: str
    local_ref: str | None
    receipt_no: str | None
    receipt_id: str | None
    mode: str | None
    code: str | None
    item: str | None
    paid_paise: int | None
    expected_paise: int | None
    amount_paise: int | None


class PayloadMismatch(OpBrief):
    """One field of a queued payment / void that differs from its record, in words."""

    field: str
    queued: JSONValue
    record: JSONValue
    words: str


class Tube(TypedDict):
    sample_id: str | None
    status: str | None
    reason: str | None
    collected_at: str | None
    op_id: str
    state: str


class Misdated(TypedDict):
    """An op saved on the day with the clock confirmed wrong, dated another day."""

    op_id: str
    seq: int
    kind: str
    recorded_at: str
    saved_on: str


class Payments(TypedDict):
    count: int
    total_paise: int
    by_mode: dict[str, int]


class Voids(TypedDict):
    count: int
    total_paise: int


class Samples(TypedDict):
    collected: int
    rejected: int


class Summary(TypedDict):
    """The contract's reconciliation body, from either side (``DaySummary.as_dict()``)."""

    ops_applied: int
    by_kind: dict[str, int]
    payments: Payments
    voids: Voids
    samples: NotRequired[Samples]  # absent from reports written before contract 1.2
    op_ids_sha256: str


class DayDict(TypedDict):
    """``DayReport.as_dict()``."""

    schema: Literal["opd-fallback/reconcile/1"]
    date: str
    device_id: str
    started_at: str
    status: str  # clean | attention | unreachable
    exit_code: int
    error: str | None
    reasons: list[str]
    digests_match: bool | None
    local: Summary | None
    central: Summary | None
    differences_found: list[Difference]
    differences: list[Difference]
    ops: OpsSections
    payment_warnings: list[PaymentWarning]
    voids_amount_unknown: list[str]
    payload_mismatches: list[PayloadMismatch]
    tubes: list[Tube]
    misdated: list[Misdated]
    local_states: dict[str, int]
    ops_per_hour: list[dict[str, int]]
    requeue_missing: bool
    central_pages: int
    elapsed_s: float


class Step(TypedDict):
    """One step of the nightly job."""

    name: str
    ok: bool
    detail: str
    data: NotRequired[dict[str, JSONValue]]


class NightlyDict(TypedDict):
    """What ``run_nightly`` returns."""

    schema: Literal["opd-fallback/nightly/1"]
    device_id: str
    started_at: str
    steps: list[Step]
    days: list[DayDict]
    backup: JSONObject | None
    reasons: list[str]
    status: str
    exit_code: int
    finished_at: str


Report: TypeAlias = DayDict | NightlyDict


def is_nightly(report: Report) -> TypeGuard[NightlyDict]:
    """Whether ``report`` is a nightly run (else one day)."""
    return report.get("schema") == NIGHTLY_SCHEMA

"""What a supervisor needs to know about this counter right now, read from the
store only (never the network): the outbox by state and kind, how long the
oldest op has waited, what needs a person (flagged ops, and the LAN edit
conflicts no later edit has answered: store/lan_conflicts.py), the last sync,
and today's money.

The dict returned by :func:`collect` is the stable ``status --json`` form,
documented in docs/status-json.md; add keys, never rename or remove them.

The sync engine records its attempts in the ``meta`` table under the
``SYNC_*`` keys below (values are plain strings).

``status`` must start fast (issue 12: under 0.4 s), and importing SQLAlchemy,
SQLModel and the table models costs several times the whole report, so the
report is read with plain SQL on a read-only DB-API snapshot
(store/readonly.py); the money comes from the same queries as the counter's
cash summary (application/daytotals.py). Keep this module free of SQLAlchemy.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

import orjson

from opd_fallback.application.daytotals import ReprintsJSON, VoidsJSON, WaiverJSON, totals_for_day
from opd_fallback.domain.clock import IST, duration_words, now_iso, now_ist
from opd_fallback.domain.rules import OP_KINDS, PAYMENT_MODES, format_paise
from opd_fallback.store import lan_conflicts, marks, meta, readonly
from opd_fallback.store import states as outbox
from opd_fallback.store.readonly import OperationalError, needs_upgrade, snapshot

if TYPE_CHECKING:
    from opd_fallback.cipher.db import Connection
    from opd_fallback.store.engine import Store

SCHEMA_VERSION = 1

# Meta keys written by the sync engine, named once in store/meta.py (status
# must not import sync: sync speaks HTTP, the domain does not).
SYNC_LAST_ATTEMPT_AT = meta.LAST_SYNC_AT
SYNC_LAST_SUCCESS_AT = meta.LAST_SYNC_OK_AT
SYNC_LAST_OUTCOME = meta.LAST_SYNC_OUTCOME
# outcomes after which the attempt did not get everything through to central
_FAILED_OUTCOMES = ("unreachable", "unauthorized", "busy", "stopped", "error")

NEEDS_PERSON = outbox.FLAGGED


# ---- the shape of ``status --json`` (docs/status-json.md) ----
class Ops(TypedDict):
    total: int
    by_state: dict[str, int]
    by_state_and_kind: dict[str, dict[str, int]]


class Pending(TypedDict):
    count: int
    with_wait_reason: int
    oldest_recorded_at: str | None
    oldest_age_seconds: int | None


class NeedsPerson(TypedDict):
    count: int
    oldest_recorded_at: str | None
    oldest_age_seconds: int | None
    damaged: int
    lan_edit_conflicts: int


class LastSync(TypedDict):
    last_attempt_at: str | None
    last_outcome: str | None
    last_success_at: str | None
    last_error: str | None


class HubWentBack(TypedDict):
    at: str | None
    reason: str | None
    hub_held: int | None
    acknowledged_before: str | None
    healed: bool


class HubSection(TypedDict):
    configured: bool
    state: str  # not_configured | online | offline
    last_exchange_at: str | None
    last_ok_at: str | None
    last_outcome: str | None
    last_message: str | None
    records_from_other_counters: int
    records_by_counter: dict[str, int]
    ops_not_yet_shared: int
    ops_refused: int
    hub_db_id: str | None
    hub_epoch: str | None
    went_back: HubWentBack | None


class Money(TypedDict):
    count: int
    total_paise: int


class PaymentsToday(TypedDict):
    date: str
    by_mode: dict[str, Money]
    voided_by_mode: dict[str, Money]
    cancelled_in_review: Money
    collected_paise: int
    waivers: list[WaiverJSON]
    voids: list[VoidsJSON]
    reprints: list[ReprintsJSON]


class StatusReport(TypedDict):
    schema: int
    device_id: str
    generated_at: str
    ops: Ops
    pending: Pending
    needs_person: NeedsPerson
    last_sync: LastSync
    hub: HubSection
    payments_today: PaymentsToday
    went_back_in_time: str | None


def _age_seconds(recorded_at: str | None, now: datetime) -> int | None:
    if not recorded_at:
        return None
    try:
        return max(0, int((now - datetime.fromisoformat(recorded_at)).total_seconds()))
    except ValueError:
        return None


_meta = readonly.meta_value
_counter = readonly.counter_value


def _last_sync(conn: Connection) -> LastSync:
    outcome: str | None = None
    error: str | None = None
    raw = _meta(conn, SYNC_LAST_OUTCOME)
    if raw:
        try:
            summary = orjson.loads(raw)
        except orjson.JSONDecodeError:
            summary = {"outcome": raw}
        if not isinstance(summary, dict):
            summary = {"outcome": str(summary)}
        outcome = str(summary.get("outcome") or "") or None
        if outcome in _FAILED_OUTCOMES:
            error = str(summary.get("message") or outcome)[:300]
    return {
        "last_attempt_at": _meta(conn, SYNC_LAST_ATTEMPT_AT),
        "last_outcome": outcome,
        "last_success_at": _meta(conn, SYNC_LAST_SUCCESS_AT),
        "last_error": error,
    }


def _payments_today(conn: Connection, day: str) -> PaymentsToday:
    t = totals_for_day(readonly.run_sql(conn), day)
    voided: dict[str, Money] = {m: {"count": 0, "total_paise": 0} for m in PAYMENT_MODES}
    voided.update({m: {"count": v.count, "total_paise": v.total_paise} for m, v in t.voided_by_mode.items()})
    return {
        "date": day,
        "by_mode": {m: {"count": v.count, "total_paise": v.total_paise} for m, v in t.by_mode.items()},
        "voided_by_mode": voided,
        "cancelled_in_review": {"count": t.cancelled.count, "total_paise": t.cancelled.total_paise},
        "collected_paise": t.collected_paise,
        **t.approvals.as_dict(),
    }


def collect(db: Path | str | Store, device_id: str, *, now: datetime | None = None,
            hub_configured: bool = False) -> StatusReport:
    """The status report as a JSON-ready dict (see docs/status-json.md), read from
    the counter database (its path, or an open ``Store``) in one snapshot,
    without writing to it.

    A database whose schema is too old to read this way is upgraded first
    (as opening it for any other command would)."""
    db_path = Path(db.path if hasattr(db, "path") else db)
    try:
        return _collect(db_path, device_id, now=now, hub_configured=hub_configured)
    except OperationalError as exc:
        if not needs_upgrade(exc):  # a missing table or column: an older schema
            raise
    from opd_fallback.store import open_store

    open_store(db_path).close()  # runs the migrations
    return _collect(db_path, device_id, now=now, hub_configured=hub_configured)


def hub_section(conn: Connection, *, configured: bool, stale_after_s: float = 60.0) -> HubSection:
    """The ``hub`` object of ``status --json`` (docs/status-json.md), read with
    plain SQL (``hub_status`` gives the same for a Store)."""
    last_at = _meta(conn, meta.HUB_LAST_AT)
    last_ok = _meta(conn, meta.HUB_LAST_OK_AT)
    raw = _meta(conn, meta.HUB_LAST_OUTCOME)
    by_device = readonly.shared_records_by_device(conn)
    pending = readonly.ops_above(conn, int(_meta(conn, meta.HUB_PUSHED_SEQ) or 0))
    try:
        last = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        last = {}
    if not isinstance(last, dict):
        last = {}
    went_back: HubWentBack | None = None
    raw_back = _meta(conn, meta.HUB_WENT_BACK)
    if raw_back:
        try:
            back = orjson.loads(raw_back)
        except orjson.JSONDecodeError:
            back = None
        if isinstance(back, dict):
            healed = bool(last.get("outcome") in ("ok", "refused") and last_ok and str(last_ok) >= str(back.get("at")))
            went_back = {"at": back.get("at"), "reason": back.get("reason"), "hub_held": back.get("hub_held"),
                         "acknowledged_before": back.get("acked_before"), "healed": healed}
    online = False
    if configured and last.get("outcome") in ("ok", "refused") and last_ok:
        try:
            age = (datetime.fromisoformat(now_iso()) - datetime.fromisoformat(last_ok)).total_seconds()
            online = age <= stale_after_s
        except ValueError:
            online = False
    return {
        "configured": configured,
        "state": "not_configured" if not configured else ("online" if online else "offline"),
        "last_exchange_at": last_at,
        "last_ok_at": last_ok,
        "last_outcome": last.get("outcome"),
        "last_message": last.get("message"),
        "records_from_other_counters": sum(by_device.values()),
        "records_by_counter": by_device,
        "ops_not_yet_shared": pending,
        "ops_refused": int(last.get("refused") or 0),
        "hub_db_id": _meta(conn, meta.HUB_DB_ID),
        "hub_epoch": _meta(conn, meta.HUB_EPOCH),
        "went_back": went_back,
    }


def _collect(db_path: Path, device_id: str, *, now: datetime | None, hub_configured: bool) -> StatusReport:
    now = now or now_ist()
    with snapshot(db_path) as conn:
        by_state = dict.fromkeys(outbox.STATES, 0)
        by_state.update(readonly.ops_by_state(conn))
        by_kind = readonly.ops_by_state_and_kind(conn)
        oldest_pending = readonly.oldest_recorded_at(conn, [outbox.PENDING])
        oldest_flagged = readonly.oldest_recorded_at(conn, NEEDS_PERSON)
        waiting = readonly.waiting_with_reason(conn)
        damaged = readonly.damaged_ops(conn)
        conflicts = lan_conflicts.open_conflicts(readonly.run_sql(conn))
        went_back = _meta(conn, marks.WENT_BACK) or marks.went_back_words(db_path, lambda name: _counter(conn, name))
        sync = _last_sync(conn)
        payments = _payments_today(conn, now.astimezone(IST).date().isoformat())
        hub = hub_section(conn, configured=hub_configured)
    kinds = {
        state: {k: by_kind.get(state, {}).get(k, 0) for k in OP_KINDS} for state in outbox.STATES
    }
    return {
        "schema": SCHEMA_VERSION,
        "device_id": device_id,
        "generated_at": now.isoformat(),
        "ops": {
            "total": sum(by_state.values()),
            "by_state": {st: by_state.get(st, 0) for st in outbox.STATES},
            "by_state_and_kind": kinds,
        },
        "pending": {
            "count": by_state.get(outbox.PENDING, 0),
            "with_wait_reason": waiting,
            "oldest_recorded_at": oldest_pending,
            "oldest_age_seconds": _age_seconds(oldest_pending, now),
        },
        "needs_person": {
            "count": sum(by_state.get(st, 0) for st in NEEDS_PERSON),
            "oldest_recorded_at": oldest_flagged,
            "oldest_age_seconds": _age_seconds(oldest_flagged, now),
            "damaged": damaged,  # of those: damaged in this database, never sent
            "lan_edit_conflicts": conflicts.n,  # besides those: edits of one field at two counters
        },
        "last_sync": sync,
        "hub": hub,
        "payments_today": payments,
        "went_back_in_time": went_back,
    }


def render_text(report: StatusReport) -> str:
    """The report for a person at a terminal."""
    ops = report["ops"]
    lines = [f"Counter {report['device_id']}  ({report['generated_at']})", ""]
    lines.append("Ops: " + ", ".join(f"{st} {n}" for st, n in ops["by_state"].items()) + f"  (total {ops['total']})")
    for state, kinds in ops["by_state_and_kind"].items():
        nonzero = {k: n for k, n in kinds.items() if n}
        if nonzero:
            lines.append(f"  {state:<9} " + ", ".join(f"{k} {n}" for k, n in nonzero.items()))
    p = report["pending"]
    lines.append(
        f"Waiting to sync: {p['count']}; oldest waited {duration_words(p['oldest_age_seconds'])}"
        + (f"; {p['with_wait_reason']} held back with a reason" if p["with_wait_reason"] else "")
    )
    n = report["needs_person"]
    lines.append(
        f"Needs a person (rejected or conflict): {n['count']}"
        + (f"; oldest {duration_words(n['oldest_age_seconds'])} old -> opd-fallback review" if n["count"] else "")
    )
    if n.get("damaged"):
        lines.append(f"  {n['damaged']} of them damaged in this database and never sent: "
                     "cancel each in review and enter it again from the paper slip")
    if n.get("lan_edit_conflicts"):
        lines.append(f"LAN edit conflicts: {n['lan_edit_conflicts']} (a patient's field changed at two counters; "
                     "the later change is kept): check with each patient and correct the record if it is wrong "
                     "-> opd-fallback review history")
    if report.get("went_back_in_time"):
        lines.append(f"WARNING: {report['went_back_in_time']}")
    sync = report["last_sync"]
    if sync["last_attempt_at"]:
        lines.append(f"Last sync attempt: {sync['last_attempt_at']} -> {sync['last_outcome'] or '?'}")
        if sync["last_error"]:
            lines.append(f"  error: {sync['last_error']}")
        lines.append(f"Last reached central: {sync['last_success_at'] or 'never'}")
    else:
        lines.append("Last sync attempt: never")
    hub = report.get("hub") or {}
    if hub.get("configured"):
        lines.append(f"LAN hub: {hub['state']}; last exchange {hub['last_exchange_at'] or 'never'}; "
                     f"{hub['records_from_other_counters']} records from other counters; "
                     f"{hub['ops_not_yet_shared']} ops not yet shared")
        if hub.get("ops_refused"):
            lines.append(f"LAN hub REFUSED {hub['ops_refused']} of this counter's items at the last exchange "
                         f"(not counted as shared): {hub.get('last_message') or ''}")
        back = hub.get("went_back")
        if back:
            lines.append(f"LAN hub WENT BACK in time (found {back['at']}): {back['reason']}; "
                         + ("healed: this counter has sent it everything again" if back["healed"]
                            else "not yet healed: run 'opd-fallback share'"))
    pay = report["payments_today"]
    lines.append(f"Payments today ({pay['date']}):")
    for mode, t in pay["by_mode"].items():
        voided = pay["voided_by_mode"].get(mode, {"count": 0})
        extra = f"  (voided {voided['count']}: {format_paise(voided['total_paise'])})" if voided["count"] else ""
        lines.append(f"  {mode:<7} {t['count']:>4}  {format_paise(t['total_paise']):>14}{extra}")
    lines.append(f"  collected (cash+upi+card, less voids): {format_paise(pay['collected_paise'])}")
    for w in pay.get("waivers", []):
        lines.append(f"  waived: {w['reason']} (approved by {w['approved_by']}): {w['count']}, "
                     f"{format_paise(w['waived_paise'])} not collected")
    for v in pay.get("voids", []):
        lines.append(f"  voids approved by {v['approved_by']}: {v['count']}, {format_paise(v['total_paise'])}")
    for r in pay.get("reprints", []):
        lines.append(f"  reprints by {r['operator_id']}: {r['count']}")
    return "\n".join(lines)


def hub_status(store: Store, *, configured: bool, stale_after_s: float = 60.0) -> HubSection:
    """The ``hub`` object of ``status --json`` (docs/status-json.md): read as
    ``status`` reads it, with plain SQL (``hub_section``), for a Store."""
    from opd_fallback.store.readonly import snapshot

    with snapshot(store.path) as conn:
        return hub_section(conn, configured=configured, stale_after_s=stale_after_s)

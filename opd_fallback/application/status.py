"""What a supervisor needs to know about this counter right now, read from the
store only (never the network): the outbox by state and kind, how long the
oldest op has waited, what needs a person, the last sync, and today's money.

The dict returned by :func:`collect` is the stable ``status --json`` form,
documented in docs/status-json.md; add keys, never rename or remove them.

The sync engine records its attempts in the ``meta`` table under the
``SYNC_*`` keys below (values are plain strings).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import text
from sqlmodel import Session

from opd_fallback.application.services import day_totals
from opd_fallback.domain.clock import IST, duration_words, now_ist
from opd_fallback.domain.payloads import OP_KINDS
from opd_fallback.domain.rules import PAYMENT_MODES, format_paise
from opd_fallback.store import marks, meta, outbox
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


def _age_seconds(recorded_at: str | None, now: datetime) -> int | None:
    if not recorded_at:
        return None
    try:
        return max(0, int((now - datetime.fromisoformat(recorded_at)).total_seconds()))
    except ValueError:
        return None


def _last_sync(session: Session) -> dict[str, Any]:
    outcome: str | None = None
    error: str | None = None
    raw = meta.get(session, SYNC_LAST_OUTCOME)
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
        "last_attempt_at": meta.get(session, SYNC_LAST_ATTEMPT_AT),
        "last_outcome": outcome,
        "last_success_at": meta.get(session, SYNC_LAST_SUCCESS_AT),
        "last_error": error,
    }


def _payments_today(session: Session, day: str) -> dict[str, Any]:
    t = day_totals(session, day)
    voided = {m: {"count": 0, "total_paise": 0} for m in PAYMENT_MODES}
    voided.update({m: {"count": v.count, "total_paise": v.total_paise} for m, v in t.voided_by_mode.items()})
    return {
        "date": day,
        "by_mode": {m: {"count": v.count, "total_paise": v.total_paise} for m, v in t.by_mode.items()},
        "voided_by_mode": voided,
        "cancelled_in_review": {"count": t.cancelled.count, "total_paise": t.cancelled.total_paise},
        "collected_paise": t.collected_paise,
    }


def collect(store: Store, device_id: str, *, now: datetime | None = None,
            hub_configured: bool = False) -> dict[str, Any]:
    """The status report as a JSON-ready dict (see docs/status-json.md)."""
    from opd_fallback.application.share import hub_status

    now = now or now_ist()
    with store.read() as s:
        by_state = outbox.counts_by_state(s)
        by_kind = outbox.counts_by_state_and_kind(s)
        oldest_pending = outbox.oldest_recorded_at(s, [outbox.PENDING])
        oldest_flagged = outbox.oldest_recorded_at(s, list(NEEDS_PERSON))
        waiting = int(
            s.execute(
                text("SELECT count(*) FROM op WHERE state = 'pending' AND wait_reason IS NOT NULL")
            ).scalar()
            or 0
        )
        damaged = int(s.execute(
            text("SELECT count(*) FROM op WHERE state = :st AND last_status = :d"),
            {"st": outbox.REJECTED, "d": outbox.DAMAGED}).scalar() or 0)
        went_back = meta.get(s, marks.WENT_BACK) or marks.behind_words(s, store.path)
        sync = _last_sync(s)
        payments = _payments_today(s, now.astimezone(IST).date().isoformat())
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
        },
        "last_sync": sync,
        "hub": hub_status(store, configured=hub_configured),
        "payments_today": payments,
        "went_back_in_time": went_back,
    }


def render_text(report: dict[str, Any]) -> str:
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
    pay = report["payments_today"]
    lines.append(f"Payments today ({pay['date']}):")
    for mode, t in pay["by_mode"].items():
        voided = pay["voided_by_mode"].get(mode, {"count": 0})
        extra = f"  (voided {voided['count']}: {format_paise(voided['total_paise'])})" if voided["count"] else ""
        lines.append(f"  {mode:<7} {t['count']:>4}  {format_paise(t['total_paise']):>14}{extra}")
    lines.append(f"  collected (cash+upi+card, less voids): {format_paise(pay['collected_paise'])}")
    return "\n".join(lines)

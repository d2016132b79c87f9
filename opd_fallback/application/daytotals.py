"""A day's money by payment mode, its voids, and what review cancelled: one
set of SQL for the counter's cash summary and for ``status``.

The queries take any way of running SQL with named parameters (``:d``,
``:o``): :func:`opd_fallback.application.services.day_totals` runs them in a
SQLModel session, ``status`` on a plain ``sqlite3`` snapshot
(store/readonly.py) so that it starts without loading SQLAlchemy. Keep this
module free of SQLAlchemy, pydantic and the table models.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from opd_fallback.domain.rules import PAYMENT_MODES

# runs one SELECT with named parameters and returns its rows
RunSql = Callable[[str, dict[str, Any]], Sequence[Sequence[Any]]]


@dataclass(frozen=True)
class ModeTotal:
    count: int = 0
    total_paise: int = 0


WAIVER_ACTION = "payment.waive"  # audit action of a supervisor-approved waiver (application/services.py)
REPRINT_ACTION = "print.reprint"  # audit action of a reprint (application/printouts.py)


@dataclass(frozen=True)
class ApprovalLine:
    """One line of the day's approvals: who (approver, or operator for a
    reprint), why (a waiver's reason), how many and how much."""

    who: str
    reason: str | None
    count: int
    total_paise: int = 0


@dataclass(frozen=True)
class Approvals:
    """What the accounts office checks at day end, apart from the money by mode."""

    waivers: tuple[ApprovalLine, ...] = ()  # by reason and approving supervisor
    voids: tuple[ApprovalLine, ...] = ()  # by approving supervisor
    reprints: tuple[ApprovalLine, ...] = ()  # by operator

    def as_dict(self) -> dict[str, list[dict[str, Any]]]:
        return {
            "waivers": [{"reason": a.reason, "approved_by": a.who, "count": a.count, "waived_paise": a.total_paise}
                        for a in self.waivers],
            "voids": [{"approved_by": a.who, "count": a.count, "total_paise": a.total_paise} for a in self.voids],
            "reprints": [{"operator_id": a.who, "count": a.count} for a in self.reprints],
        }


@dataclass(frozen=True)
class CashSummary:
    operator_id: str
    day: str
    by_mode: dict[str, ModeTotal]
    voids: ModeTotal
    voided_by_mode: dict[str, ModeTotal]
    # Payments a supervisor cancelled in review (never reaching central): shown
    # apart, since the review note says what happened to that money.
    cancelled: ModeTotal = ModeTotal()
    approvals: Approvals = Approvals()

    @property
    def collected_paise(self) -> int:
        """Money actually in hand: cash/UPI/card taken minus what was voided
        (payments and voids cancelled in review are left out of both)."""
        taken = sum(t.total_paise for m, t in self.by_mode.items() if m != "waived")
        voided = sum(t.total_paise for m, t in self.voided_by_mode.items() if m != "waived")
        return taken - voided


def totals_for_day(run: RunSql, day: str, operator_id: str | None = None) -> CashSummary:
    """Payments of ``day`` (YYYY-MM-DD, IST) by mode, for one operator or all, with
    their voids; what review cancelled is counted apart (see ``CashSummary``)."""
    who = "" if operator_id is None else "p.operator_id=:o AND "
    params = {"o": operator_id, "d": day}
    rows = run(
        "SELECT p.mode, count(*), coalesce(sum(p.amount_paise),0) FROM payment p "
        "JOIN op ON op.op_id = p.op_id "
        f"WHERE {who}substr(p.created_at,1,10)=:d AND op.state != 'cancelled' GROUP BY p.mode", params)
    crow = run(
        "SELECT count(*), coalesce(sum(p.amount_paise),0) FROM payment p JOIN op ON op.op_id = p.op_id "
        f"WHERE {who}substr(p.created_at,1,10)=:d AND op.state = 'cancelled'", params)[0]
    vrows = run(
        "SELECT p.mode, count(*), coalesce(sum(p.amount_paise),0) FROM payment_void v "
        "JOIN payment p ON p.local_ref = v.payment_local_ref "
        "JOIN op pop ON pop.op_id = p.op_id JOIN op vop ON vop.op_id = v.op_id "
        f"WHERE {who}substr(p.created_at,1,10)=:d "
        "AND pop.state != 'cancelled' AND vop.state != 'cancelled' GROUP BY p.mode", params)
    by_mode = {m: ModeTotal() for m in PAYMENT_MODES}
    by_mode.update({str(m): ModeTotal(int(c), int(t)) for m, c, t in rows})
    voided = {str(m): ModeTotal(int(c), int(t)) for m, c, t in vrows}
    voids = ModeTotal(sum(v.count for v in voided.values()), sum(v.total_paise for v in voided.values()))
    return CashSummary(operator_id or "*", day, by_mode, voids, voided, ModeTotal(int(crow[0]), int(crow[1])),
                       approvals_for_day(run, day, operator_id))


def approvals_for_day(run: RunSql, day: str, operator_id: str | None = None) -> Approvals:
    """Waivers by reason and approver, voids by supervisor, reprints by operator,
    for ``day`` (IST), one operator's or all. Waivers and reprints come from the
    audit log (append-only); voids from the void records, counted as
    :func:`totals_for_day` counts them (payments of the day, review-cancelled left out)."""
    params = {"o": operator_id, "d": day, "w": WAIVER_ACTION, "r": REPRINT_ACTION}
    actor = "" if operator_id is None else "actor=:o AND "
    waivers = run(
        "SELECT json_extract(detail,'$.reason'), json_extract(detail,'$.approved_by'), count(*), "
        "coalesce(sum(json_extract(detail,'$.waived_paise')),0) FROM audit_log "
        f"WHERE {actor}action=:w AND substr(at,1,10)=:d GROUP BY 1, 2 ORDER BY 2, 1", params)
    who = "" if operator_id is None else "p.operator_id=:o AND "
    voids = run(
        "SELECT v.approved_by, count(*), coalesce(sum(p.amount_paise),0) FROM payment_void v "
        "JOIN payment p ON p.local_ref = v.payment_local_ref "
        "JOIN op pop ON pop.op_id = p.op_id JOIN op vop ON vop.op_id = v.op_id "
        f"WHERE {who}substr(p.created_at,1,10)=:d "
        "AND pop.state != 'cancelled' AND vop.state != 'cancelled' GROUP BY 1 ORDER BY 1", params)
    reprints = run(
        f"SELECT actor, count(*) FROM audit_log WHERE {actor}action=:r AND substr(at,1,10)=:d "
        "GROUP BY 1 ORDER BY 1", params)
    return Approvals(
        tuple(ApprovalLine(str(a), str(r) if r is not None else None, int(c), int(t)) for r, a, c, t in waivers),
        tuple(ApprovalLine(str(a), None, int(c), int(t)) for a, c, t in voids),
        tuple(ApprovalLine(str(a), None, int(c)) for a, c in reprints),
    )

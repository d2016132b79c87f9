"""A day's money by payment mode, its voids, and what review cancelled: one
set of sums for the counter's cash summary and for ``status``.

The queries (store/money.py) take any way of running SQL with named
parameters: :func:`opd_fallback.application.services.day_totals` runs them in
a SQLModel session, ``status`` on a plain ``sqlite3`` snapshot
(store/readonly.py) so that it starts without loading SQLAlchemy. Keep this
module free of SQLAlchemy, pydantic and the table models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

from opd_fallback.domain.rules import PAYMENT_MODES
from opd_fallback.store import money
from opd_fallback.store.money import RunSql


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


class WaiverJSON(TypedDict):
    reason: str | None
    approved_by: str
    count: int
    waived_paise: int


class VoidsJSON(TypedDict):
    approved_by: str
    count: int
    total_paise: int


class ReprintsJSON(TypedDict):
    operator_id: str
    count: int


class ApprovalsJSON(TypedDict):
    """``Approvals.as_dict()``: part of ``status --json``'s ``payments_today``."""

    waivers: list[WaiverJSON]
    voids: list[VoidsJSON]
    reprints: list[ReprintsJSON]


@dataclass(frozen=True)
class Approvals:
    """What the accounts office checks at day end, apart from the money by mode."""

    waivers: tuple[ApprovalLine, ...] = ()  # by reason and approving supervisor
    voids: tuple[ApprovalLine, ...] = ()  # by approving supervisor
    reprints: tuple[ApprovalLine, ...] = ()  # by operator

    def as_dict(self) -> ApprovalsJSON:
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
    rows = money.payments_by_mode(run, day, operator_id)
    crow = money.cancelled_payments(run, day, operator_id)
    vrows = money.voids_by_mode(run, day, operator_id)
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
    waivers = money.waivers(run, day, operator_id, WAIVER_ACTION)
    voids = money.voids_by_approver(run, day, operator_id)
    reprints = money.reprints(run, day, operator_id, REPRINT_ACTION)
    return Approvals(
        tuple(ApprovalLine(str(a), str(r) if r is not None else None, int(c), int(t)) for r, a, c, t in waivers),
        tuple(ApprovalLine(str(a), None, int(c), int(t)) for a, c, t in voids),
        tuple(ApprovalLine(str(a), None, int(c)) for a, c in reprints),
    )

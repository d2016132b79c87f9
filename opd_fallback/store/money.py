"""The SQL of a day's money: payments by mode, what review cancelled, voids,
and the day's approvals from the audit log. The sums and their meaning are
:mod:`opd_fallback.application.daytotals`'s; the SQL on the counter's tables is
here. Each query takes any way of running SQL with named parameters
(``RunSql``): a SQLModel session for the counter's cash summary, a plain
``sqlite3`` snapshot for ``status`` (store/readonly.py), so this module loads
neither SQLAlchemy nor pydantic. A payment or void whose op a supervisor
cancelled in review is left out (its state is bound from store/states.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import cast

from opd_fallback.store.states import CANCELLED

# runs one SELECT with named parameters and returns its rows
SqlParams = dict[str, str | int | None]
RunSql = Callable[[str, SqlParams], Sequence[Sequence[object]]]
# the rows each query returns (SQLite hands back what the SELECT names)
ModeRow = tuple[str, int, int]  # mode, count, paise
WaiverRow = tuple[str | None, str | None, int, int]  # reason, approved_by, count, paise
ApproverRow = tuple[str | None, int, int]  # approved_by, count, paise
ReprintRow = tuple[str, int]  # operator, count


def _params(day: str, operator_id: str | None, **more: str) -> SqlParams:
    return {"o": operator_id, "d": day, "cancelled": CANCELLED, **more}


def payments_by_mode(run: RunSql, day: str, operator_id: str | None) -> Sequence[ModeRow]:
    """(mode, count, paise) of the day's payments (IST), one operator's or all, review-cancelled left out."""
    who = "" if operator_id is None else "p.operator_id=:o AND "
    return cast("Sequence[ModeRow]", run(
        "SELECT p.mode, count(*), coalesce(sum(p.amount_paise),0) FROM payment p "
        "JOIN op ON op.op_id = p.op_id "
        f"WHERE {who}substr(p.created_at,1,10)=:d AND op.state != :cancelled GROUP BY p.mode",
        _params(day, operator_id)))


def cancelled_payments(run: RunSql, day: str, operator_id: str | None) -> tuple[int, int]:
    """(count, paise) of the day's payments whose op review cancelled."""
    who = "" if operator_id is None else "p.operator_id=:o AND "
    row = run(
        "SELECT count(*), coalesce(sum(p.amount_paise),0) FROM payment p JOIN op ON op.op_id = p.op_id "
        f"WHERE {who}substr(p.created_at,1,10)=:d AND op.state = :cancelled", _params(day, operator_id))[0]
    return cast("tuple[int, int]", row)


def voids_by_mode(run: RunSql, day: str, operator_id: str | None) -> Sequence[ModeRow]:
    """(mode, count, paise) of the voids of the day's payments (neither op cancelled in review)."""
    who = "" if operator_id is None else "p.operator_id=:o AND "
    return cast("Sequence[ModeRow]", run(
        "SELECT p.mode, count(*), coalesce(sum(p.amount_paise),0) FROM payment_void v "
        "JOIN payment p ON p.local_ref = v.payment_local_ref "
        "JOIN op pop ON pop.op_id = p.op_id JOIN op vop ON vop.op_id = v.op_id "
        f"WHERE {who}substr(p.created_at,1,10)=:d "
        "AND pop.state != :cancelled AND vop.state != :cancelled GROUP BY p.mode", _params(day, operator_id)))


def waivers(run: RunSql, day: str, operator_id: str | None, action: str) -> Sequence[WaiverRow]:
    """(reason, approved_by, count, waived paise) of the day's audited waivers (audit ``action``)."""
    actor = "" if operator_id is None else "actor=:o AND "
    return cast("Sequence[WaiverRow]", run(
        "SELECT json_extract(detail,'$.reason'), json_extract(detail,'$.approved_by'), count(*), "
        "coalesce(sum(json_extract(detail,'$.waived_paise')),0) FROM audit_log "
        f"WHERE {actor}action=:w AND substr(at,1,10)=:d GROUP BY 1, 2 ORDER BY 2, 1",
        _params(day, operator_id, w=action)))


def voids_by_approver(run: RunSql, day: str, operator_id: str | None) -> Sequence[ApproverRow]:
    """(approved_by, count, paise) of the voids of the day's payments, counted as :func:`voids_by_mode`."""
    who = "" if operator_id is None else "p.operator_id=:o AND "
    return cast("Sequence[ApproverRow]", run(
        "SELECT v.approved_by, count(*), coalesce(sum(p.amount_paise),0) FROM payment_void v "
        "JOIN payment p ON p.local_ref = v.payment_local_ref "
        "JOIN op pop ON pop.op_id = p.op_id JOIN op vop ON vop.op_id = v.op_id "
        f"WHERE {who}substr(p.created_at,1,10)=:d "
        "AND pop.state != :cancelled AND vop.state != :cancelled GROUP BY 1 ORDER BY 1", _params(day, operator_id)))


def reprints(run: RunSql, day: str, operator_id: str | None, action: str) -> Sequence[ReprintRow]:
    """(operator, count) of the day's audited reprints (audit ``action``)."""
    actor = "" if operator_id is None else "actor=:o AND "
    return cast("Sequence[ReprintRow]", run(
        f"SELECT actor, count(*) FROM audit_log WHERE {actor}action=:r AND substr(at,1,10)=:d "
        "GROUP BY 1 ORDER BY 1", _params(day, operator_id, r=action)))

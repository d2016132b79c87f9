"""The nightly job: push, refresh, reconcile yesterday and today, back up.

It keeps a counter ready for the next outage and proves the last days reached
central to the paisa. Each step is reported on its own, and a failing step
never stops the ones after it: the backup is taken whatever happened before
(a night without a backup is the one that will be needed).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import TYPE_CHECKING

from opd_fallback.application import reports
from opd_fallback.application.report_shapes import DayDict, NightlyDict, Step
from opd_fallback.config import Settings
from opd_fallback.domain.clock import now_iso, today_ist
from opd_fallback.domain.exits import ExitCode
from opd_fallback.store import backup as backups
from opd_fallback.store import readiness
from opd_fallback.store.engine import Store

if TYPE_CHECKING:
    from opd_fallback.domain.jsonio import JSONObject, JSONValue
    from opd_fallback.sync.client import CentralClient

EXIT_OK, EXIT_ATTENTION, EXIT_UNREACHABLE = ExitCode.OK, ExitCode.REFUSED, ExitCode.UNREACHABLE


def central_client(s: Settings) -> CentralClient:
    """The HTTP client to central from settings (``ValueError`` when not configured)."""
    from opd_fallback.sync.client import CentralClient

    return CentralClient.from_settings(s)


def _step(steps: list[Step], name: str, ok: bool, detail: str, **data: JSONValue) -> None:
    step: Step = {"name": name, "ok": ok, "detail": detail}
    if data:
        step["data"] = data
    steps.append(step)


def run_nightly(
    s: Settings, store: Store, *, today: date | None = None, client_factory: Callable[[Settings], CentralClient] = central_client,
    give_up_after_s: float = 60.0,
) -> NightlyDict:
    """The whole nightly job for one counter; returns the report (schema nightly/1).

    Central is probed first: when it does not answer, the network steps are
    skipped (nothing could be proven) and the backup is still taken."""
    from opd_fallback.application.reconcile import reconcile_day
    from opd_fallback.sync.client import SyncError

    day = today or today_ist()
    started_at = now_iso()
    steps: list[Step] = []
    days: list[DayDict] = []
    backup: JSONObject | None = None
    reasons: list[str] = []
    unreachable = False
    client = None
    try:
        client = client_factory(s)
    except ValueError as exc:
        unreachable = True
        _step(steps, "connect", False, str(exc))
        reasons.append(f"central: {exc}")
    if client is not None:
        try:
            client.health()
        except SyncError as exc:
            unreachable = True
            _step(steps, "connect", False, f"central did not answer: {exc}")
            reasons.append(f"central did not answer, nothing could be reconciled: {exc}")
            client.close()
            client = None
    if client is not None:
        with client:
            # a restored counter checks its numbers first
            try:
                check = readiness.ensure_ready(store, client, device_id=s.device_id, actor="nightly")
                if check is not None:
                    _step(steps, "numbers", True, f"restored counter continues above central's seq "
                          f"{check.central_max_seq} (now {check.local_seq_after})")
            except (SyncError, readiness.WrongDevice) as exc:
                _step(steps, "numbers", False, f"restored counter could not check its numbers: {exc}")
                reasons.append("this counter was restored and cannot take new work until central answers")
            # push what is pending
            try:
                from opd_fallback.sync.engine import sync_once

                summary = sync_once(store, client, s, give_up_after_s=give_up_after_s)
                sd = summary.as_dict()
                ok = summary.outcome == "ok"
                _step(steps, "push", ok, f"{summary.outcome}: {summary.synced} synced, "
                      f"{summary.still_waiting} waiting, {summary.needs_person} need a person"
                      + (f" ({summary.message})" if summary.message else ""), summary=sd)
                if summary.outcome in ("unreachable", "unauthorized"):
                    unreachable = True
                if not ok:
                    reasons.append(f"sync: {summary.message or summary.outcome}")
            except Exception as exc:  # the night goes on: reconcile and back up anyway
                _step(steps, "push", False, f"sync failed: {exc}")
                reasons.append(f"sync failed: {exc}")
            # master data, patient index, id blocks
            try:
                from opd_fallback.sync.refresh import refresh_all

                fresh = refresh_all(store, client, s, give_up_after_s=give_up_after_s)
                _step(steps, "refresh", fresh.ok, fresh.message, summary=fresh.as_dict())
                if fresh.unreachable or fresh.unauthorized:
                    unreachable = True
                if not fresh.ok:
                    reasons.append(f"refresh: {fresh.message}")
            except Exception as exc:
                _step(steps, "refresh", False, f"refresh failed: {exc}")
                reasons.append(f"refresh failed: {exc}")
            # reconcile yesterday and today so far
            for d in (day - timedelta(days=1), day):
                try:
                    rep = reconcile_day(store, client, s.device_id, d, actor="nightly")
                except Exception as exc:  # a broken local database: say so, and still back up below
                    _step(steps, f"reconcile {d.isoformat()}", False, f"reconcile failed: {exc}"[:500])
                    reasons.append(f"{d.isoformat()}: reconcile failed: {type(exc).__name__}: {exc}")
                    continue
                days.append(rep.as_dict())
                _step(steps, f"reconcile {d.isoformat()}", rep.status == "clean",
                      "clean" if rep.status == "clean" else "; ".join(rep.reasons())[:500])
                if rep.status == "unreachable":
                    unreachable = True
                reasons.extend(f"{d.isoformat()}: {r}" for r in rep.reasons())
    # back up whatever happened above
    try:
        res = backups.backup(s.db_path, s.backups_dir, keep=s.backups_keep, device_id=s.device_id or None)
        backup = res.as_dict()
        _step(steps, "backup", res.ok, f"{res.path.name}: integrity {res.integrity}, "
              f"{len(res.removed)} old backup(s) rotated away")
        if not res.ok:
            reasons.append(f"BACKUP FAILED its integrity check: {res.integrity}")
    except (backups.BackupError, OSError) as exc:
        _step(steps, "backup", False, f"backup failed: {exc}")
        reasons.append(f"BACKUP FAILED: {exc}")
    return {"schema": reports.NIGHTLY_SCHEMA, "device_id": s.device_id, "started_at": started_at,
            "steps": steps, "days": days, "backup": backup, "reasons": reasons,
            "status": "unreachable" if unreachable else ("attention" if reasons else "clean"),
            "exit_code": EXIT_UNREACHABLE if unreachable else (EXIT_ATTENTION if reasons else EXIT_OK),
            "finished_at": now_iso()}

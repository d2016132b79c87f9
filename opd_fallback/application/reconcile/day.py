"""``reconcile_day``: compare the two sides and, on a difference, page through
central's op_ids and classify every op (a lost response marked synced with the
remembered outcome, never resent; missing centrally reported and optionally
requeued; unknown here reported). Exit codes: 0 clean, 1 attention, 3 unreachable."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from typing import Protocol

from opd_fallback.application.reconcile.drift import misdated_ops, payload_mismatches
from opd_fallback.application.reconcile.local import (
    DaySummary,
    LocalOp,
    _op_brief,
    compare,
    load_day,
    summarize,
)
from opd_fallback.application.reconcile.report import DayReport, _always
from opd_fallback.domain.clock import now_iso
from opd_fallback.domain.contract import OpResult, Reconciliation, ReconciliationOps
from opd_fallback.domain.jsonio import dumps
from opd_fallback.store import audit, outbox, writeback
from opd_fallback.store.engine import Store
from opd_fallback.store.states import SYNCED

OUTCOME_WORKERS = 4  # GET /ops/{op_id} in flight at once when classifying


class ReconcileClient(Protocol):
    def reconciliation(self, date: str, device_id: str) -> Reconciliation: ...
    def reconciliation_ops(self, date: str, device_id: str, cursor: str | None = None) -> ReconciliationOps: ...
    def get_op(self, op_id: str) -> OpResult | None: ...


def central_op_ids(client: ReconcileClient, day: str, device_id: str) -> tuple[list[str], int]:
    """Every page of ``/reconciliation/ops``; (op_ids in the server's order, pages)."""
    ids: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = client.reconciliation_ops(day, device_id, cursor)
        pages += 1
        ids.extend(page.op_ids)
        if page.done or not page.next_cursor:
            return ids, pages
        if page.next_cursor == cursor:
            raise RuntimeError("the server's reconciliation pages do not advance")
        cursor = page.next_cursor


# ------------------------------------------------------------------ repairs
def mark_synced_many(
    store: Store, items: list[tuple[str, str, str | None, OpResult]], *, actor: str, chunk: int = 500,
) -> dict[str, str]:
    """Record central's remembered outcome for ops it applied but never acknowledged,
    ``chunk`` per transaction; op_id -> state before.

    The ops are not resent, so a second application is impossible from here.
    Their records learn central ids exactly as the sync engine books an
    ``applied`` answer (:mod:`opd_fallback.store.writeback`).
    """

    before: dict[str, str] = {}
    for i in range(0, len(items), chunk):
        part = items[i:i + chunk]
        now = now_iso()
        records: writeback.Rows = {}
        rows = []
        for op_id, kind, record_ref, outcome in part:
            result = outcome.result or {}
            writeback.collect(kind, record_ref, result, records)
            rows.append({"st": outcome.status, "res": dumps(result), "now": now, "id": op_id})
        with store.write() as s:
            for op_id, *_ in part:
                before[op_id] = str(outbox.op_state(s, op_id))
            outbox.transition(s, "synced", rows)
            writeback.write(s, records)
            for op_id, _kind, _ref, outcome in part:
                audit.record(s, actor, "reconcile.mark_synced", op_id, was=before[op_id],
                             central_status=outcome.status)
    return before


def requeue(store: Store, op_ids: list[str], *, actor: str, day: str) -> int:
    """Put synced ops central has lost back in the queue (loudly, in the audit log)."""
    if not op_ids:
        return 0
    reason = f"central lost this op (reconciliation of {day}); sent again"
    with store.write() as s:
        n = outbox.transition(s, "requeued", [{"id": op_id, "why": reason} for op_id in op_ids])
        audit.record(s, actor, "reconcile.requeue_missing", day, count=n, op_ids=op_ids[:1000])
    return n


# ------------------------------------------------------------------ the job
def reconcile_day(
    store: Store, client: ReconcileClient, device_id: str, day: date, *,
    requeue_missing: bool = False, actor: str = "reconcile",
) -> DayReport:
    """Reconcile ``device_id``'s ``day``; never raises for an unreachable server
    (the report says ``unreachable``), only for a broken local database."""
    from opd_fallback.sync.client import SyncError

    t0 = time.perf_counter()
    rep = DayReport(date=day.isoformat(), device_id=device_id, requeue_missing=requeue_missing)
    d = rep.date
    ops = load_day(store, device_id, day)
    rep.local, rep.voids_amount_unknown = summarize(store, ops)
    try:
        rep.central = DaySummary.from_central(client.reconciliation(d, device_id))
        rep.differences_found = compare(rep.local, rep.central)
        if rep.differences_found:
            central_ids, rep.central_pages = central_op_ids(client, d, device_id)
            _classify(store, client, rep, ops, set(central_ids), requeue_missing=requeue_missing, actor=actor)
            ops = load_day(store, device_id, day)
            rep.local, rep.voids_amount_unknown = summarize(store, ops)
            rep.differences = compare(rep.local, rep.central)
    except SyncError as exc:
        rep.status, rep.error = "unreachable", f"central could not be asked: {exc}"
    except (RuntimeError, ValueError) as exc:  # an answer that does not follow the contract
        rep.status, rep.error = "unreachable", f"central's answer could not be used: {exc}"
    _always(rep, ops)
    rep.payload_mismatches = payload_mismatches(store, ops.values())
    rep.misdated = misdated_ops(store, device_id, day)
    if rep.status != "unreachable":
        rep.status = "attention" if rep.reasons() else "clean"
    rep.elapsed_s = time.perf_counter() - t0
    return rep


def _classify(
    store: Store, client: ReconcileClient, rep: DayReport, ops: dict[str, LocalOp], central_ids: set[str],
    *, requeue_missing: bool, actor: str,
) -> None:
    synced = {i for i, op in ops.items() if op.state == SYNCED}
    ours: list[LocalOp] = []
    for op_id in sorted(central_ids - synced):
        op = ops.get(op_id)
        if op is None:
            rep.unknown_here.append({"op_id": op_id})
        else:
            ours.append(op)
    # central's remembered outcome of each (a few requests in flight; the client is thread-safe)
    with ThreadPoolExecutor(max_workers=OUTCOME_WORKERS) as pool:
        outcomes = list(pool.map(lambda o: client.get_op(o.op_id), ours))
    to_mark = []
    for op, outcome in zip(ours, outcomes):
        if outcome is None or outcome.status not in ("applied", "duplicate"):
            # listed as applied but no remembered outcome: report, never guess
            rep.unknown_here.append({**_op_brief(op), "central_status": None if outcome is None else outcome.status})
        else:
            to_mark.append((op, outcome))
    before = mark_synced_many(store, [(op.op_id, op.kind, op.record_ref, out) for op, out in to_mark], actor=actor)
    for op, outcome in to_mark:
        rep.marked_synced.append({**_op_brief(op), "state": "synced", "previous_state": before[op.op_id],
                                  "central_status": outcome.status, "result": outcome.result})
    missing = sorted((ops[i] for i in synced - central_ids), key=lambda o: o.seq)
    done = set()
    if requeue_missing and missing:
        requeue(store, [m.op_id for m in missing], actor=actor, day=rep.date)
        done = {m.op_id for m in missing}
    for op in missing:
        requeued = op.op_id in done
        rep.missing_centrally.append({**_op_brief(op), "state": "pending" if requeued else op.state,
                                      "requeued": requeued})

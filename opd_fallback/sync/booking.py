"""Booking a batch's answers: the outbox transitions and the central ids written
back on the counter's records, in short transactions; and the run's shared
state (``_Run``) that lanes, the writer thread and the main thread update.

Transactions: an op's move and its record's central ids are committed together;
a batch is booked :data:`BOOK_OPS` ops per transaction (short: the counter's
saves wait for the write lock behind each), in its order (a lab order's booking
reads its visit's). They commit without an fsync (``Store.write(durable=False)``):
a power cut may take back the last bookings, and then those ops are simply still
pending: sent again, central answers ``duplicate`` with the same result, and they
are booked then. A killed process loses nothing committed (the WAL is written).

Decisions: applied and duplicate answers move an op to ``synced`` and store its
result; rejected and conflict flag it for a person with a reason (one is made
up when the server gave none); deferred keeps it pending until it has waited
``max_deferred_wait_s``, then flags it as a conflict naming what it waits for
(looked up with ``GET /refs`` when the client can). A status outside the
contract keeps the op pending with the words. Every move goes through the
outbox's one table of transitions (``store.outbox.transition``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

from opd_fallback.domain.clock import now_iso
from opd_fallback.domain.errors import error_words
from opd_fallback.domain.jsonio import dumps, dumps_or_none
from opd_fallback.store import outbox, writeback
from opd_fallback.store.engine import Store
from opd_fallback.sync.batching import PendingOp
from opd_fallback.sync.seam import Answer
from opd_fallback.sync.summary import SyncSummary

Progress = Callable[[int, int], None]

# ops booked per transaction: each holds the write lock a few ms, so a counter's
# save (F10) never waits long behind the sync: ~5 ms of CPU each (a whole 500-op batch: ~10 ms
# of CPU and an fsync, 25-35 ms; 100 ops: 3 ms but a third more CPU per op, as every commit
# writes the index pages it touched)
BOOK_OPS = 250


def _err_json(err: object) -> str | None:
    return dumps_or_none(err)


class _Run:
    """Mutable state of one run shared by lanes, the writer and the main thread."""

    def __init__(self, total: int, progress: Progress | None) -> None:
        self.total = total
        self.progress = progress
        self.done = 0
        self.abort = threading.Event()
        self.fatal: BaseException | None = None
        self.lock = threading.Lock()
        self.answered: set[str] = set()
        self.deferred_now: dict[str, str] = {}  # op_id -> error code, this round
        self.held: dict[str, str] = {}
        self.applied_this_round = 0

    def fail(self, exc: BaseException) -> None:
        with self.lock:
            if self.fatal is None:
                self.fatal = exc
        self.abort.set()

    def advance(self, n: int) -> None:
        if n <= 0:
            return
        with self.lock:
            self.done = min(self.total, self.done + n)
            done = self.done
        if self.progress:
            try:
                self.progress(done, self.total)
            except Exception:
                pass  # a broken progress display never stops a sync


def looked_up(client: object, err: object) -> object:
    """Contract 1.2: an op flagged for waiting too long says what it waits for
    (``error.waiting_for``); an offline number is looked up with ``GET /refs``
    so the review line can say whether central knows it by now. Kept in the
    error as ``looked_up`` (``{"found": false}`` when central does not know it);
    a lookup that fails is left out (the line then names only the number)."""
    if not isinstance(err, dict):
        return err
    waiting = err.get("waiting_for")
    lref = waiting.get("local_ref") if isinstance(waiting, dict) else None
    lookup = getattr(client, "ref", None)
    if not isinstance(lref, str) or lookup is None:
        return err
    try:
        info = lookup(lref)
    except Exception:  # any failure to ask: the review line names the number alone
        return err
    found = {"found": False} if info is None else {"found": True, **info.model_dump(mode="json")}
    return {**err, "looked_up": found}


def deferred_too_long(op: PendingOp, now: datetime, max_wait_s: float) -> bool:
    if not op.first_deferred_at:
        return max_wait_s <= 0
    try:
        first = datetime.fromisoformat(op.first_deferred_at)
    except ValueError:
        return False
    return (now - first).total_seconds() >= max_wait_s


def book(store: Store, client: object, max_wait_s: float, batch: list[PendingOp],
         results: list[Answer], run: _Run, summary: SyncSummary) -> int:
    """Store one batch's answers and the central ids they carry, :data:`BOOK_OPS`
    ops per transaction (in the batch's order). Returns how many ops reached a
    final (or flagged) state."""
    fresh = 0
    for i in range(0, len(batch), BOOK_OPS):
        fresh += _book(store, client, max_wait_s, batch[i:i + BOOK_OPS], results[i:i + BOOK_OPS], run, summary)
    return fresh


def _book(store: Store, client: object, max_wait_s: float, batch: list[PendingOp],
          results: list[Answer], run: _Run, summary: SyncSummary) -> int:
    """Store some of a batch's answers and the central ids they carry in ONE transaction."""
    now = now_iso()
    now_dt = datetime.fromisoformat(now)
    synced: list[dict[str, object]] = []
    flags: list[dict[str, object]] = []
    defers: list[dict[str, object]] = []
    records: writeback.Rows = {}
    counts = {"applied": 0, "duplicate": 0, "rejected": 0, "conflict": 0, "deferred": 0, "too_long": 0}
    reasons: list[str] = []
    for op, r in zip(batch, results):
        st = r.get("status")
        err = r.get("error")
        if st in ("applied", "duplicate"):
            res = r.get("result") or {}
            synced.append({"id": op.op_id, "st": st, "res": dumps(res), "now": now})
            writeback.collect(op.kind, op.record_ref, res if isinstance(res, dict) else {}, records)
            counts[st] += 1
        elif st in ("rejected", "conflict"):
            # the contract makes ``error`` optional; a flagged op always carries a reason
            err = err or {"code": "no_reason_given", "message": f"the server answered {st} without a reason"}
            flags.append({"id": op.op_id, "state": st, "st": st, "err": _err_json(err), "why": None,
                          "now": now})
            counts[st] += 1
            reasons.append(f"{op.label()}: {st} ({error_words(err)})")
        elif st == "deferred":
            code = err.get("code", "") if isinstance(err, dict) else ""
            why = f"the server deferred it: {error_words(err)}" if err else "the server deferred it"
            if deferred_too_long(op, now_dt, max_wait_s):
                err = looked_up(client, err)
                flags.append({"id": op.op_id, "state": "conflict", "st": "deferred", "err": _err_json(err),
                              "why": "waited too long for a dependency: " + why, "now": now})
                counts["too_long"] += 1
                reasons.append(f"{op.label()}: waited too long ({error_words(err)})")
            else:
                defers.append({"id": op.op_id, "err": _err_json(err), "why": why, "now": now})
                counts["deferred"] += 1
                with run.lock:
                    run.deferred_now[op.op_id] = code
        else:  # not in the contract: keep it pending with the words
            defers.append({"id": op.op_id, "err": _err_json(r), "now": now,
                           "why": f"the server answered an unknown status {st!r}; will resend"})
    with store.write(durable=False) as s:
        outbox.transition(s, "synced", synced)
        outbox.transition(s, "flagged", flags)
        outbox.transition(s, "deferred", defers)
        writeback.write(s, records)
    with run.lock:
        summary.applied += counts["applied"]
        summary.duplicate += counts["duplicate"]
        summary.rejected += counts["rejected"]
        summary.conflict += counts["conflict"]
        summary.deferred += counts["deferred"]
        summary.waited_too_long += counts["too_long"]
        for words in reasons:
            summary.add_reason(words)
        run.applied_this_round += counts["applied"] + counts["duplicate"]
        new = [op.op_id for op, r in zip(batch, results) if r.get("status") != "deferred"]
        fresh = len([i for i in new if i not in run.answered])
        run.answered.update(new)
    return fresh

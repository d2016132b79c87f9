"""The sync engine: replay the outbox to central, exactly once in effect, in
dependency order, fast, and gently.

One run: take the lease; read every pending op (raw SQL, envelopes spliced from
the stored JSON); hold back ops whose dependency is flagged; deal independent
dependency chains to a few lanes; each lane posts its batches in order (a batch
is sent only after the previous one of its lane was answered) while a single
writer thread books each answer (pipelining: batch N+1 is on the wire while N
is being stored), in transactions of ``booking.BOOK_OPS`` ops that hold the
write lock a few milliseconds each. Deferred ops are retried for a bounded
number of rounds. Transport failures resend the same ops (idempotent by
op_id); a down server trips the circuit breaker (one health probe at a time).
Nothing is dropped: at the end every op the run saw is synced or carries its
reason (``state``/``last_error`` for flagged ops, ``wait_reason`` for waiting
ones), and the outcome is written to ``meta`` for ``opd-fallback status``.

Modules: this one runs rounds, lanes and the writer thread; ``booking`` stores
a batch's answers; ``summary`` is what a run reports; ``seam`` is what the
engine needs of central. Names are re-exported here for callers.
"""

from __future__ import annotations

import gc
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from opd_fallback.config import Settings
from opd_fallback.domain.clock import now_iso
from opd_fallback.domain.errors import error_words
from opd_fallback.domain.jsonio import dumps
from opd_fallback.store import lease as leases
from opd_fallback.store import meta, outbox, reads
from opd_fallback.store.engine import Store
from opd_fallback.store.readiness import check_with_central
from opd_fallback.store.states import FLAGGED, PENDING
from opd_fallback.sync import booking
from opd_fallback.sync.batching import (
    Damaged,
    LaneQueue,
    PendingOp,
    Plan,
    batch_body,
    load_flagged,
    load_pending,
    plan,
)
from opd_fallback.sync.booking import _Run
from opd_fallback.sync.client import (
    PayloadTooLarge,
    RequestRefused,
    SyncError,
    TransientError,
    Unauthorized,
)
from opd_fallback.sync.retry import (
    CircuitBreaker,
    Patience,
    ServerDown,
    Stopped,
    call_with_retries,
    full_jitter,
)
from opd_fallback.sync.seam import Answer, CentralForSync
from opd_fallback.sync.summary import (
    BUSY,
    ERROR,
    LAST_SYNC_AT,
    LAST_SYNC_OK_AT,
    LAST_SYNC_OUTCOME,
    NEEDS_PERSON,
    OK,
    STOPPED,
    UNAUTHORIZED,
    UNREACHABLE,
    Progress,
    SyncSummary,
)

__all__ = [
    "BUSY", "ERROR", "LAST_SYNC_AT", "LAST_SYNC_OK_AT", "LAST_SYNC_OUTCOME", "NEEDS_PERSON", "OK", "STOPPED",
    "UNAUTHORIZED", "UNREACHABLE", "CentralForSync", "Progress", "SyncEngine", "SyncSummary", "sync_once",
]

# a lane's answered batches on their way to the writer thread (None: no more)
Answers = queue.Queue[tuple[list[PendingOp], list[Answer]] | None]


class SyncEngine:
    """Sync one counter database with central.

    ``SyncEngine(store, client, settings).run(progress=None) -> SyncSummary``;
    ``watch(...)`` keeps doing it. ``settings`` supplies ``batch_size`` and
    ``batches_in_flight``; keyword arguments override them.
    """

    def __init__(
        self,
        store: Store,
        client: CentralForSync,
        settings: Settings | None = None,
        *,
        batch_size: int | None = None,
        lanes: int | None = None,
        max_rounds: int = 4,
        round_pause_s: float = 0.3,
        max_deferred_wait_s: float | None = None,
        give_up_after_s: float | None = 60.0,
        lease_wait_s: float = 0.0,
        use_lease: bool = True,
        stop: threading.Event | None = None,
        on_warning: Callable[[str], None] | None = None,
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        self.store = store
        self.client = client
        tuning = settings if settings is not None else Settings.model_construct()  # the defaults, no env
        self.batch_size = batch_size or tuning.batch_size
        self.lanes = lanes or tuning.batches_in_flight
        self.max_rounds = max_rounds
        self.round_pause_s = round_pause_s
        self.max_deferred_wait_s = (max_deferred_wait_s if max_deferred_wait_s is not None
                                    else float(tuning.max_deferred_wait_s))
        self.give_up_after_s = give_up_after_s
        self.lease_wait_s = lease_wait_s
        self.use_lease = use_lease
        self.stop = stop or threading.Event()
        self.on_warning = on_warning
        self.on_event = on_event
        self._warnings: list[str] = []
        prev = client.on_warning

        def warn(msg: str) -> None:
            self._warnings.append(msg)
            if prev:
                prev(msg)
            if self.on_warning:
                self.on_warning(msg)

        client.on_warning = warn

    # ------------------------------------------------------------------ public
    def run(self, progress: Progress | None = None) -> SyncSummary:
        """One sync run; never raises for server trouble (see ``summary.outcome``)."""
        summary = SyncSummary(started_at=now_iso(), started_unix=time.time())
        t0 = time.monotonic()
        first_warning = len(self._warnings)
        lease: leases.Lease | None = None
        if self.use_lease:
            try:
                lease = leases.acquire(self.store, wait_s=self.lease_wait_s)
            except leases.LeaseHeld as exc:
                summary.outcome, summary.message = BUSY, str(exc)
                try:  # the queue as it stands (the other sync books its own outcome)
                    self._queue_counts(summary)
                except Exception as qexc:
                    summary.warnings.append(f"could not read the queue: {qexc}")
                summary.elapsed_s = time.monotonic() - t0
                summary.finished_at = now_iso()
                return summary
        # --give-up-after bounds every request, retry sleep and Retry-After wait of this run
        patience = Patience(self.give_up_after_s)
        previous_deadline = getattr(self.client, "deadline", None)
        self.client.deadline = patience.deadline
        try:
            self._run(summary, progress, lease, patience)
        finally:
            self.client.deadline = previous_deadline
            summary.elapsed_s = time.monotonic() - t0
            summary.finished_at = now_iso()
            summary.finished_unix = time.time()
            clock = [self.client.clock_warning] if self.client.clock_warning else []
            summary.warnings = list(dict.fromkeys(self._warnings[first_warning:] + clock))
            try:
                self._finish(summary)
            finally:
                if lease is not None:
                    lease.release()
        return summary

    def watch(
        self,
        progress: Progress | None = None,
        *,
        interval_s: float = 5.0,
        on_summary: Callable[[SyncSummary], None] | None = None,
        probe_cap_s: float = 30.0,
        retry_waiting_s: float = 60.0,
    ) -> None:
        """Sync until ``self.stop`` is set: wait (probing gently) while central is
        down, sync when it answers, then look for new ops every ``interval_s``.
        Ops that still wait (deferred, held back) are retried every
        ``retry_waiting_s`` unless something in the outbox changes sooner."""
        attempt = 0
        last_outcome = None
        last_sig: tuple[int, ...] | None = None
        last_run = 0.0
        while not self.stop.is_set():
            if last_outcome in (UNREACHABLE, UNAUTHORIZED, None):
                try:
                    self.client.health()
                    attempt = 0
                except Exception as exc:
                    self._event(f"central not answering ({exc}); next probe soon")
                    delay = max(0.2, full_jitter(attempt, 0.5, probe_cap_s), getattr(exc, "retry_after", 0) or 0)
                    attempt += 1
                    if last_outcome is None:
                        last_outcome = UNREACHABLE
                    self.stop.wait(delay)
                    continue
            if last_outcome not in (UNREACHABLE, UNAUTHORIZED, BUSY, None):
                sig = self._signature()
                if sig[0] == 0 or (sig == last_sig and time.monotonic() - last_run < retry_waiting_s):
                    self.stop.wait(interval_s)
                    continue
            summary = self.run(progress)
            last_run, last_sig = time.monotonic(), self._signature()
            last_outcome = summary.outcome
            if on_summary:
                on_summary(summary)
            if summary.outcome not in (UNREACHABLE, UNAUTHORIZED):
                self.stop.wait(interval_s if summary.still_waiting == 0 else max(interval_s, 1.0))

    # ------------------------------------------------------------------ steps
    def _event(self, msg: str) -> None:
        if self.on_event:
            try:
                self.on_event(msg)
            except Exception:
                pass

    def _signature(self) -> tuple[int, ...]:
        """Changes when ops are recorded, decided in review, or cancelled (cheap: indexed)."""
        with self.store.read() as s:
            return reads.signature(s)

    def _load_pending(self, summary: SyncSummary) -> list[PendingOp]:
        """Pending ops to send; damaged ones are quarantined for a person (the rest still go)."""
        damaged: list[Damaged] = []
        with self.store.read() as s:
            pending = load_pending(s, damaged)
        if damaged:
            with self.store.write() as s:
                done = [d for d in damaged if outbox.quarantine(s, d.seq, d.reason, raw_payload=d.raw_payload)]
            summary.quarantined += len(done)
            for d in done:
                summary.add_reason(f"{d.label()}: not sent, {d.reason}; set aside for a person (opd-fallback review)")
        return pending

    def _run(self, summary: SyncSummary, progress: Progress | None, lease: leases.Lease | None,
             patience: Patience) -> None:
        run = _Run(0, progress)
        breaker = CircuitBreaker(
            self.client.health, stop=run.abort, patience=patience,
            on_state=lambda st, why: self._event(f"circuit {st}{': ' + why if why else ''}"),
        )
        # one cheap call first: is central there, does it take our token (and its clock)? This
        # counter's numbers continue above central's max_seq (after a restore, or a database that
        # went back in time). It touches no op, so it runs while the outbox is read: the first
        # batch leaves as soon as both are done
        checked: list[BaseException] = []

        def check() -> None:
            try:
                call_with_retries(lambda: check_with_central(self.store, self.client, actor="sync"), breaker,
                                  max_elapsed_s=self.give_up_after_s)
            except BaseException as exc:
                checked.append(exc)

        checker = threading.Thread(target=check, name="sync-check", daemon=True)
        checker.start()
        try:
            pending = self._load_pending(summary)
        except BaseException:
            run.abort.set()  # the check stops retrying; its request has its own deadline
            raise
        checker.join()
        summary.total = run.total = len(pending)
        if progress:
            progress(0, run.total)
        counted_blocked: set[str] = set()
        seen_ids = {op.op_id for op in pending}
        if checked:
            run.fail(checked[0])
            summary.probes = breaker.probes
            self._conclude(summary, run, seen_ids)
            return
        for rnd in range(self.max_rounds):
            if rnd > 0:
                pending = self._load_pending(summary)
                seen_ids.update(op.op_id for op in pending)
            if not pending:
                break
            with self.store.read() as s:
                flagged = load_flagged(s)
            the_plan = plan(pending, flagged, self.lanes)
            summary.rounds = rnd + 1
            self._store_waits(the_plan.blocked)
            new_blocked = [i for i in the_plan.blocked if i not in counted_blocked]
            counted_blocked.update(new_blocked)
            for op_id in new_blocked[: max(0, 10 - len(summary.reasons))]:
                summary.add_reason(the_plan.blocked[op_id])
            run.advance(len(new_blocked))
            if not the_plan.lanes:
                break
            run.deferred_now = {}
            run.held = {}
            run.applied_this_round = 0
            self._round(the_plan, run, summary, breaker, lease)
            summary.probes = breaker.probes
            self._store_waits(run.held)
            if run.fatal is not None or self.stop.is_set():
                break
            retry_worthy = any(code == "dependency_missing" for code in run.deferred_now.values()) or run.held
            if not (retry_worthy and run.applied_this_round):
                break
            if self.stop.wait(self.round_pause_s * (2 ** rnd)):
                break
        if run.fatal is None and not self.stop.is_set() and (run.deferred_now or run.held):
            # what still waits behind an op that got flagged in the last round says so
            with self.store.read() as s:
                rest, flagged = load_pending(s), load_flagged(s)
            final = plan(rest, flagged, 1).blocked
            self._store_waits(final)
            counted_blocked.update(final)
        summary.held_back = len(counted_blocked | set(run.held))
        self._conclude(summary, run, seen_ids)

    def _round(self, the_plan: Plan, run: _Run, summary: SyncSummary, breaker: CircuitBreaker,
               lease: leases.Lease | None) -> None:
        # what exists now (the program, the loaded ops) lives through the round: the cycle
        # collector's full passes skip it (gc.freeze) and see only what the round makes
        gc.freeze()
        try:
            self._lanes(the_plan, run, summary, breaker, lease)
        finally:
            gc.unfreeze()

    def _lanes(self, the_plan: Plan, run: _Run, summary: SyncSummary, breaker: CircuitBreaker,
               lease: leases.Lease | None) -> None:
        writes: Answers = queue.Queue(maxsize=8)
        writer = threading.Thread(target=self._writer, args=(writes, run, summary), name="sync-writer", daemon=True)
        writer.start()
        lanes = [LaneQueue(ops, self.batch_size) for ops in the_plan.lanes]
        threads = [threading.Thread(target=self._lane, args=(lq, run, summary, breaker, writes, lease),
                                    name=f"sync-lane-{i}", daemon=True) for i, lq in enumerate(lanes)]
        for t in threads:
            t.start()
        for t in threads:
            while t.is_alive():
                t.join(timeout=0.2)
                if self.stop.is_set() and not run.abort.is_set():
                    run.fail(Stopped("sync stopped"))
        writes.put(None)
        writer.join()
        for lq in lanes:
            run.held.update(lq.held)
        run.advance(len(run.held))

    def _lane(self, lq: LaneQueue, run: _Run, summary: SyncSummary, breaker: CircuitBreaker,
              writes: Answers, lease: leases.Lease | None) -> None:
        try:
            while not run.abort.is_set():
                if lease is not None and lease.lost:
                    raise Stopped("another sync took over this database's lease")
                batch = lq.next_batch()
                if not batch:
                    return
                results = self._send(batch, breaker, summary)
                for op, r in zip(batch, results):
                    st = r.get("status")
                    if st not in ("applied", "duplicate"):
                        lq.note(op, self._status_words(st, r.get("error")))
                writes.put((batch, results))
        except BaseException as exc:
            run.fail(exc)

    @staticmethod
    def _status_words(status: object, err: object) -> str:
        words = {"rejected": "the server rejected", "conflict": "needs a person's decision",
                 "deferred": "the server deferred"}.get(str(status), f"got {status}")
        return words + (f" ({error_words(err)})" if err else "")

    def _send(self, batch: list[PendingOp], breaker: CircuitBreaker, summary: SyncSummary) -> list[Answer]:
        """Post one batch until answered; a 413 splits it."""
        body = batch_body(batch)
        ids = [op.op_id for op in batch]

        def post() -> list[Answer]:
            results = self.client.push_batch_raw(body)
            if [r.get("op_id") if isinstance(r, dict) else None for r in results] != ids:
                raise TransientError(f"the server answered {len(results)} results for {len(ids)} ops, out of order")
            return results

        def count_retry(exc: BaseException, n: int) -> None:
            summary.retries += 1
            self._event(f"batch of {len(batch)} ops: {exc}; trying again")

        try:
            results = call_with_retries(post, breaker, max_elapsed_s=self.give_up_after_s, on_retry=count_retry)
        except PayloadTooLarge:
            if len(batch) == 1:
                return [{"op_id": batch[0].op_id, "status": "rejected", "result": None,
                         "error": {"code": "payload_too_large",
                                   "message": "the server refused this op as too large (413)"}}]
            mid = len(batch) // 2
            return self._send(batch[:mid], breaker, summary) + self._send(batch[mid:], breaker, summary)
        summary.batches += 1
        return results

    # ------------------------------------------------------------------ booking
    def _writer(self, writes: Answers, run: _Run, summary: SyncSummary) -> None:
        while True:
            item = writes.get()
            if item is None:
                return
            batch, results = item
            try:
                n = self._book(batch, results, run, summary)
            except BaseException as exc:
                run.fail(exc)
                continue
            run.advance(n)

    def _book(self, batch: list[PendingOp], results: list[Answer], run: _Run,
              summary: SyncSummary) -> int:
        return booking.book(self.store, self.client, self.max_deferred_wait_s, batch, results, run, summary)

    def _store_waits(self, reasons: dict[str, str]) -> None:
        if not reasons:
            return
        now = now_iso()
        with self.store.write() as s:
            outbox.transition(s, "waiting", [{"id": i, "why": w, "now": now} for i, w in reasons.items()])

    def _conclude(self, summary: SyncSummary, run: _Run, seen: set[str]) -> None:
        exc = run.fatal
        if exc is None and self.stop.is_set():
            exc = Stopped("sync stopped")
        if exc is not None:
            summary.outcome, summary.message, why = self._classify(exc)
            # every op this run saw but could not finish says why it is still waiting
            with self.store.read() as s:
                pending = reads.pending_op_ids(s)
            unsent = {op_id: why for op_id in pending if op_id in seen and op_id not in run.answered
                      and op_id not in run.deferred_now and op_id not in run.held}
            self._store_waits(unsent)
            summary.add_reason(summary.message)

    @staticmethod
    def _classify(exc: BaseException) -> tuple[str, str, str]:
        if isinstance(exc, Unauthorized):
            msg = "the central server refused this counter's token; ask IT for a new one (opd-fallback init --token)"
            return UNAUTHORIZED, msg, "not sent: " + msg
        if isinstance(exc, ServerDown):
            return UNREACHABLE, str(exc), f"not sent yet: {exc}; it will be sent when central answers"
        if isinstance(exc, (TransientError,)) or getattr(exc, "retry_after", None) is not None:
            return UNREACHABLE, f"the central server kept failing: {exc}", f"not sent yet: central kept failing ({exc})"
        if isinstance(exc, Stopped):
            return STOPPED, str(exc), f"not sent yet: {exc}"
        if isinstance(exc, RequestRefused):
            return ERROR, f"the central server refused the request: {exc} {exc.body!r}"[:500], f"not sent: {exc}"
        if isinstance(exc, SyncError):
            return ERROR, str(exc), f"not sent: {exc}"
        return ERROR, f"sync failed: {type(exc).__name__}: {exc}", f"not sent: sync failed ({type(exc).__name__})"

    def _queue_counts(self, summary: SyncSummary) -> None:
        """``still_waiting`` and ``needs_person``: where the outbox stands now."""
        with self.store.read() as s:
            counts = reads.counts_in(s, (PENDING, *FLAGGED))
        summary.still_waiting = counts.get(PENDING, 0)
        summary.needs_person = sum(counts.get(st, 0) for st in FLAGGED)

    def _finish(self, summary: SyncSummary) -> None:
        """Where the outbox stands now, and the outcome in meta for status/TUI."""
        try:
            self._queue_counts(summary)
            if summary.outcome == OK and summary.needs_person:
                summary.outcome = NEEDS_PERSON
            with self.store.write() as s:
                meta.put(s, LAST_SYNC_AT, summary.finished_at)
                if summary.outcome in (OK, NEEDS_PERSON):
                    meta.put(s, LAST_SYNC_OK_AT, summary.finished_at)
                meta.put(s, LAST_SYNC_OUTCOME, dumps(summary.as_dict()))
        except Exception as exc:  # the run's result stands even if bookkeeping fails
            summary.warnings.append(f"could not record the sync outcome: {exc}")


def sync_once(store: Store, client: CentralForSync, settings: Settings | None = None, progress: Progress | None = None,
              **kw: Any) -> SyncSummary:
    """Convenience: ``SyncEngine(store, client, settings, **kw).run(progress)``."""
    return SyncEngine(store, client, settings, **kw).run(progress)

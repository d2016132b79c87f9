"""Booking a batch's answers holds the write lock briefly: BOOK_OPS ops per
transaction, committed without an fsync (the sync's bookings only), every op's
move with its record's central id, in the batch's order."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from sqlalchemy import text
from sqlmodel import Session

from opd_fallback.store import Store
from opd_fallback.sync import booking
from opd_fallback.sync.batching import load_pending
from opd_fallback.sync.summary import SyncSummary

from .daygen import make_day

IDS = {"patient.register": "uhid", "visit.open": "visit_id", "lab.order": "order_id", "payment.record": "receipt_id"}


def test_a_batch_is_booked_in_short_relaxed_transactions(store: Store) -> None:
    make_day(store, "C07", 200, seed=3)
    with store.read() as s:
        ops = load_pending(s)[:500]
    assert len(ops) == 500
    answers: list[dict[str, object]] = [
        {"op_id": op.op_id, "status": "applied", "error": None,
         "result": {IDS[op.kind]: f"X{i}", **({"accession": f"A{i}"} if op.kind == "lab.order" else {})}}
        for i, op in enumerate(ops)]
    seen: list[tuple[int, int]] = []  # (synchronous, ops synced so far) at each commit
    real_write = store.write

    @contextlib.contextmanager
    def watched(*, durable: bool = True) -> Iterator[Session]:
        with real_write(durable=durable) as s:
            yield s
            sync = s.execute(text("PRAGMA synchronous")).scalar()
            synced = s.execute(text("SELECT count(*) FROM op WHERE state = 'synced'")).scalar()
            seen.append((int(sync or 0), int(synced or 0)))

    store.write = watched  # type: ignore[method-assign]
    run = booking._Run(len(ops), None)
    summary = SyncSummary(started_at="", started_unix=0.0)
    assert booking.book(store, None, 60.0, ops, answers, run, summary) == 500
    del store.write
    step = booking.BOOK_OPS
    assert seen == [(1, min(500, n + step)) for n in range(0, 500, step)]  # NORMAL, BOOK_OPS at a time
    assert summary.applied == 500
    with store.read() as s:
        q = lambda sql: s.execute(text(sql)).scalar()  # noqa: E731
        assert q("SELECT count(*) FROM op WHERE state = 'synced'") == 500
        booked = sum(1 for op in ops if op.kind == "patient.register")
        assert q("SELECT count(*) FROM patient WHERE uhid IS NOT NULL") == booked
        # an order booked after its visit (maybe in an earlier transaction) took the visit's central id
        assert q("SELECT count(*) FROM lab_order WHERE central_id IS NOT NULL AND visit_central_id IS NULL") == 0

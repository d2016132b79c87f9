"""Writers of one database in one process take turns in arrival order and a
waiting one starts the moment the one before it commits (store/writelock.py),
not at SQLite's next busy poll (issue 21 item 4: F10 to commit while a sync
writes)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sqlalchemy import text

from opd_fallback.store import Store, open_store


def _hold_then_commit(store: Store, held: threading.Event, hold_s: float, done: list[float]) -> None:
    with store.write() as s:
        s.execute(text("INSERT INTO meta(key, value) VALUES ('holder', 'x')"))
        held.set()
        time.sleep(hold_s)
    done.append(time.perf_counter())  # committed


def test_a_waiting_writer_starts_when_the_one_before_commits(tmp_path: Path) -> None:
    # two stores on one file, as the counter's UI and its background sync have
    path = tmp_path / "c.db"
    ui, sync = open_store(path), open_store(path)
    try:
        held, committed = threading.Event(), []
        holder = threading.Thread(target=_hold_then_commit, args=(sync, held, 0.24, committed))
        holder.start()
        assert held.wait(10)
        with ui.write() as s:  # waits for the sync's commit
            s.execute(text("INSERT INTO meta(key, value) VALUES ('save', 'y')"))  # BEGIN IMMEDIATE, then this
            began = time.perf_counter()
        holder.join(10)
        # SQLite's busy handler alone would be sleeping its 100 ms step then (polls at 228 and 328 ms)
        late_ms = (began - committed[0]) * 1000
        assert late_ms < 60, f"the save began {late_ms:.0f} ms after the lock was free"
        with ui.read() as s:
            assert s.execute(text("SELECT count(*) FROM meta WHERE key IN ('holder', 'save')")).scalar() == 2
    finally:
        ui.close()
        sync.close()


def test_writers_are_served_in_the_order_they_came(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    stores = [open_store(path) for _ in range(4)]
    order: list[int] = []
    try:
        held, committed = threading.Event(), []
        holder = threading.Thread(target=_hold_then_commit, args=(stores[0], held, 0.3, committed))
        holder.start()
        assert held.wait(10)

        def write(i: int) -> None:
            with stores[i].write() as s:
                s.execute(text("INSERT INTO meta(key, value) VALUES (:k, 'v')"), {"k": f"w{i}"})
                order.append(i)

        waiters = []
        for i in (1, 2, 3):
            t = threading.Thread(target=write, args=(i,))
            t.start()
            waiters.append(t)
            time.sleep(0.05)  # each one queued before the next
        for t in [holder, *waiters]:
            t.join(10)
        assert order == [1, 2, 3]
    finally:
        for st in stores:
            st.close()


def test_a_thread_already_writing_is_not_stopped_by_its_own_turn(tmp_path: Path) -> None:
    from opd_fallback.store.writelock import lock_for, turn

    lock = lock_for(tmp_path / "c.db")
    with turn(lock, 1.0) as first, turn(lock, 1.0) as again:
        assert first and again
    other: list[bool] = []
    t = threading.Thread(target=lambda: other.append(lock.acquire(1.0)))
    t.start()
    t.join(5)
    assert other == [True]  # released as often as taken


def test_a_writer_that_gave_up_waiting_leaves_the_line(tmp_path: Path) -> None:
    from opd_fallback.store.writelock import FairLock

    lock = FairLock()
    assert lock.acquire(1.0)
    got: list[bool] = []
    t = threading.Thread(target=lambda: got.append(lock.acquire(0.05)))
    t.start()
    t.join(5)
    assert got == [False]  # timed out: it goes on to SQLite's own wait
    lock.release()
    after: list[bool] = []
    t = threading.Thread(target=lambda: after.append(lock.acquire(1.0)))
    t.start()
    t.join(5)
    assert after == [True]  # not stuck behind the one that left

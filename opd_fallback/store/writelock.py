"""The writers of one database file in this process take turns here, first come
first served, before SQLite's write lock (issue 21 item 4: F10 to commit).

SQLite's busy handler does not queue: a ``BEGIN IMMEDIATE`` that finds the
write lock taken sleeps 1, 2, 5, 10, 15, 20, 25... ms and tries again, so a save
that arrives while the background sync commits an ack waits for the next poll,
not for the commit (tens of ms more than the lock was held), and a writer that
commits and begins again at once (the sync's bookkeeping) can take the lock
before the sleeping one wakes. Here a writer of this process waits on a
condition instead: it is woken the moment the one before it is done, in the
order they came. The counter's UI, its background sync and share all write
through one process, so this is where their waits are.

Other processes (the CLI, a second counter on the same file) still meet at
SQLite's lock and its busy timeout, as before; a writer that waited here as long
as that timeout goes on to SQLite anyway, which answers as it always did.
Re-entrant: a thread already writing is not stopped here (SQLite decides).
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class FairLock:
    """A re-entrant lock granted in arrival order."""

    def __init__(self) -> None:
        self._cv = threading.Condition(threading.Lock())
        self._queue: deque[object] = deque()
        self._owner: int | None = None
        self._depth = 0

    def acquire(self, timeout: float) -> bool:
        me = threading.get_ident()
        with self._cv:
            if self._owner == me:
                self._depth += 1
                return True
            ticket = object()
            self._queue.append(ticket)
            try:
                got = self._cv.wait_for(lambda: self._owner is None and self._queue[0] is ticket, timeout)
            except BaseException:  # interrupted while waiting: out of the line, never blocking it
                got = False
                raise
            finally:
                if not got:
                    self._queue.remove(ticket)
                    self._cv.notify_all()  # the next in line may be free to go now
            if not got:
                return False
            self._queue.popleft()
            self._owner, self._depth = me, 1
            return True

    def release(self) -> None:
        with self._cv:
            self._depth -= 1
            if self._depth == 0:
                self._owner = None
                self._cv.notify_all()


_LOCKS: dict[str, FairLock] = {}
_GUARD = threading.Lock()


def lock_for(path: Path | str) -> FairLock:
    """The one lock of this database file in this process (whatever path names it)."""
    key = os.path.realpath(path)
    with _GUARD:
        return _LOCKS.setdefault(key, FairLock())


@contextmanager
def turn(lock: FairLock, timeout_s: float) -> Iterator[bool]:
    """This thread's turn to write (True), or False after ``timeout_s`` (go on to SQLite)."""
    got = lock.acquire(timeout_s)
    try:
        yield got
    finally:
        if got:
            lock.release()

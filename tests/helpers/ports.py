"""Ports for the servers the tests start as processes (central, the hub, PostgreSQL).

A port taken with ``bind(("127.0.0.1", 0))`` and closed again is only free
until somebody else takes it: another xdist worker asking the same way, or an
outgoing connection (both draw from Linux's ephemeral range, 32768 and up).
Then a server started on it fails to bind, and a start-up check that asks the
port gets its answer from the *other* server: a test talked to another
worker's central and read a 401 as its master data. So each worker draws
from its own range below the ephemeral ones, in turn from a random start,
and skips a port something already listens on.
"""

from __future__ import annotations

import os
import random
import socket

FIRST, PER_WORKER, WORKERS = 12000, 2000, 10  # 12000..31999: below 32768


def _range() -> tuple[int, int]:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) if worker[2:].isdigit() else 0
    lo = FIRST + (index % WORKERS) * PER_WORKER
    return lo, lo + PER_WORKER


_next: list[int] = []


def free_port() -> int:
    """A port on 127.0.0.1 no other worker of this run hands out, free right now."""
    lo, hi = _range()
    if not _next:
        _next.append(random.randrange(lo, hi))
    for _ in range(hi - lo):
        port = _next[0]
        _next[0] = lo + (port + 1 - lo) % (hi - lo)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue  # something listens there, or it is in TIME_WAIT
            return port
    raise RuntimeError(f"no free port in {lo}..{hi - 1}")

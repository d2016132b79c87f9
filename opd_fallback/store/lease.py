"""One sync per database: a lease row in SQLite (holder, pid, host, expiry).

Two syncs of one outbox at once would not corrupt anything (the server's
idempotency sees to that) but they would double the load on a just-recovered
server and race each other's bookkeeping, so the CLI's ``sync`` and the
counter's background sync take turns. The lease is renewed by a background
thread while its holder runs; a holder that died on this host (its pid is gone)
or stopped renewing (expired) can be taken over at once.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass

from sqlalchemy import text

from opd_fallback.domain.clock import now_iso
from opd_fallback.domain.exits import ExitCode, OpdError
from opd_fallback.store.engine import Store

SYNC = "sync"
DEFAULT_TTL_S = 30.0


@dataclass(frozen=True, slots=True)
class LeaseInfo:
    """Who holds a lease, for a message like 'sync already running (pid 123 on pc-7)'."""

    name: str
    holder: str
    pid: int
    host: str
    acquired_at: str
    expires_at: float

    def describe(self) -> str:
        left = max(0.0, self.expires_at - time.time())
        return (f"another sync is running on this database ({self.holder}, pid {self.pid} on {self.host}, "
                f"since {self.acquired_at}; lease expires in {left:.0f}s unless renewed)")


class LeaseHeld(OpdError, RuntimeError):
    """The lease belongs to someone alive; ``info`` says who (exit 4)."""

    exit_code = ExitCode.SYNC_RUNNING

    def __init__(self, info: LeaseInfo) -> None:
        super().__init__(info.describe())
        self.info = info


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def holder_of(store: Store, name: str = SYNC) -> LeaseInfo | None:
    """The current lease row (alive or not), or None."""
    with store.read() as s:
        row = s.execute(
            text("SELECT name, holder, pid, host, acquired_at, expires_at FROM lease WHERE name = :n"), {"n": name}
        ).first()
    return None if row is None else LeaseInfo(*row)


def _takeable(info: LeaseInfo, me: str, host: str, now: float) -> bool:
    if info.holder == me or info.expires_at < now:
        return True
    return info.host == host and info.pid != os.getpid() and not _pid_alive(info.pid)


def try_acquire(store: Store, *, name: str = SYNC, holder: str, ttl_s: float = DEFAULT_TTL_S) -> LeaseInfo | None:
    """Take the lease if free, expired or left by a dead process on this host.
    Returns None on success, or who holds it."""
    host = socket.gethostname()
    now = time.time()
    with store.write() as s:
        row = s.execute(
            text("SELECT name, holder, pid, host, acquired_at, expires_at FROM lease WHERE name = :n"), {"n": name}
        ).first()
        if row is not None and not _takeable(LeaseInfo(*row), holder, host, now):
            return LeaseInfo(*row)
        s.execute(
            text(
                "INSERT INTO lease(name, holder, pid, host, acquired_at, expires_at) VALUES (:n, :h, :p, :host, :at, :x) "
                "ON CONFLICT(name) DO UPDATE SET holder=excluded.holder, pid=excluded.pid, host=excluded.host, "
                "acquired_at=excluded.acquired_at, expires_at=excluded.expires_at"
            ),
            {"n": name, "h": holder, "p": os.getpid(), "host": host, "at": now_iso(), "x": now + ttl_s},
        )
    return None


class Lease:
    """A held lease, renewed in the background until :meth:`release`.

    ``lost`` turns true if a renewal finds someone else took it over (we were
    frozen past the expiry); the holder should stop at its next step.
    """

    def __init__(self, store: Store, name: str, holder: str, ttl_s: float) -> None:
        self.store = store
        self.name = name
        self.holder = holder
        self.ttl_s = ttl_s
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew_loop, name=f"lease-{name}", daemon=True)
        self._thread.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.ttl_s / 3):
            try:
                if not self.renew():
                    self.lost = True
                    return
            except Exception:  # a busy database: try again next tick, the ttl has slack
                continue

    def renew(self) -> bool:
        with self.store.write() as s:
            result = s.connection().execute(  # a cursor result: it knows the rows it changed
                text("UPDATE lease SET expires_at = :x WHERE name = :n AND holder = :h"),
                {"x": time.time() + self.ttl_s, "n": self.name, "h": self.holder},
            )
            return bool(result.rowcount)

    def release(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        try:
            with self.store.write() as s:
                s.execute(text("DELETE FROM lease WHERE name = :n AND holder = :h"), {"n": self.name, "h": self.holder})
        except Exception:
            pass  # it expires on its own

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def new_holder(label: str = "sync") -> str:
    return f"{label}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def acquire(
    store: Store,
    *,
    name: str = SYNC,
    holder: str | None = None,
    ttl_s: float = DEFAULT_TTL_S,
    wait_s: float = 0.0,
    poll_s: float = 0.5,
) -> Lease:
    """Hold the lease (waiting up to ``wait_s``) or raise :class:`LeaseHeld`."""
    me = holder or new_holder()
    deadline = time.monotonic() + wait_s
    while True:
        other = try_acquire(store, name=name, holder=me, ttl_s=ttl_s)
        if other is None:
            return Lease(store, name, me, ttl_s)
        if time.monotonic() >= deadline:
            raise LeaseHeld(other)
        time.sleep(min(poll_s, max(0.01, deadline - time.monotonic())))

"""A read-only snapshot of the counter database through the standard library's
``sqlite3`` alone, for the quick commands (``status``).

Importing SQLAlchemy, SQLModel and the table models costs far more than the
few counts ``status`` needs (measured in benchmarks/cli_start.py), so a read
that only counts runs plain SQL here. It never writes, never creates the file
and never migrates: a database this program cannot read this way (too old a
schema) raises :class:`sqlite3.OperationalError`, and the caller upgrades it
with :func:`opd_fallback.store.open_store` first, as every other command does.
Everything that writes goes through :class:`opd_fallback.store.Store`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from opd_fallback.store.states import DAMAGED, PENDING, REJECTED

# the same wait as the store's writers hold the lock for (store/engine.py BUSY_TIMEOUT_MS)
BUSY_TIMEOUT_S = 15.0


@contextmanager
def snapshot(path: Path | str) -> Iterator[sqlite3.Connection]:
    """One consistent read of the database at ``path`` (a single read
    transaction, so every count comes from the same moment)."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"no counter database at {p}")
    conn = sqlite3.connect(f"{p.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S,
                           isolation_level=None)
    try:
        conn.execute("PRAGMA query_only=ON")
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("ROLLBACK")
    finally:
        conn.close()


# ---- the reads of ``status`` (application/status.py), on a snapshot's connection ----
# States are bound as parameters from store/states.py (this module must stay free of SQLAlchemy).


def meta_value(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def counter_value(conn: sqlite3.Connection, name: str) -> int:
    """The current value of a number counter (store/numbers.py ``peek``)."""
    row = conn.execute("SELECT value FROM counter WHERE name = ?", (name,)).fetchone()
    return int(row[0]) if row else 0


def oldest_recorded_at(conn: sqlite3.Connection, states: Sequence[str]) -> str | None:
    marks = ",".join("?" * len(states))
    oldest = conn.execute(f"SELECT min(recorded_at) FROM op WHERE state IN ({marks})", tuple(states)).fetchone()[0]
    return None if oldest is None else str(oldest)


def ops_by_state(conn: sqlite3.Connection) -> dict[str, int]:
    return {str(st): int(n) for st, n in conn.execute("SELECT state, count(*) FROM op GROUP BY state").fetchall()}


def ops_by_state_and_kind(conn: sqlite3.Connection) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for st, kind, n in conn.execute("SELECT state, kind, count(*) FROM op GROUP BY state, kind").fetchall():
        out.setdefault(str(st), {})[str(kind)] = int(n)
    return out


def waiting_with_reason(conn: sqlite3.Connection) -> int:
    """Pending ops that carry a reason they are waiting."""
    row = conn.execute("SELECT count(*) FROM op WHERE state = ? AND wait_reason IS NOT NULL", (PENDING,)).fetchone()
    return int(row[0] or 0)


def damaged_ops(conn: sqlite3.Connection) -> int:
    """Ops quarantined because their stored data was damaged (store/outbox.py ``quarantine``)."""
    row = conn.execute("SELECT count(*) FROM op WHERE state = ? AND last_status = ?", (REJECTED, DAMAGED)).fetchone()
    return int(row[0] or 0)


def shared_records_by_device(conn: sqlite3.Connection) -> dict[str, int]:
    rows = conn.execute("SELECT device_id, count(*) FROM shared_record GROUP BY device_id").fetchall()
    return {str(d): int(n) for d, n in rows}


def ops_above(conn: sqlite3.Connection, seq: int) -> int:
    return int(conn.execute("SELECT count(*) FROM op WHERE seq > ?", (seq,)).fetchone()[0] or 0)


def run_sql(conn: sqlite3.Connection) -> Callable[[str, dict[str, Any]], Sequence[Sequence[Any]]]:
    """A ``RunSql`` (store/money.py) on this connection."""
    return lambda sql, params: conn.execute(sql, params).fetchall()


def last_device_id(path: Path | str) -> str | None:
    """The device whose ops a database (a backup file) holds: the newest op's, or None."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT device_id FROM op ORDER BY seq DESC LIMIT 1").fetchone()
    finally:
        conn.close()
    return None if row is None else str(row[0])

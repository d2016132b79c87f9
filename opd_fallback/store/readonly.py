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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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

"""A read-only snapshot of the counter database through the DB-API driver
alone (``sqlcipher3``, the standard library's ``sqlite3`` API with SQLCipher
inside: the file is encrypted), for the quick commands (``status``).

Importing SQLAlchemy, SQLModel and the table models costs far more than the
few counts ``status`` needs (measured in benchmarks/cli_start.py), so a read
that only counts runs plain SQL here. It never writes, never creates the file
and never migrates: a database this program cannot read this way (too old a
schema, or a plain file an older version left) raises an ``OperationalError``
of the driver (:data:`OperationalError`), and the caller upgrades it with
:func:`opd_fallback.store.open_store` first, as every other command does. Its
key comes from :func:`opd_fallback.cipher.custody.key_for`.
Everything that writes goes through :class:`opd_fallback.store.Store`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from opd_fallback.cipher import custody
from opd_fallback.cipher import db as cipher_db
from opd_fallback.store.states import DAMAGED, PENDING, REJECTED

if TYPE_CHECKING:
    from opd_fallback.cipher.db import DBConnection
    from opd_fallback.store.money import RunSql

OperationalError = cipher_db.OperationalError


NOT_ENCRYPTED_YET = "the database is not encrypted yet"  # open_store encrypts it


def needs_upgrade(exc: BaseException) -> bool:
    """Whether ``exc`` says the database must be opened by ``open_store`` first."""
    return NOT_ENCRYPTED_YET in str(exc) or "no such" in str(exc)


# the same wait as the store's writers hold the lock for (store/engine.py BUSY_TIMEOUT_MS)
BUSY_TIMEOUT_S = 15.0


@contextmanager
def snapshot(path: Path | str) -> Iterator[DBConnection]:
    """One consistent read of the database at ``path`` (a single read
    transaction, so every count comes from the same moment)."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"no counter database at {p}")
    if cipher_db.is_plain(p):
        raise OperationalError(NOT_ENCRYPTED_YET)  # open_store encrypts it
    conn = cipher_db.connect(p, custody.key_for(p), readonly=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)
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


def meta_value(conn: DBConnection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def counter_value(conn: DBConnection, name: str) -> int:
    """The current value of a number counter (store/numbers.py ``peek``)."""
    row = conn.execute("SELECT value FROM counter WHERE name = ?", (name,)).fetchone()
    return int(row[0]) if row else 0


def oldest_recorded_at(conn: DBConnection, states: Sequence[str]) -> str | None:
    marks = ",".join("?" * len(states))
    oldest = conn.execute(f"SELECT min(recorded_at) FROM op WHERE state IN ({marks})", tuple(states)).fetchone()[0]
    return None if oldest is None else str(oldest)


def ops_by_state(conn: DBConnection) -> dict[str, int]:
    return {str(st): int(n) for st, n in conn.execute("SELECT state, count(*) FROM op GROUP BY state").fetchall()}


def ops_by_state_and_kind(conn: DBConnection) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for st, kind, n in conn.execute("SELECT state, kind, count(*) FROM op GROUP BY state, kind").fetchall():
        out.setdefault(str(st), {})[str(kind)] = int(n)
    return out


def waiting_with_reason(conn: DBConnection) -> int:
    """Pending ops that carry a reason they are waiting."""
    row = conn.execute("SELECT count(*) FROM op WHERE state = ? AND wait_reason IS NOT NULL", (PENDING,)).fetchone()
    return int(row[0] or 0)


def damaged_ops(conn: DBConnection) -> int:
    """Ops quarantined because their stored data was damaged (store/outbox.py ``quarantine``)."""
    row = conn.execute("SELECT count(*) FROM op WHERE state = ? AND last_status = ?", (REJECTED, DAMAGED)).fetchone()
    return int(row[0] or 0)


def shared_records_by_device(conn: DBConnection) -> dict[str, int]:
    rows = conn.execute("SELECT device_id, count(*) FROM shared_record GROUP BY device_id").fetchall()
    return {str(d): int(n) for d, n in rows}


def ops_above(conn: DBConnection, seq: int) -> int:
    return int(conn.execute("SELECT count(*) FROM op WHERE seq > ?", (seq,)).fetchone()[0] or 0)


def run_sql(conn: DBConnection) -> RunSql:
    """A ``RunSql`` (store/money.py) on this connection."""
    return lambda sql, params: conn.execute(sql, params).fetchall()


def last_device_id(path: Path | str) -> str | None:
    """The device whose ops a database (a backup file) holds: the newest op's, or None."""
    conn = cipher_db.connect(Path(path), custody.key_for(Path(path)), readonly=True)
    try:
        row = conn.execute("SELECT device_id FROM op ORDER BY seq DESC LIMIT 1").fetchone()
    finally:
        conn.close()
    return None if row is None else str(row[0])

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

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from opd_fallback.cipher import custody
from opd_fallback.cipher import db as cipher_db

OperationalError = cipher_db.OperationalError


NOT_ENCRYPTED_YET = "the database is not encrypted yet"  # open_store encrypts it


def needs_upgrade(exc: BaseException) -> bool:
    """Whether ``exc`` says the database must be opened by ``open_store`` first."""
    return NOT_ENCRYPTED_YET in str(exc) or "no such" in str(exc)


# the same wait as the store's writers hold the lock for (store/engine.py BUSY_TIMEOUT_MS)
BUSY_TIMEOUT_S = 15.0


@contextmanager
def snapshot(path: Path | str) -> Iterator[Any]:
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

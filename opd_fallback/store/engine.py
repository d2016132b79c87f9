"""The counter's SQLite engine, tuned so a saved record survives a power cut.

WAL with ``synchronous=FULL`` means a committed transaction is on disk before
``commit()`` returns; foreign keys on; a busy timeout so the UI, a background
sync and the CLI can share one file. The engine is made by a function, never at
import time, so tests and tools can open any file. One kind of write is let off
the fsync: the sync's booking of central's answers (``write(durable=False)``,
``synchronous=NORMAL``), which central can always give again.

The file is encrypted (SQLCipher 4): every connection is made by the one
opener, :func:`opd_fallback.cipher.db.connect`, with the key of
:func:`opd_fallback.cipher.custody.key_for` (a wrong or missing key raises
``KeyProblem`` before any connection exists, so no half-opened store). The
engine keeps SQLAlchemy's pysqlite dialect with ``sqlcipher3.dbapi2`` as its
DB-API module, so SQLAlchemy wraps SQLCipher's errors as it wrapped
``sqlite3``'s. A plain database left by an older version is encrypted in
place on its first open (:func:`opd_fallback.cipher.db.encrypt_in_place`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, create_engine, event
from sqlmodel import Session

from opd_fallback.cipher import custody
from opd_fallback.cipher import db as cipher_db
from opd_fallback.cipher.keys import Key
from opd_fallback.config import PRIVATE_FILE_MODE, private_dir, tighten_file
from opd_fallback.store import writelock

if TYPE_CHECKING:
    from opd_fallback.cipher.db import DBConnection

BUSY_TIMEOUT_MS = 15_000

PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=ON",
    f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}",
    "PRAGMA temp_store=MEMORY",
    "PRAGMA cache_size=-32000",
)


def _on_connect(dbapi_conn: DBConnection, _record: object) -> None:
    # Let us issue BEGIN ourselves (pysqlite's implicit BEGIN is deferred and
    # would upgrade to a write lock mid-transaction, which can deadlock).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    for pragma in PRAGMAS:
        cur.execute(pragma)
    cur.close()


def _on_begin(conn: Connection) -> None:
    options = conn.get_execution_options()
    # every transaction says how it commits (FULL unless it asks otherwise, see Store.write);
    # the PRAGMA is sent only when this pooled connection's last transaction asked otherwise
    sync = options.get("sqlite_synchronous", "FULL")
    info = conn.connection.info
    if info.get("synchronous", "FULL") != sync:
        conn.exec_driver_sql(f"PRAGMA synchronous={sync}")
        info["synchronous"] = sync
    conn.exec_driver_sql(f"BEGIN {options.get('sqlite_begin', 'DEFERRED')}")


def make_engine(path: Path | str, key: Key | None = None) -> Engine:
    """An engine for one SQLite file with the durability pragmas on every
    connection, keyed with ``key`` (default: the key of :func:`custody.key_for`)."""
    p = Path(path)
    the_key = key if key is not None else custody.key_for(p)

    def connect() -> DBConnection:
        return cipher_db.connect(p, the_key, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)

    engine = create_engine(
        f"sqlite:///{p}",
        module=cipher_db.dbapi2,  # SQLAlchemy wraps SQLCipher's errors like sqlite3's
        creator=connect,
        pool_pre_ping=False,
        hide_parameters=True,  # an error message never carries a patient's name or a payload
    )
    event.listen(engine, "connect", _on_connect)
    event.listen(engine, "begin", _on_begin)
    return engine


@dataclass
class Store:
    """One counter database. ``read()`` for queries, ``write()`` for a
    transaction that takes the write lock up front (BEGIN IMMEDIATE)."""

    path: Path
    engine: Engine
    _writer: Engine = field(init=False, repr=False)
    _relaxed: Engine = field(init=False, repr=False)
    _turns: writelock.FairLock = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._writer = self.engine.execution_options(sqlite_begin="IMMEDIATE")
        self._turns = writelock.lock_for(self.path)
        self._relaxed = self.engine.execution_options(sqlite_begin="IMMEDIATE", sqlite_synchronous="NORMAL")

    @contextmanager
    def read(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    @contextmanager
    def write(self, *, durable: bool = True) -> Iterator[Session]:
        """One atomic write: commits on success, rolls back on any exception. The
        writers of this process take turns first (store/writelock.py), so one
        waits for the commit before it, not for SQLite's next busy poll.

        ``durable=False`` commits with ``synchronous=NORMAL``: atomic and safe
        from a killed process, but a power cut may take back the last such
        commits (never a FULL one made after them: the WAL is synced in order).
        Only for writes that can be made again from elsewhere: the sync's
        booking of central's answers (central remembers them; the op stays
        pending and its resend is answered ``duplicate`` with the same result)."""
        with writelock.turn(self._turns, BUSY_TIMEOUT_MS / 1000):
            with Session(self._writer if durable else self._relaxed, expire_on_commit=False) as session:
                with session.begin():
                    yield session

    def close(self) -> None:
        from opd_fallback.store import marks

        marks.settle()  # the committed marks of its last saves are in their file
        self.engine.dispose()


def make_private_db_file(p: Path) -> None:
    """The database file is 0600 before SQLite opens it (SQLite gives its -wal
    and -shm files the database file's mode); an older, looser one is tightened."""
    private_dir(p.parent)
    try:
        os.close(os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), PRIVATE_FILE_MODE))
    except FileExistsError:
        pass
    for side in ("", "-wal", "-shm"):
        tighten_file(str(p) + side)


def open_store(path: Path | str, *, migrate: bool = True) -> Store:
    """Open (and create or upgrade) the counter database at ``path``; a plain
    one is encrypted first (one good database whatever happens, see cipher/db.py)."""
    from opd_fallback.store.migrations import migrate as run_migrations

    p = Path(path)
    key = custody.key_for(p)
    make_private_db_file(p)
    custody.ensure_encrypted(p, key)
    store = Store(p, make_engine(p, key))
    if migrate:
        run_migrations(store.engine)
    return store


def driver_execute(session: Session, sql: str, params: tuple[str | int | None, ...]) -> tuple[object, ...] | None:
    """Run one statement on the sqlite3 connection under the session's
    transaction and return its first row. For the few statements run for every
    record (counters, reserved ids): several times cheaper than going through
    SQLAlchemy, same transaction, so a bulk import keeps its pace."""
    cur = session.connection().connection.driver_connection.execute(sql, params)  # type: ignore[union-attr]
    try:
        row: tuple[object, ...] | None = cur.fetchone()
        return row
    finally:
        cur.close()

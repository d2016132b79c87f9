"""The counter's SQLite engine, tuned so a saved record survives a power cut.

WAL with ``synchronous=FULL`` means a committed transaction is on disk before
``commit()`` returns; foreign keys on; a busy timeout so the UI, a background
sync and the CLI can share one file. The engine is made by a function, never at
import time, so tests and tools can open any file.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlmodel import Session

from opd_fallback.config import PRIVATE_FILE_MODE, private_dir, tighten_file

BUSY_TIMEOUT_MS = 15_000

PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=ON",
    f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}",
    "PRAGMA temp_store=MEMORY",
    "PRAGMA cache_size=-32000",
)


def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
    # Let us issue BEGIN ourselves (pysqlite's implicit BEGIN is deferred and
    # would upgrade to a write lock mid-transaction, which can deadlock).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    for pragma in PRAGMAS:
        cur.execute(pragma)
    cur.close()


def _on_begin(conn: Any) -> None:
    mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")


def make_engine(path: Path | str) -> Engine:
    """An engine for one SQLite file with the durability pragmas on every connection."""
    engine = create_engine(
        f"sqlite:///{Path(path)}",
        connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
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

    def __post_init__(self) -> None:
        self._writer = self.engine.execution_options(sqlite_begin="IMMEDIATE")

    @contextmanager
    def read(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One atomic write: commits on success, rolls back on any exception."""
        with Session(self._writer, expire_on_commit=False) as session:
            with session.begin():
                yield session

    def close(self) -> None:
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
    """Open (and create or upgrade) the counter database at ``path``."""
    from opd_fallback.store.migrations import migrate as run_migrations

    p = Path(path)
    make_private_db_file(p)
    store = Store(p, make_engine(p))
    if migrate:
        run_migrations(store.engine)
    return store


def driver_execute(session: Session, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """Run one statement on the sqlite3 connection under the session's
    transaction and return its first row. For the few statements run for every
    record (counters, reserved ids): several times cheaper than going through
    SQLAlchemy, same transaction, so a bulk import keeps its pace."""
    cur = session.connection().connection.driver_connection.execute(sql, params)  # type: ignore[union-attr]
    try:
        row: tuple[Any, ...] | None = cur.fetchone()
        return row
    finally:
        cur.close()

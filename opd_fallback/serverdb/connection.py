"""One connection type for SQLite and PostgreSQL, with the SQL written once.

SQL is written in SQLite's ``?`` parameter style and translated (once, cached)
to psycopg's ``%s`` style. Both engines run in autocommit mode and a writer
opens its transaction explicitly with :meth:`Connection.begin`:
``BEGIN IMMEDIATE`` on SQLite (the file's one write lock, taken up front, so
two writers never deadlock), plain ``BEGIN`` (READ COMMITTED) on PostgreSQL,
where writers run side by side and the server's code takes the row and
advisory locks it needs.

The few places where the engines' SQL differs are properties here
(:attr:`greatest`, :attr:`collate_c`), so a caller never tests the dialect to
build a statement.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

from opd_fallback.domain.exits import OpdError
from opd_fallback.serverdb.url import POSTGRESQL, SQLITE, DatabaseUrl

SQLITE_PRAGMAS = (
    # WAL: readers never wait for a batch being applied; FULL: a committed
    # batch survives a power cut (the server answers "applied" only after COMMIT).
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=30000",
    "PRAGMA cache_size=-32000",
)


class TransientWriteError(OpdError):
    """A write lost a race with another writer (unique key, deadlock, serialisation):
    nothing of it was kept, and running it again is safe."""


_COPY_FROM = 8  # rows; below this an executemany is as quick
_PLAIN_INSERT = re.compile(r"^\s*INSERT INTO (\w+)\s*\(([\w\s,]+)\)\s*VALUES\s*\([?,\s]+\)\s*$", re.IGNORECASE)


@lru_cache(maxsize=256)
def _plain_insert(sql: str) -> str | None:
    """``table(col, ...)`` when ``sql`` is a plain one-row INSERT of bound values, else None."""
    m = _PLAIN_INSERT.match(sql)
    return None if m is None else f"{m.group(1)}({m.group(2)})"


@lru_cache(maxsize=1024)
def _pg_sql(sql: str) -> str:
    return sql.replace("%", "%%").replace("?", "%s")


class Connection:
    """A DB-API connection in autocommit mode, speaking ``?``-style SQL on either engine."""

    def __init__(self, raw: Any, dialect: str) -> None:
        self.raw = raw
        self.dialect = dialect
        self.is_sqlite = dialect == SQLITE
        self.greatest = "MAX" if self.is_sqlite else "GREATEST"
        # PostgreSQL compares text by the database's locale; op_ids are paged and
        # digested in byte order (the contract's order), as SQLite does by default.
        self.collate_c = "" if self.is_sqlite else ' COLLATE "C"'
        # A read that a write of the same transaction depends on: on SQLite the
        # transaction already holds the file's write lock; on PostgreSQL lock the row.
        self.for_update = "" if self.is_sqlite else " FOR UPDATE"

    def execute(self, sql: str, params: Sequence[object] = ()) -> Any:
        if self.is_sqlite:
            return self.raw.execute(sql, params)
        return self.raw.execute(_pg_sql(sql), params)

    def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> None:
        """Run ``sql`` once per row. On PostgreSQL a plain ``INSERT INTO t(cols) VALUES
        (...)`` of many rows goes as one ``COPY`` (one statement, not one per row)."""
        if self.is_sqlite:
            self.raw.executemany(sql, rows)
            return
        rows = list(rows)
        target = _plain_insert(sql) if len(rows) >= _COPY_FROM else None
        with self.raw.cursor() as cur:
            if target is None:
                cur.executemany(_pg_sql(sql), rows)
                return
            with cur.copy(f"COPY {target} FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)

    def begin(self) -> None:
        self.raw.execute("BEGIN IMMEDIATE" if self.is_sqlite else "BEGIN")

    def commit(self) -> None:
        self.raw.execute("COMMIT")

    def rollback(self) -> None:
        self.raw.execute("ROLLBACK")

    def close(self) -> None:
        self.raw.close()

    @property
    def broken(self) -> bool:
        """True when the server end is gone (a PostgreSQL restart): open a new connection."""
        return not self.is_sqlite and bool(self.raw.closed or self.raw.broken)

    def is_missing_table(self, exc: BaseException) -> bool:
        """True when ``exc`` says a table does not exist (a database not migrated yet)."""
        if self.is_sqlite:
            return isinstance(exc, sqlite3.OperationalError) and "no such table" in str(exc)
        import psycopg.errors as pe

        return isinstance(exc, pe.UndefinedTable)

    def is_transient(self, exc: BaseException) -> bool:
        """True when ``exc`` is PostgreSQL telling one writer it lost a race with another."""
        if self.is_sqlite:
            return False
        import psycopg.errors as pe

        return isinstance(exc, pe.UniqueViolation | pe.DeadlockDetected | pe.SerializationFailure)


def connect(db: DatabaseUrl, *, application_name: str = "opd-fallback") -> Connection:
    """Open a connection (the SQLite file's folder is created when missing)."""
    if db.dialect == SQLITE:
        assert db.sqlite_path is not None
        db.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        lite = sqlite3.connect(str(db.sqlite_path), isolation_level=None, check_same_thread=False, timeout=30)
        for pragma in SQLITE_PRAGMAS:
            lite.execute(pragma)
        return Connection(lite, SQLITE)
    import psycopg

    raw = psycopg.connect(db.conninfo, autocommit=True, application_name=application_name, connect_timeout=10)
    return Connection(raw, POSTGRESQL)

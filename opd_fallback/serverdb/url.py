"""Parsing a database URL: which engine, and how to reach it.

``sqlite:///FILE`` (relative) or ``sqlite:////abs/FILE`` names an SQLite file;
``postgresql+psycopg://USER@HOST:PORT/DBNAME`` (also ``postgresql://``) a
PostgreSQL database reached with psycopg 3. A password may be in the URL, but
it is better kept out of it (``~/.pgpass`` or ``PGPASSWORD``, read by libpq),
and never put on a command line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

SQLITE = "sqlite"
POSTGRESQL = "postgresql"


@dataclass(frozen=True, slots=True)
class DatabaseUrl:
    """One database: its engine (``dialect``) and the ways to reach it."""

    dialect: str
    sqlalchemy_url: str  # for SQLAlchemy / Alembic
    sqlite_path: Path | None = None  # SQLite only
    conninfo: str = ""  # PostgreSQL only: a libpq connection URI
    has_password: bool = False

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == SQLITE

    def safe(self) -> str:
        """The URL with any password hidden, for messages and logs."""
        return make_url(self.sqlalchemy_url).render_as_string(hide_password=True)


def sqlite_url(path: Path | str) -> str:
    return f"sqlite:///{Path(path)}"


def parse_database_url(text: str) -> DatabaseUrl:
    """Check and split a database URL; ``ValueError`` with one sentence when it is not usable."""
    try:
        url = make_url(text.strip())
    except ArgumentError:
        raise ValueError(
            f"database URL {text!r} is not a URL; write sqlite:///FILE or postgresql+psycopg://USER@HOST/DB"
        ) from None
    backend, _, driver = url.drivername.partition("+")
    if backend == SQLITE:
        if not url.database or url.database == ":memory:":
            raise ValueError("an SQLite database URL needs a file: sqlite:///central.db")
        return DatabaseUrl(SQLITE, sqlite_url(url.database), sqlite_path=Path(url.database))
    if backend in (POSTGRESQL, "postgres"):
        if driver not in ("", "psycopg"):
            raise ValueError(f"PostgreSQL is reached with psycopg 3: write postgresql+psycopg://, not {url.drivername}://")
        if not url.database:
            raise ValueError("a PostgreSQL URL needs a database name: postgresql+psycopg://USER@HOST:5432/DBNAME")
        pg = url.set(drivername=POSTGRESQL)
        return DatabaseUrl(
            POSTGRESQL,
            pg.set(drivername="postgresql+psycopg").render_as_string(hide_password=False),
            conninfo=pg.render_as_string(hide_password=False),
            has_password=url.password is not None,
        )
    raise ValueError(f"unknown database {url.drivername!r}: use sqlite:///FILE or postgresql+psycopg://...")

"""Bringing a server's database to the newest schema with Alembic.

Run once before a server starts its workers (``central serve`` does it, and
``central migrate`` does only that). On PostgreSQL the upgrade holds an
advisory lock, so several server processes starting together on one database
migrate it once and the others wait and find it done. A database made before
migrations existed (tables present, no ``alembic_version``) is *adopted*: it is
stamped with ``adopt_revision`` (the revision whose schema it has) and upgraded
from there.
"""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, inspect, text

from opd_fallback.serverdb.url import SQLITE, DatabaseUrl

MIGRATION_LOCK = (0x0FD, 2)  # pg_advisory_lock(int, int) keys: (app, purpose)


def upgrade(db: DatabaseUrl, script_location: str, *, adopt_table: str, adopt_revision: str) -> None:
    """Upgrade to head; ``adopt_table`` is a table whose presence means "made before Alembic"."""
    if db.dialect == SQLITE:
        assert db.sqlite_path is not None
        db.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(db.sqlalchemy_url)
    try:
        with engine.connect() as conn:
            if db.dialect != SQLITE:
                conn.execute(text("SELECT pg_advisory_lock(:a, :b)"), {"a": MIGRATION_LOCK[0], "b": MIGRATION_LOCK[1]})
                conn.commit()
            try:
                cfg = Config()
                cfg.set_main_option("script_location", script_location)
                cfg.attributes["connection"] = conn
                tables = set(inspect(conn).get_table_names())
                if adopt_table in tables and "alembic_version" not in tables:
                    command.stamp(cfg, adopt_revision)
                command.upgrade(cfg, "head")
                conn.commit()
            finally:
                if db.dialect != SQLITE:
                    conn.execute(text("SELECT pg_advisory_unlock(:a, :b)"),
                                 {"a": MIGRATION_LOCK[0], "b": MIGRATION_LOCK[1]})
                    conn.commit()
    finally:
        engine.dispose()

"""Alembic environment of the reference central server.

Run through :func:`opd_fallback.serverdb.upgrade` (``central serve`` /
``central migrate``), which hands over an open connection; run as plain
``alembic`` (developers: ``alembic -c opd_fallback/central/migrations/alembic.ini``)
it reads ``sqlalchemy.url``. ``render_as_batch`` lets later revisions alter
SQLite tables (SQLite has almost no ALTER TABLE).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from opd_fallback.central.tables import CentralMeta

config = context.config
target_metadata = CentralMeta.metadata


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


given = config.attributes.get("connection")
if given is not None:
    _run(given)
else:
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "sqlite:///central.db")
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()

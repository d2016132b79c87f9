"""A server's database named by one URL: an SQLite file or a PostgreSQL database.

Small on purpose and free of any server's tables, so the reference central
server and the hub can share it:

- :func:`parse_database_url` turns ``sqlite:///FILE`` or ``postgresql+psycopg://...``
  into a :class:`DatabaseUrl` (or one clear sentence saying what is wrong);
- :func:`connect` opens a :class:`Connection` whose SQL is written once, in
  SQLite's ``?`` style, and runs on either engine (the hot paths use plain
  prepared statements, not ORM objects);
- :func:`upgrade` brings a database to an Alembic head (once, even when several
  server processes start together on one PostgreSQL).
"""

from opd_fallback.serverdb.connection import Connection, TransientWriteError, connect
from opd_fallback.serverdb.migrate import upgrade
from opd_fallback.serverdb.url import POSTGRESQL, SQLITE, DatabaseUrl, parse_database_url

__all__ = [
    "POSTGRESQL",
    "SQLITE",
    "Connection",
    "DatabaseUrl",
    "TransientWriteError",
    "connect",
    "parse_database_url",
    "upgrade",
]

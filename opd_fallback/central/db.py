"""The central database: which one (a URL), its schema (Alembic), and small shared helpers.

The database is named by a URL (``sqlite:///central.db``, the default, or
``postgresql+psycopg://...``); a bare path still means an SQLite file, as
``--db FILE`` always did. :func:`create_schema` creates or upgrades the schema
through the Alembic revisions in ``central/migrations/``. Connections come
from :mod:`opd_fallback.serverdb` (WAL and ``synchronous=FULL`` on SQLite:
a committed batch survives a power cut, because the server says "applied" only
after COMMIT).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import TypedDict, TypeVar

from opd_fallback.domain.clock import now_iso
from opd_fallback.serverdb import Connection, DatabaseUrl, connect, parse_database_url, upgrade
from opd_fallback.serverdb.url import sqlite_url

MAINTENANCE_KEY = "maintenance"
Db = DatabaseUrl | Path | str
T = TypeVar("T")


def database(db: Db) -> DatabaseUrl:
    """A URL as given, or a bare path taken as an SQLite file (``--db FILE``)."""
    if isinstance(db, DatabaseUrl):
        return db
    text = str(db)
    return parse_database_url(text if "://" in text else sqlite_url(text))


def create_schema(db: Db) -> None:
    """Create the tables or bring them to the newest revision (idempotent; safe with
    several servers starting at once on one PostgreSQL)."""
    script_location = str(resources.files("opd_fallback.central").joinpath("migrations"))
    upgrade(database(db), script_location, adopt_table="op_outcome", adopt_revision="0001")


def open_db(db: Db) -> Connection:
    """A connection in autocommit mode (writers call ``begin`` themselves)."""
    return connect(database(db), application_name="opd-central")


def _run(db: Db, work: Callable[[Connection], T]) -> T:
    """Run ``work`` on a new connection; a database without tables yet (a new file,
    as ``--db FILE`` always allowed) gets its schema first."""
    conn = open_db(db)
    try:
        try:
            return work(conn)
        except Exception as exc:
            if not conn.is_missing_table(exc):
                raise
        create_schema(db)
        return work(conn)
    finally:
        conn.close()


def hash_token(token: str) -> str:
    """Tokens are 256-bit random, so a plain sha256 is enough (no slow KDF needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def add_device(db: Db, device_id: str) -> str:
    """Register a device (or give it a new token); returns the token, which is not stored."""
    token = secrets.token_urlsafe(32)
    _run(db, lambda conn: conn.execute(
        "INSERT INTO device(device_id, token_hash, created_at, max_seq, ops_applied) "
        "VALUES (?, ?, ?, 0, 0) ON CONFLICT(device_id) DO UPDATE SET token_hash=excluded.token_hash",
        (device_id, hash_token(token), now_iso()),
    ))
    return token


def set_maintenance(db: Db, on: bool) -> None:
    _run(db, lambda conn: conn.execute(
        "INSERT INTO setting(key, value) VALUES (?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
        (MAINTENANCE_KEY, "on" if on else "off"),
    ))


def is_maintenance(conn: Connection) -> bool:
    row = conn.execute("SELECT value FROM setting WHERE key=?", (MAINTENANCE_KEY,)).fetchone()
    return bool(row and row[0] == "on")


class ModeTotal(TypedDict):
    count: int
    total_paise: int


class DeviceCount(TypedDict):
    device_id: str
    max_seq: int
    ops_applied: int


class Stats(TypedDict):
    """What `central stats` prints (``--json``: as is)."""

    ops_remembered: int
    ops_by_status: dict[str, int]
    applied_by_kind: dict[str, int]
    records: dict[str, int]  # patients, visits, lab_orders, payments, voids
    payments_by_mode: dict[str, ModeTotal]
    devices: list[DeviceCount]
    maintenance: bool


def stats(db: Db) -> Stats:
    """Counts for `central stats`: records by kind, payments by mode, ops remembered.

    Plain counts of committed rows: whatever the number of workers or servers
    writing, each statement sees only committed batches, whole."""
    return _run(db, _stats)


def _stats(conn: Connection) -> Stats:
    def one(sql: str) -> int:
        return int(conn.execute(sql).fetchone()[0])

    by_kind = dict(
        conn.execute(
            "SELECT kind, COUNT(*) FROM op_outcome WHERE status='applied' GROUP BY kind ORDER BY kind"
        ).fetchall()
    )
    by_status = dict(conn.execute("SELECT status, COUNT(*) FROM op_outcome GROUP BY status").fetchall())
    by_mode = {
        mode: ModeTotal(count=n, total_paise=total)
        for mode, n, total in conn.execute(
            "SELECT mode, COUNT(*), CAST(SUM(amount_paise) AS BIGINT) FROM payment WHERE voided=0 "
            "GROUP BY mode ORDER BY mode"
        ).fetchall()
    }
    return {
        "ops_remembered": one("SELECT COUNT(*) FROM op_outcome"),
        "ops_by_status": by_status,
        "applied_by_kind": by_kind,
        "records": {
            "patients": one("SELECT COUNT(*) FROM patient"),
            "visits": one("SELECT COUNT(*) FROM visit"),
            "lab_orders": one("SELECT COUNT(*) FROM lab_order"),
            "payments": one("SELECT COUNT(*) FROM payment"),
            "voids": one("SELECT COUNT(*) FROM payment_void"),
        },
        "payments_by_mode": by_mode,
        "devices": [
            DeviceCount(device_id=d, max_seq=s, ops_applied=n)
            for d, s, n in conn.execute(
                "SELECT device_id, max_seq, ops_applied FROM device ORDER BY device_id"
            ).fetchall()
        ],
        "maintenance": is_maintenance(conn),
    }

"""Opening the central SQLite database: schema, pragmas, small shared helpers.

WAL so readers (health, reconciliation, a CLI in another process) never wait
for a batch being applied; ``synchronous=FULL`` so a committed batch survives
a power cut, because the server tells counters "applied" only after commit.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
from pathlib import Path

from sqlalchemy import create_engine

from opd_fallback.central.tables import CentralMeta
from opd_fallback.domain.clock import now_iso

MAINTENANCE_KEY = "maintenance"


def create_schema(db_path: Path | str) -> None:
    """Create the tables if missing (idempotent) and switch the file to WAL."""
    path = Path(db_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(f"sqlite:///{path}")
    try:
        CentralMeta.metadata.create_all(engine)
    finally:
        engine.dispose()
    conn = connect(path)
    conn.close()


def connect(db_path: Path | str) -> sqlite3.Connection:
    """A connection in autocommit mode (we issue BEGIN/SAVEPOINT ourselves)."""
    conn = sqlite3.connect(str(db_path), isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute("PRAGMA cache_size=-32000")
    return conn


def hash_token(token: str) -> str:
    """Tokens are 256-bit random, so a plain sha256 is enough (no slow KDF needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def add_device(db_path: Path | str, device_id: str) -> str:
    """Register a device (or give it a new token); returns the token, which is not stored."""
    create_schema(db_path)
    token = secrets.token_urlsafe(32)
    conn = connect(db_path)
    try:
        conn.execute(
            "INSERT INTO device(device_id, token_hash, created_at, max_seq, ops_applied) "
            "VALUES (?, ?, ?, 0, 0) ON CONFLICT(device_id) DO UPDATE SET token_hash=excluded.token_hash",
            (device_id, hash_token(token), now_iso()),
        )
    finally:
        conn.close()
    return token


def set_maintenance(db_path: Path | str, on: bool) -> None:
    create_schema(db_path)
    conn = connect(db_path)
    try:
        conn.execute(
            "INSERT INTO setting(key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (MAINTENANCE_KEY, "on" if on else "off"),
        )
    finally:
        conn.close()


def is_maintenance(conn: sqlite3.Connection) -> bool:
    row = conn.execute("SELECT value FROM setting WHERE key=?", (MAINTENANCE_KEY,)).fetchone()
    return bool(row and row[0] == "on")


def stats(db_path: Path | str) -> dict[str, object]:
    """Counts for `central stats`: records by kind, payments by mode, ops remembered."""
    create_schema(db_path)
    conn = connect(db_path)
    try:
        one = lambda sql: conn.execute(sql).fetchone()[0]  # noqa: E731
        by_kind = dict(
            conn.execute(
                "SELECT kind, COUNT(*) FROM op_outcome WHERE status='applied' GROUP BY kind ORDER BY kind"
            ).fetchall()
        )
        by_status = dict(conn.execute("SELECT status, COUNT(*) FROM op_outcome GROUP BY status").fetchall())
        by_mode = {
            mode: {"count": n, "total_paise": total}
            for mode, n, total in conn.execute(
                "SELECT mode, COUNT(*), SUM(amount_paise) FROM payment WHERE voided=0 GROUP BY mode ORDER BY mode"
            )
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
                {"device_id": d, "max_seq": s, "ops_applied": n}
                for d, s, n in conn.execute("SELECT device_id, max_seq, ops_applied FROM device ORDER BY device_id")
            ],
            "maintenance": is_maintenance(conn),
        }
    finally:
        conn.close()

"""The hub's own SQLite file: devices, the ops mirror, learned central ids, the index.

The hub is a mirror, not an authority: it keeps every op a counter pushed,
byte for byte as received, under one increasing *hub sequence* that counters
pull by. Learned central ids share that sequence, so one cursor gives a
counter everything new. WAL with ``synchronous=FULL``: a push is answered only
after its transaction is on disk, so an acknowledged op survives kill -9 and a
power cut. The file is created 0600 (patient data) and encrypted (SQLCipher 4,
through the one opener, :func:`opd_fallback.cipher.db.connect`). Its key is the
hub's own: ``hub serve --key-file FILE``, else a 0600 file in the platform
config directory named beside the database (``hub.db.keyref``), made on the
first start; never on a command line. A plain hub database from an older
version is encrypted in place on its first start (cipher/db.py says why a
kill at any moment leaves one good database).
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import sqlite3
from pathlib import Path

from opd_fallback.cipher import custody
from opd_fallback.cipher import db as cipher_db
from opd_fallback.cipher.keys import Key
from opd_fallback.domain.clock import now_iso

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS device (
        device_id TEXT PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL,
        last_push_at TEXT, last_pull_at TEXT)""",
    # the mirror: one row per op_id, the envelope exactly as pushed
    """CREATE TABLE IF NOT EXISTS op (
        hub_seq INTEGER PRIMARY KEY, op_id TEXT NOT NULL UNIQUE, device_id TEXT NOT NULL,
        seq INTEGER NOT NULL, kind TEXT NOT NULL, recorded_at TEXT NOT NULL,
        envelope BLOB NOT NULL, fingerprint TEXT NOT NULL, received_at TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS ix_op_device_seq ON op (device_id, seq)",
    # a central id any counter learned for a record (from its sync answers)
    """CREATE TABLE IF NOT EXISTS central_id (
        local_ref TEXT PRIMARY KEY, kind TEXT NOT NULL, central_id TEXT NOT NULL,
        reported_by TEXT NOT NULL, reported_at TEXT NOT NULL, hub_seq INTEGER NOT NULL UNIQUE)""",
    # the merged index of records (derived from the ops; see domain/shared.py)
    """CREATE TABLE IF NOT EXISTS record (
        local_ref TEXT PRIMARY KEY, kind TEXT NOT NULL, device_id TEXT NOT NULL, op_id TEXT NOT NULL,
        recorded_at TEXT NOT NULL, patient_ref TEXT, visit_ref TEXT, lab_order_ref TEXT,
        name TEXT, mobile TEXT, uhid TEXT, voided INTEGER NOT NULL DEFAULT 0, detail TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS ix_record_mobile ON record (mobile)",
    "CREATE INDEX IF NOT EXISTS ix_record_patient ON record (patient_ref)",
    # ops their counter's supervisor cancelled (never to reach central): a restore keeps them cancelled
    """CREATE TABLE IF NOT EXISTS withdrawn (
        op_id TEXT PRIMARY KEY, device_id TEXT NOT NULL, at TEXT NOT NULL, hub_seq INTEGER NOT NULL UNIQUE)""",
    "CREATE TABLE IF NOT EXISTS hub_counter (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    # who this database is (db_id: made once, with the file) and which history of it (epoch: new
    # whenever its data went back or was replaced, e.g. put back from a backup); see hub/identity.py
    "CREATE TABLE IF NOT EXISTS hub_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    # what the hub holds per counter (kept with every stored op, in the same transaction)
    """CREATE TABLE IF NOT EXISTS held (
        device_id TEXT PRIMARY KEY, max_seq INTEGER NOT NULL, ops INTEGER NOT NULL)""",
)
_DEVICE = re.compile(r"^[A-Z0-9]{1,16}$")


def _touch_private(path: Path) -> None:
    """Create the file 0600 before SQLite opens it (its -wal/-shm take the same mode)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)


_key_files: dict[str, Path] = {}


def use_key_file(db_path: Path | str, key_file: Path | None) -> None:
    """Open the hub database at ``db_path`` with the key in ``key_file`` (``hub serve --key-file``)."""
    if key_file is not None:
        _key_files[str(Path(db_path).resolve())] = Path(key_file)


def hub_key(db_path: Path | str) -> Key:
    """The hub database's key (made 0600 on the first start; see the module docstring)."""
    return custody.key_for(db_path, key_file=_key_files.get(str(Path(db_path).resolve())), name="hub")


def connect(db_path: Path | str) -> sqlite3.Connection:
    """A connection in autocommit mode (we issue BEGIN IMMEDIATE ourselves)."""
    # sqlcipher3's connection is the DB-API of sqlite3 (opd_fallback/cipher): typed as sqlite3's
    conn: sqlite3.Connection = cipher_db.connect(db_path, hub_key(db_path), isolation_level=None,
                                                 check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def create_schema(db_path: Path | str) -> None:
    path = Path(db_path)
    key = hub_key(path)
    if not path.exists():
        _touch_private(path)
    custody.ensure_encrypted(path, key)
    conn = connect(path)
    try:
        for stmt in SCHEMA:
            conn.execute(stmt)
        from opd_fallback.hub import identity

        identity.ensure(conn)
    finally:
        conn.close()


def hash_token(token: str) -> str:
    """Tokens are 256-bit random, so sha256 is enough (as for central's device tokens)."""
    return hashlib.sha256(token.encode()).hexdigest()


def add_device(db_path: Path | str, device_id: str) -> str:
    """Register a counter with the hub (or give it a new token); returns the token, never stored."""
    dev = device_id.strip().upper()
    if not _DEVICE.match(dev):
        raise ValueError("the counter id must be 1-16 letters or digits, e.g. C07")
    create_schema(db_path)
    token = secrets.token_urlsafe(32)
    conn = connect(db_path)
    try:
        conn.execute(
            "INSERT INTO device(device_id, token_hash, created_at) VALUES (?, ?, ?) "
            "ON CONFLICT(device_id) DO UPDATE SET token_hash=excluded.token_hash",
            (dev, hash_token(token), now_iso()),
        )
    finally:
        conn.close()
    return token


def remove_device(db_path: Path | str, device_id: str) -> bool:
    """Revoke a counter's hub token (its ops stay: the other counters still need them)."""
    dev = device_id.strip().upper()
    conn = connect(db_path)
    try:
        return bool(conn.execute("DELETE FROM device WHERE device_id=?", (dev,)).rowcount > 0)
    finally:
        conn.close()


def next_hub_seq(conn: sqlite3.Connection) -> int:
    """The next hub sequence number, inside the caller's write transaction."""
    row = conn.execute(
        "INSERT INTO hub_counter(name, value) VALUES ('hub_seq', 1) "
        "ON CONFLICT(name) DO UPDATE SET value = value + 1 RETURNING value"
    ).fetchone()
    return int(row[0])

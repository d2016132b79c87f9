"""Schema versions of the counter database (SQLite ``user_version``).

A counter upgraded in the field must keep its queue, so schema changes are
steps that run in order inside one transaction each; a fresh database gets the
current schema directly. To change the schema: add a step to ``STEPS`` that
alters an existing database from the previous version, and change the table
models to match.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, Engine
from sqlmodel import SQLModel

from opd_fallback.store import tables  # noqa: F401  (registers the tables)

# Objects SQLModel cannot declare: the name index and the guards that make the
# outbox undeletable and the audit log append-only.
EXTRAS = (
    """CREATE VIRTUAL TABLE IF NOT EXISTS patient_index_fts USING fts5(
        name, content='patient_index', content_rowid='id',
        tokenize="unicode61 remove_diacritics 2")""",
    """CREATE TRIGGER IF NOT EXISTS patient_index_ai AFTER INSERT ON patient_index BEGIN
        INSERT INTO patient_index_fts(rowid, name) VALUES (new.id, new.name); END""",
    """CREATE TRIGGER IF NOT EXISTS patient_index_ad AFTER DELETE ON patient_index BEGIN
        INSERT INTO patient_index_fts(patient_index_fts, rowid, name) VALUES('delete', old.id, old.name); END""",
    """CREATE TRIGGER IF NOT EXISTS patient_index_au AFTER UPDATE OF name ON patient_index BEGIN
        INSERT INTO patient_index_fts(patient_index_fts, rowid, name) VALUES('delete', old.id, old.name);
        INSERT INTO patient_index_fts(rowid, name) VALUES (new.id, new.name); END""",
    """CREATE TRIGGER IF NOT EXISTS op_no_delete BEFORE DELETE ON op BEGIN
        SELECT RAISE(ABORT, 'ops are never deleted'); END""",
    """CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit_log BEGIN
        SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit_log BEGIN
        SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS payment_no_delete BEFORE DELETE ON payment BEGIN
        SELECT RAISE(ABORT, 'payments are never deleted; void them'); END""",
    """CREATE TRIGGER IF NOT EXISTS payment_amount_fixed BEFORE UPDATE OF amount_paise, mode, items ON payment BEGIN
        SELECT RAISE(ABORT, 'payments are never edited; void them'); END""",
)


def _create_current(conn: Connection) -> None:
    SQLModel.metadata.create_all(conn)
    for stmt in EXTRAS:
        conn.exec_driver_sql(stmt)


def _v2_op_day_index(conn: Connection) -> None:
    """Reconciling a day reads ops by device and recorded_at: index them."""
    conn.exec_driver_sql("CREATE INDEX IF NOT EXISTS ix_op_device_recorded ON op (device_id, recorded_at)")


# STEPS[n] upgrades a database at version n to version n+1. Version 0 is an
# empty file; step 0 creates the current schema (a fresh file never runs the rest).
STEPS: list[Callable[[Connection], None]] = [_create_current, _v2_op_day_index]
LATEST = len(STEPS)


def current_version(conn: Connection) -> int:
    return int(conn.exec_driver_sql("PRAGMA user_version").scalar() or 0)


def migrate(engine: Engine) -> int:
    """Bring the database to ``LATEST``; returns the version it was at."""
    with engine.connect() as conn:
        conn = conn.execution_options(sqlite_begin="IMMEDIATE")
        with conn.begin():
            start = current_version(conn)
            if start > LATEST:
                raise RuntimeError(
                    f"this database has schema version {start}, newer than this program ({LATEST}); "
                    "upgrade opd-fallback"
                )
            if start == 0:
                _create_current(conn)
            else:
                for step in STEPS[start:]:
                    step(conn)
            conn.exec_driver_sql(f"PRAGMA user_version={LATEST}")
    return start

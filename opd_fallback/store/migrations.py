"""Schema versions of the counter database (SQLite ``user_version``).

A counter upgraded in the field must keep its queue, so schema changes are
steps that run in order inside one transaction each; a fresh database gets the
current schema directly. To change the schema: add a step to ``STEPS`` that
alters an existing database from the previous version, and change the table
models to match.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine
from sqlmodel import SQLModel

from opd_fallback.store import outbox, tables

if TYPE_CHECKING:
    from opd_fallback.domain.jsonio import JSONValue

SEARCH_INDEXES = (
    # schema 8 (store/search.py): a mobile's last digits, and another counter's tube and receipt numbers
    "CREATE INDEX IF NOT EXISTS ix_patient_mobile_tail ON patient (substr(mobile, -4))",
    "CREATE INDEX IF NOT EXISTS ix_patient_index_mobile_tail ON patient_index (substr(mobile, -4))",
    "CREATE INDEX IF NOT EXISTS ix_shared_record_mobile_tail ON shared_record (substr(mobile, -4))",
    "CREATE INDEX IF NOT EXISTS ix_shared_record_sample ON shared_record (json_extract(detail, '$.sample_id'))",
    "CREATE INDEX IF NOT EXISTS ix_shared_record_receipt ON shared_record (json_extract(detail, '$.receipt_no'))",
)

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
    *SEARCH_INDEXES,
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


def _v3_patient_index_refs(conn: Connection) -> None:
    """Contract 1.1: the offline numbers central maps to each indexed patient."""
    SQLModel.metadata.tables[tables.IndexedPatientRef.__tablename__].create(conn, checkfirst=True)
    # the index is filled from the start again, so every patient's local_refs arrive
    conn.exec_driver_sql("DELETE FROM meta WHERE key = 'patient_index_cursor'")


_REF_FIELDS = ("patient", "visit", "lab_order", "payment")


def one_key_refs(payload: JSONValue) -> JSONValue:
    """``payload`` with each reference reduced to its one non-null key (contract 1.1)."""
    if not isinstance(payload, dict):
        return payload
    return {k: ({rk: rv for rk, rv in v.items() if rv is not None}
                if k in _REF_FIELDS and isinstance(v, dict) else v) for k, v in payload.items()}


def _v4_exactly_one_key_refs(conn: Connection) -> None:
    """Ops queued by a 1.0 counter carry ``{"central_id": null, "local_ref": ...}``,
    which a strict 1.1 server rejects. Rewrite every op not yet synced to the
    one-key form; under 1.1 idempotency (absent equals null) the server sees the
    same payload, so a resend of an op it already applied is still a duplicate.
    Synced ops keep the form they were sent in."""
    outbox.rewrite_unsent_payloads(
        conn, one_key_refs,
        "payload LIKE '%\"central_id\":null%' OR payload LIKE '%\"local_ref\":null%'")


def _v5_backentry_slip_content(conn: Connection) -> None:
    """Back-entry slips are compared by slip number in normal form and by content."""
    have = {r[1] for r in conn.exec_driver_sql("PRAGMA table_info(backentry_slip)")}
    for column in ("slip_key TEXT NOT NULL DEFAULT ''", "content TEXT", "source_file TEXT",
                   "source_line INTEGER", "written_by TEXT", "imported_by TEXT"):
        if column.split()[0] not in have:
            conn.exec_driver_sql(f"ALTER TABLE backentry_slip ADD COLUMN {column}")
    # the normal form of opd_fallback.application.backentry.slip_key: no surrounding
    # spaces, no leading zeros ('000' is '0'); slip numbers were stored stripped
    conn.exec_driver_sql(
        "UPDATE backentry_slip SET slip_key = CASE WHEN ltrim(trim(slip_no), '0') = '' THEN '0' "
        "ELSE ltrim(trim(slip_no), '0') END")
    conn.exec_driver_sql(
        "CREATE INDEX IF NOT EXISTS ix_backentry_slip_key ON backentry_slip (device_id, visit_date, slip_key)")


def _v6_shared_records(conn: Connection) -> None:
    """Records of the other counters of the LAN, pulled from the hub."""
    SQLModel.metadata.tables[tables.SharedRecord.__tablename__].create(conn, checkfirst=True)


def _v7_sample_events(conn: Connection) -> None:
    """The collection desk (contract 1.2 ``lab.sample_collect``): tubes drawn or refused."""
    SQLModel.metadata.tables[tables.SampleEvent.__tablename__].create(conn, checkfirst=True)


def _v9_search_indexes(conn: Connection) -> None:
    """One search finds a patient by the last digits of a mobile, and by another
    counter's tube or receipt number, through these indexes (store/search.py)."""
    for stmt in SEARCH_INDEXES:
        conn.exec_driver_sql(stmt)


def _v_contract_op_origin(conn: Connection) -> None:
    """Contract 1.2: an op may carry an ``origin`` (a back-entered slip's writer,
    counter and number), sent with it. (Schema number: asked of the lead.)"""
    have = {r[1] for r in conn.exec_driver_sql("PRAGMA table_info(op)")}
    if "origin" not in have:
        conn.exec_driver_sql("ALTER TABLE op ADD COLUMN origin TEXT")


# STEPS[n] upgrades a database at version n to version n+1. Version 0 is an
# empty file; step 0 creates the current schema (a fresh file never runs the rest).
STEPS: list[Callable[[Connection], None]] = [
    _create_current, _v2_op_day_index, _v3_patient_index_refs, _v4_exactly_one_key_refs,
    _v5_backentry_slip_content, _v6_shared_records, _v7_sample_events, _v_contract_op_origin,
    _v9_search_indexes,
]
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

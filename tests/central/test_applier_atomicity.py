"""The applier on a real database (SQLite file or PostgreSQL), in process: a
batch that fails half-way leaves no op applied without its outcome and no
outcome without its op; and every op kind of the contract has its handler."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from opd_fallback.central import apply as apply_mod
from opd_fallback.central.apply import Applier
from opd_fallback.central.db import add_device, create_schema, database, open_db
from opd_fallback.central.master import load_master
from opd_fallback.domain.payloads import OP_KINDS, PatientFields
from opd_fallback.serverdb import Connection
from tests.central.util import factory, patient_ref, unique_mobile
from tests.helpers.central import Backend


class DiskError(Exception):
    """Stands for any database failure in the middle of a batch."""


def _count(conn: Connection, table: str) -> int:
    return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


@pytest.fixture
def url(tmp_path: Path, backend: Backend) -> str:
    url = backend.new_database_url(tmp_path)
    create_schema(url)
    add_device(url, "C07")
    return url


@pytest.fixture
def applier(url: str) -> Applier:
    return Applier(open_db(url), load_master())


@pytest.mark.parametrize("failure", ["crash", "ending_after_a_write"])
def test_a_batch_failing_after_a_write_rolls_back_whole_and_applies_cleanly_when_resent(
    applier: Applier, monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    f = factory()
    reg = f.register(mobile=unique_mobile())
    pay = f.payment(patient_ref(reg), [("OPD-NEW", 1000)], depends_on=[reg["op_id"]])
    real_map = applier._map

    def failing_map(local_ref: str, kind: str, central_id: str, op_id: str) -> None:
        if kind == "payment":  # after the payment row is written
            if failure == "crash":
                raise DiskError("disk I/O error")
            raise apply_mod._reject("validation_failed", "an ending after a write")
        real_map(local_ref, kind, central_id, op_id)

    monkeypatch.setattr(applier, "_map", failing_map)
    with pytest.raises(DiskError if failure == "crash" else RuntimeError):
        applier.apply_batch("C07", [reg, pay])
    conn = applier.conn
    for table in ("op_outcome", "ref_map", "patient", "patient_version", "payment", "counter"):
        assert _count(conn, table) == 0, table
    assert tuple(conn.execute("SELECT max_seq, ops_applied FROM device").fetchone()) == (0, 0)

    monkeypatch.setattr(applier, "_map", real_map)
    res = applier.apply_batch("C07", [reg, pay])
    assert [r["status"] for r in res] == ["applied", "applied"]
    uhid, receipt = res[0]["result"]["uhid"], res[1]["result"]["receipt_id"]
    if conn.is_sqlite:
        # the counters were read again after the rollback: no id was skipped or issued twice
        assert (uhid, receipt) == ("KGMU000000001", "KR000000001")
    else:
        # sequences never give a number back: the failed attempt's numbers are skipped, never reused
        assert apply_mod.ID_PATTERNS["uhid"].match(uhid) and uhid != "KGMU000000001"
        assert apply_mod.ID_PATTERNS["receipt"].match(receipt) and receipt != "KR000000001"
    assert _count(conn, "op_outcome") == 2 and _count(conn, "payment") == 1
    assert tuple(conn.execute("SELECT max_seq, ops_applied FROM device").fetchone()) == (pay["seq"], 2)


def test_every_patient_field_of_the_payload_has_a_column(url: str) -> None:
    """The register INSERT is built from PatientFields: a field added there
    without a column here would fail every batch with a patient in it."""
    engine = create_engine(database(url).sqlalchemy_url)
    try:
        columns = {c["name"] for c in inspect(engine).get_columns("patient")}
    finally:
        engine.dispose()
    missing = set(PatientFields.model_fields) - columns
    assert not missing, f"patient table lacks {sorted(missing)}"


def test_every_op_kind_has_its_handler() -> None:
    assert set(apply_mod._HANDLERS) == set(OP_KINDS)


def test_the_migrated_schema_is_the_declared_one(url: str) -> None:
    """tables.py is the one declaration; the Alembic revisions must build exactly it."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from opd_fallback.central.tables import CentralMeta

    engine = create_engine(database(url).sqlalchemy_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), CentralMeta.metadata)
    finally:
        engine.dispose()
    assert diff == []


def _head_revision() -> str:
    """The newest migration (one head: the revisions form a line)."""
    from importlib import resources

    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("opd_fallback.central").joinpath("migrations")))
    head = ScriptDirectory.from_config(cfg).get_heads()
    assert len(head) == 1, head
    return str(head[0])


def test_a_database_made_before_migrations_is_adopted_and_upgraded(tmp_path: Path, backend: Backend) -> None:
    """A central database made with create_all (before Alembic), even one older than
    lab_sample, is stamped and brought to the declared schema, its rows kept."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import text

    from opd_fallback.central.tables import CentralMeta

    url = backend.new_database_url(tmp_path)
    engine = create_engine(database(url).sqlalchemy_url)
    try:
        CentralMeta.metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE lab_sample"))
        add_device(url, "C07")
        create_schema(url)
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), CentralMeta.metadata) == []
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == _head_revision()
            assert conn.execute(text("SELECT device_id FROM device")).scalar() == "C07"
    finally:
        engine.dispose()

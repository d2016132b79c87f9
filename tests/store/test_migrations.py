"""A counter upgraded in the field keeps its queue: migrations step an older
``user_version`` forward without touching the ops already waiting."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Connection, text

from opd_fallback.application.services import CounterService, PaymentInput
from opd_fallback.store import migrations, open_store


def _version(path: Path) -> int:
    store = open_store(path, migrate=False)
    with store.read() as s:
        v = int(s.execute(text("PRAGMA user_version")).scalar() or 0)
    store.close()
    return v


def test_fresh_database_gets_latest_version_and_migrate_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    open_store(path).close()
    assert _version(path) == migrations.LATEST
    store = open_store(path)
    assert migrations.migrate(store.engine) == migrations.LATEST
    store.close()


def test_upgrade_from_v1_keeps_the_queue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "c.db"
    store = open_store(path)
    svc = CounterService(store, "C07")
    reg = svc.register_new("op1", {"name": "Ram Kumar", "sex": "M", "age_years": 40},
                           department="MED", payment=PaymentInput(mode="cash", amount_paise=1000))
    store.close()
    assert _version(path) == migrations.LATEST

    def step_next(conn: Connection) -> None:
        conn.exec_driver_sql("ALTER TABLE op ADD COLUMN note TEXT")
        conn.exec_driver_sql("UPDATE op SET note = 'migrated'")

    monkeypatch.setattr(migrations, "STEPS", [*migrations.STEPS, step_next])
    monkeypatch.setattr(migrations, "LATEST", migrations.LATEST + 1)
    store = open_store(path)
    with store.read() as s:
        assert s.execute(text("PRAGMA user_version")).scalar() == migrations.LATEST
        rows = s.execute(text("SELECT op_id, state, note FROM op ORDER BY seq")).all()
        # the guards survive the upgrade
        triggers = {r[0] for r in s.execute(text("SELECT name FROM sqlite_master WHERE type='trigger'"))}
    assert [r[0] for r in rows] == [reg.patient.op_id, reg.visit.op_id, reg.payment.op_id]  # type: ignore[union-attr]
    assert {r[1] for r in rows} == {"pending"} and {r[2] for r in rows} == {"migrated"}
    assert {"op_no_delete", "audit_no_update", "audit_no_delete"} <= triggers
    # and the counter carries on with new numbers above the old ones
    nxt = CounterService(store, "C07").register_new(
        "op1", {"name": "Sita Devi", "sex": "F", "age_years": 30}, department="MED")
    assert nxt.patient.seq > reg.payment.seq  # type: ignore[union-attr]
    store.close()


def test_a_failing_step_leaves_the_old_version_and_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "c.db"
    store = open_store(path)
    CounterService(store, "C07").register_new("op1", {"name": "Ram", "sex": "M", "age_years": 4}, department="MED")
    store.close()

    def broken(conn: Connection) -> None:
        conn.exec_driver_sql("ALTER TABLE op ADD COLUMN half TEXT")
        raise RuntimeError("power cut in the middle of the upgrade")

    before = migrations.LATEST
    monkeypatch.setattr(migrations, "STEPS", [*migrations.STEPS, broken])
    monkeypatch.setattr(migrations, "LATEST", before + 1)
    with pytest.raises(RuntimeError):
        open_store(path)
    monkeypatch.undo()
    assert _version(path) == before
    store = open_store(path)
    with store.read() as s:
        cols = {r[1] for r in s.execute(text("PRAGMA table_info(op)"))}
        assert "half" not in cols
        assert s.execute(text("SELECT count(*) FROM op")).scalar() == 2
    store.close()


def test_database_newer_than_program_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    store = open_store(path)
    with store.engine.connect() as conn:
        conn.exec_driver_sql(f"PRAGMA user_version={migrations.LATEST + 1}")
        conn.commit()
    store.close()
    with pytest.raises(RuntimeError, match="newer than this program"):
        open_store(path)


def test_schema_1_database_gets_the_day_index_and_keeps_its_ops(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    store = open_store(path)
    reg = CounterService(store, "C07").register_new(
        "op1", {"name": "Ram Kumar", "sex": "M", "age_years": 40}, department="MED")
    with store.write() as s:  # make it look like a counter still on schema 1
        s.execute(text("DROP INDEX ix_op_device_recorded"))
        s.execute(text("PRAGMA user_version=1"))
    store.close()
    store = open_store(path)
    with store.read() as s:
        indexes = {r[0] for r in s.execute(text("SELECT name FROM sqlite_master WHERE type='index'"))}
        ops = [r[0] for r in s.execute(text("SELECT op_id FROM op ORDER BY seq"))]
        version = s.execute(text("PRAGMA user_version")).scalar()
    store.close()
    assert version == migrations.LATEST >= 2
    assert "ix_op_device_recorded" in indexes
    assert ops == [reg.patient.op_id, reg.visit.op_id]

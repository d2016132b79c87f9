"""The applier on a real SQLite file, in process: a batch that fails half-way
leaves no op applied without its outcome and no outcome without its op."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from opd_fallback.central import apply as apply_mod
from opd_fallback.central.apply import Applier
from opd_fallback.central.db import add_device, connect, create_schema
from opd_fallback.central.master import load_master
from opd_fallback.domain.payloads import PatientFields
from tests.central.util import factory, patient_ref, unique_mobile


def _count(conn: sqlite3.Connection, table: str) -> int:
    return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


@pytest.fixture
def applier(tmp_path: Path) -> Applier:
    db = tmp_path / "central.db"
    create_schema(db)
    add_device(db, "C07")
    return Applier(connect(db), load_master())


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
                raise sqlite3.OperationalError("disk I/O error")
            raise apply_mod._reject("validation_failed", "an ending after a write")
        real_map(local_ref, kind, central_id, op_id)

    monkeypatch.setattr(applier, "_map", failing_map)
    with pytest.raises(sqlite3.OperationalError if failure == "crash" else RuntimeError):
        applier.apply_batch("C07", [reg, pay])
    conn = applier.conn
    for table in ("op_outcome", "ref_map", "patient", "patient_version", "payment", "counter"):
        assert _count(conn, table) == 0, table
    assert conn.execute("SELECT max_seq, ops_applied FROM device").fetchone() == (0, 0)

    monkeypatch.setattr(applier, "_map", real_map)
    res = applier.apply_batch("C07", [reg, pay])
    assert [r["status"] for r in res] == ["applied", "applied"]
    # the counters were reloaded on rollback: no id was skipped or issued twice
    assert res[0]["result"]["uhid"] == "KGMU000000001"
    assert res[1]["result"]["receipt_id"] == "KR000000001"
    assert _count(conn, "op_outcome") == 2 and _count(conn, "payment") == 1
    assert conn.execute("SELECT max_seq, ops_applied FROM device").fetchone() == (pay["seq"], 2)


def test_every_patient_field_of_the_payload_has_a_column(applier: Applier) -> None:
    """The register INSERT is built from PatientFields: a field added there
    without a column here would fail every batch with a patient in it."""
    columns = {row[1] for row in applier.conn.execute("PRAGMA table_info(patient)")}
    missing = set(PatientFields.model_fields) - columns
    assert not missing, f"patient table lacks {sorted(missing)}"

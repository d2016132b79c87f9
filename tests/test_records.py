"""The cheap record path (``store.records.new_record``) writes exactly what the
SQLModel constructor writes: the same back-entry file imported once through
each, every counter table compared row by row (op ids made the same, clock
columns masked), and a record built both ways has the same fields."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from sqlmodel import SQLModel

from opd_fallback.application.backentry import import_file
from opd_fallback.application.services import tx as services_tx
from opd_fallback.store import outbox
from opd_fallback.store.engine import open_store
from opd_fallback.store.records import new_record
from opd_fallback.store.tables import Op, Patient
from tests.conftest import put_master_data
from tests.helpers import db as db_helper
from tests.test_backentry import HEADER, IMPORTER, ROWS, TODAY, add_operators

# clock columns: when the row was written, not what it says
_CLOCK = ("updated_at", "created_at", "imported_at", "at", "ts", "when")


def _constructor(cls: type[SQLModel], **values: object) -> SQLModel:
    return cls(**values)


def _import(tmp: Path, monkeypatch: pytest.MonkeyPatch, *, fast: bool) -> dict[str, list[tuple[object, ...]]]:
    ids = itertools.count(1)
    with monkeypatch.context() as m:
        m.setattr(outbox, "new_op_id", lambda: f"op-{next(ids):06d}")
        if not fast:
            m.setattr(outbox, "new_record", _constructor)
            m.setattr(services_tx, "new_record", _constructor)
        tmp.mkdir()
        store = open_store(tmp / "counter.db")
        put_master_data(store)
        add_operators(store, "op1", IMPORTER)
        path = tmp / "slips.csv"
        rows = ROWS + [f"{200 + i},2026-11-2{i % 3},09:{i:02d},op1,,Ram {chr(65 + i)},राम,M,{20 + i},,S/O,Shyam,"
                       f"98765{i:05d},MED,,{1000 if i % 2 else 0},{'cash' if i % 2 else 'waived'},,"
                       f"{'CBC;LFT' if i % 3 == 0 else ''},{'55000' if i % 3 == 0 else ''},"
                       f"{'upi' if i % 3 == 0 else ''},{'UTR9' if i % 3 == 0 else ''}" for i in range(24)]
        path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
        report = import_file(store, "C07", path, imported_by=IMPORTER, today=TODAY, batch_rows=7)
        assert report.count("imported") > 10 and report.rejected  # both kinds of row
        store.close()
    with db_helper.connect(tmp / "counter.db") as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        out: dict[str, list[tuple[object, ...]]] = {}
        for t in tables:
            cur = db.execute(f'SELECT * FROM "{t}"')
            cols = [d[0] for d in cur.description]
            out[t] = sorted((tuple("<clock>" if c in _CLOCK or (c.endswith("_at") and c != "recorded_at") else v
                                  for c, v in zip(cols, row, strict=True)) for row in cur), key=repr)
    return out


def test_fast_records_write_what_the_constructor_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    slow = _import(tmp_path / "slow", monkeypatch, fast=False)
    fast = _import(tmp_path / "fast", monkeypatch, fast=True)
    assert slow.keys() == fast.keys()
    assert sum(len(v) for v in fast.values()) > 100
    for table in slow:
        assert fast[table] == slow[table], table


def test_a_record_built_both_ways_has_the_same_fields() -> None:
    values: dict[str, object] = {"seq": 3, "op_id": "x", "kind": "visit.open", "device_id": "C07", "operator_id": "o",
                                 "recorded_at": "2026-11-20T09:00:00+05:30", "depends_on": "[]", "payload": "{}",
                                 "updated_at": "t", "record_kind": "visit", "record_ref": "r", "source": "backentry"}
    a, b = Op(**values), new_record(Op, **values)
    assert a.model_dump() == b.model_dump()
    assert a.model_fields_set == b.model_fields_set
    with pytest.raises(TypeError, match="no field"):
        new_record(Patient, not_a_field=1)

"""The one write path, two ways: a back-entry file imported in batches
(``import_file``: records kept as values, one ``executemany`` a table) leaves
every counter table exactly as the same file imported row by row through the
services (``import_row``: each row its own transaction, its records ORM objects
through the session). Compared row by row, op ids made the same, row ids and
clock columns masked, and the money paisa by paisa; rejected, waived, lab,
revisit and reserved-id rows included."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from opd_fallback.application.backentry import import_file, import_row, parse_row, read_rows
from opd_fallback.application.services import CounterService
from opd_fallback.store import outbox, reserved
from opd_fallback.store.engine import open_store
from opd_fallback.store.tables import Operator
from tests.conftest import put_master_data
from tests.helpers import db as db_helper
from tests.test_backentry import IMPORTER, TODAY, add_operators

HEADER = ("slip_no,visit_date,recorded_at,operator_id,uhid,name,name_local,sex,age_years,category,mobile,"
          "department,unit,fee_paise,fee_mode,fee_ref,fee_waiver_reason,fee_waiver_by,"
          "lab_tests,lab_paise,lab_mode,lab_ref,lab_items")


def _rows() -> list[str]:
    rows = []
    for i in range(60):
        kind = i % 6
        who = "op1" if i != 17 else "nobody"  # line 19: not an operator of this counter
        dept = "XYZ" if i == 23 else "MED"  # line 25: unknown department
        patient = (f",KGMU{i:05d},,,,,,," if kind == 1 else f",,Ram {chr(65 + i % 26)},राम,M,{20 + i},general,"
                   f"98765{i:05d},")
        fee = {0: "1000,cash,,,", 1: "0,waived,,,", 2: "1000,upi,UTR{i},,", 3: ",waived,,no money,sup1",
               4: ",waived,,,", 5: "1000,card,SLIP{i},,"}[kind].format(i=i)  # kind 4: a waiver refused
        lab = {0: "CBC;LFT,55000,cash,,CBC:15000;LFT:40000", 2: "CBC,15000,upi,UTR9{i},", 5: "LFT,1,cash,,"}.get(
            kind, ",,,,").format(i=i)  # kind 5: a lab amount that is not the price: rejected
        rows.append(f"{300 + i},2026-11-2{i % 4},09:{i % 60:02d},{who}{patient}{dept},,{fee},{lab}")
    rows.append(rows[0])  # the same slip twice in the file
    return rows


def _tables(db_path: Path) -> dict[str, list[tuple[object, ...]]]:
    with db_helper.connect(db_path) as db:
        names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        out: dict[str, list[tuple[object, ...]]] = {}
        for t in names:
            cur = db.execute(f'SELECT * FROM "{t}"')
            cols = [d[0] for d in cur.description]
            masked = [tuple("<masked>" if c in ("id", "at") or (c.endswith("_at") and c != "recorded_at") else v
                            for c, v in zip(cols, row, strict=True)) for row in cur]
            out[t] = sorted(masked, key=repr)
        out["paise"] = [tuple(db.execute("SELECT count(*), sum(amount_paise) FROM payment").fetchone())]
    return out


def _import(tmp: Path, monkeypatch: pytest.MonkeyPatch, *, batched: bool) -> dict[str, list[tuple[object, ...]]]:
    ids = itertools.count(1)
    tmp.mkdir()
    with monkeypatch.context() as m:
        m.setattr(outbox, "new_op_id", lambda: f"op-{next(ids):06d}")
        store = open_store(tmp / "counter.db")
        put_master_data(store)
        add_operators(store, "op1", IMPORTER)
        with store.write() as s:
            s.add(Operator(id="sup1", name="Supervisor", pin_hash="-", role="supervisor", active=True,
                           created_at="2026-11-01T09:00:00+05:30"))
            reserved.add_block(s, "uhid", [f"KGMU9{n:05d}" for n in range(20)])  # a third of the new patients
        path = tmp / "slips.csv"
        path.write_text("\n".join([HEADER, *_rows()]) + "\n", encoding="utf-8")
        if batched:
            report = import_file(store, "C07", path, imported_by=IMPORTER, today=TODAY, batch_rows=7)
            statuses = [r.status for r in report.rows]
        else:
            svc = CounterService(store, "C07")
            statuses = []
            for line, cells in read_rows(path)[1]:
                slip, _ = parse_row(line, cells, today=TODAY)
                statuses.append("rejected" if slip is None else import_row(
                    svc, line, slip, imported_by=IMPORTER, source_file=path.name).status)
        store.close()
    assert statuses.count("imported") > 30 and statuses.count("rejected") >= 10, statuses
    return _tables(tmp / "counter.db")


def test_batched_import_writes_what_row_by_row_services_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    by_row = _import(tmp_path / "rows", monkeypatch, batched=False)
    batched = _import(tmp_path / "batched", monkeypatch, batched=True)
    assert by_row.keys() == batched.keys()
    assert len(batched["op"]) > 100 and len(batched["payment"]) > 40 and batched["paise"][0][1] > 0
    for table in by_row:
        assert batched[table] == by_row[table], table


def test_a_big_file_s_report_counts_every_row_and_streams_the_rejected_ones(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Memory stays flat whatever the file's size: past ``KEPT_ROWS`` the outcomes
    of rows not rejected are counted, not kept, and past ``KEPT_REJECTED`` the
    rejected ones too; every rejected row is in the rejects file, written as it
    came, and the CLI's totals come from the counts."""
    from opd_fallback.application.backentry import importer

    monkeypatch.setattr(importer, "KEPT_ROWS", 5)
    monkeypatch.setattr(importer, "KEPT_REJECTED", 2)
    store = open_store(tmp_path / "counter.db")
    put_master_data(store)
    add_operators(store, "op1", IMPORTER)
    rows = [f"{400 + i},2026-11-20,09:00,op1,,Ram {chr(65 + i % 26)},,M,30,,,{'XYZ' if i % 10 == 3 else 'MED'},,"
            "1000,cash,,,,,,,," for i in range(40)]
    path = tmp_path / "slips.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    report = import_file(store, "C07", path, imported_by=IMPORTER, today=TODAY, batch_rows=7)
    assert (report.count("imported"), report.count("rejected"), report.total) == (36, 4, 40)
    assert len(report.rows) == 5 + 2 and [r.line for r in report.rejected] == [5, 15]
    assert report.rejects_path is not None and report.exit_code == 1
    lines = report.rejects_path.read_text(encoding="utf-8-sig").splitlines()
    assert [line.split(",")[0] for line in lines[1:]] == ["403", "413", "423", "433"]  # all four, in order
    store.close()

"""Back-entry 1.2: the waiver columns and ``slip_device`` (with the op's
``origin``), and cells no column may hold (a formula in a payment reference, a
NUL byte, a 1 MB cell): each refuses its row, naming the column, never the file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson
from sqlalchemy import text

from opd_fallback.application.backentry import import_file
from opd_fallback.store import Store
from opd_fallback.store.tables import Operator
from tests.test_backentry import IMPORTER, TODAY, _count, _write, add_operators

HEADER = ("slip_no,visit_date,operator_id,name,sex,age_years,category,department,fee_paise,fee_mode,fee_ref,"
          "fee_waiver_reason,fee_waiver_by,lab_tests,lab_paise,lab_mode,lab_waiver_reason,lab_waiver_by,slip_device")


def _setup(store: Store, with_master_data: Callable[..., None]) -> None:
    with_master_data(store)
    add_operators(store, "op1", IMPORTER)
    with store.write() as s:
        s.add(Operator(id="sup1", name="Supervisor", pin_hash="-", role="supervisor", active=True,
                       created_at="2026-11-01T09:00:00+05:30"))


def _problems(report) -> dict[int, list[tuple[str, str]]]:
    out: dict[int, list[tuple[str, str]]] = {}
    for r in report.rejected:
        for p in r.problems:
            out.setdefault(p.line, []).append((p.column, p.reason))
    return out


def _ops(store: Store) -> list[tuple[str, dict, dict | None]]:
    with store.read() as s:
        rows = s.execute(text("SELECT kind, payload, origin FROM op ORDER BY seq")).all()
    return [(k, orjson.loads(p), orjson.loads(o) if o else None) for k, p, o in rows]


def test_waived_fee_needs_both_waiver_columns_and_carries_them(
    tmp_path: Path, store: Store, with_master_data: Callable[..., None]
) -> None:
    _setup(store, with_master_data)
    rows = [
        # line 2: a general patient's fee waived with reason and supervisor: in, with its waiver
        "1,2026-11-20,op1,Ram Kumar,M,40,,MED,0,waived,,flood victim,sup1,,,,,,",
        # line 3: no waiver columns: rejected naming both
        "2,2026-11-20,op1,Sita Devi,F,30,,MED,0,waived,,,,,,,,,",
        # line 4: only the reason: rejected naming the supervisor's column
        "3,2026-11-20,op1,Gita Rani,F,25,,MED,0,waived,,poor,,,,,,,",
        # line 5: an operator who is no supervisor
        "4,2026-11-20,op1,Mohan Lal,M,33,,MED,0,waived,,poor,op1,,,,,,",
        # line 6: waiver columns on a fee that was paid
        "5,2026-11-20,op1,Anil Kumar,M,45,,MED,1000,cash,,poor,sup1,,,,,,",
        # line 7: lab tests waived without the lab waiver columns
        "6,2026-11-20,op1,Pooja Rani,F,22,,MED,1000,cash,,,,CBC,0,waived,,,",
        # line 8: lab tests waived with them
        "7,2026-11-20,op1,Vijay Kumar,M,60,,MED,1000,cash,,,,CBC,0,waived,camp,sup1,",
    ]
    report = import_file(store, "C07", _write(tmp_path, rows, HEADER), today=TODAY, imported_by=IMPORTER)
    problems = _problems(report)
    assert sorted(problems) == [3, 4, 5, 6, 7]
    assert [c for c, _ in problems[3]] == ["fee_waiver_reason", "fee_waiver_by"]
    assert [c for c, _ in problems[4]] == ["fee_waiver_by"]
    assert "operator id of a supervisor of this counter" in problems[4][0][1]
    assert [c for c, _ in problems[5]] == ["fee_waiver_by"]
    assert {c for c, _ in problems[6]} == {"fee_waiver_reason", "fee_waiver_by"}
    assert "not waived" in problems[6][0][1]
    assert [c for c, _ in problems[7]] == ["lab_waiver_reason", "lab_waiver_by"]
    assert report.count("imported") == 2
    waivers = [p.get("waiver") for k, p, _o in _ops(store) if k == "payment.record" and p["mode"] == "waived"]
    assert waivers == [{"reason": "flood victim", "approved_by": "sup1"}, {"reason": "camp", "approved_by": "sup1"}]
    assert _count(store, "SELECT count(*) FROM audit_log WHERE action = 'payment.waive'") == 2  # approved, audited
    # the same file again: nothing new, and the rows in are 'already imported'
    again = import_file(store, "C07", _write(tmp_path, rows, HEADER), today=TODAY, imported_by=IMPORTER)
    assert again.count("already_imported") == 2 and again.count("imported") == 0


def test_an_exempt_category_needs_no_waiver_columns(
    tmp_path: Path, store: Store, with_master_data: Callable[..., None]
) -> None:
    """A 1.1 row that needs none of the new columns imports as before."""
    _setup(store, with_master_data)
    report = import_file(store, "C07", _write(tmp_path, ["1,2026-11-20,op1,Ram Kumar,M,40,bpl,MED,0,waived,,,,,,,,,"],
                                              HEADER), today=TODAY, imported_by=IMPORTER)
    assert report.count("imported") == 1, [str(p) for r in report.rejected for p in r.problems]
    (pay,) = [p for k, p, _o in _ops(store) if k == "payment.record"]
    assert pay["mode"] == "waived" and "waiver" not in pay


def test_slip_device_goes_in_the_origin_and_keys_the_slip(
    tmp_path: Path, store: Store, with_master_data: Callable[..., None]
) -> None:
    _setup(store, with_master_data)
    rows = [
        "42,2026-11-20,op1,Ram Kumar,M,40,,MED,1000,cash,,,,,,,,,",
        "42,2026-11-20,op1,Sita Devi,F,30,,MED,1000,cash,,,,,,,,,c03",  # slip 42 of another counter
        "43,2026-11-20,op1,Gita Rani,F,25,,MED,1000,cash,,,,,,,,,C-3",
    ]
    report = import_file(store, "C07", _write(tmp_path, rows, HEADER), today=TODAY, imported_by=IMPORTER)
    assert report.count("imported") == 2
    assert [c for c, _ in _problems(report)[4]] == ["slip_device"]
    origins = [o for _k, _p, o in _ops(store)]
    assert origins == [{"written_by": "op1", "device_id": "C07", "slip_no": "42"}] * 3 + \
        [{"written_by": "op1", "device_id": "C03", "slip_no": "42"}] * 3
    with store.read() as s:
        keys = s.execute(text("SELECT device_id, slip_no FROM backentry_slip ORDER BY id")).all()
    assert [tuple(k) for k in keys] == [("C07", "42"), ("C03", "42")]


def test_cells_no_column_may_hold_refuse_their_row_only(
    tmp_path: Path, store: Store, with_master_data: Callable[..., None]
) -> None:
    _setup(store, with_master_data)
    rows = [
        "1,2026-11-20,op1,Ram Kumar,M,40,,MED,1000,upi,\"=HYPERLINK(\"\"http://x\"\",\"\"UTR\"\")\",,,,,,,,",
        "2,2026-11-20,op1,Sita Devi,F,30,,MED,1000,card,+123,,,,,,,,",
        "3,2026-11-20,op1,Gita Rani,F,25,,MED,1000,card,@SUM(1),,,,,,,,",
        "4,2026-11-20,op1,Mohan\x00Lal,M,33,,MED,1000,cash,,,,,,,,,",
        "5,2026-11-20,op1," + "A" * 1_000_000 + ",M,33,,MED,1000,cash,,,,,,,,,",
        "6,2026-11-20,op1,Anil Kumar,M,45,,MED,1000,upi,UTR-123,,,,,,,,",
    ]
    report = import_file(store, "C07", _write(tmp_path, rows, HEADER), today=TODAY, imported_by=IMPORTER)
    problems = _problems(report)
    assert sorted(problems) == [2, 3, 4, 5, 6]
    for line in (2, 3, 4):
        assert [c for c, _ in problems[line]] == ["fee_ref"]
        assert "formula" in problems[line][0][1]
    assert problems[5] == [("name", "contains a NUL byte, which no column may hold: retype the cell")]
    assert problems[6] == [("name", "is too long (1000000 characters, at most 1000): check the cell")]
    assert report.count("imported") == 1
    with store.read() as s:
        refs = [r[0] for r in s.execute(text("SELECT mode_ref FROM payment")).all()]
    assert refs == ["UTR-123"]

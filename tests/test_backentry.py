"""Back-entry import: whole rows or nothing, re-import imports nothing new,
every bad row reported with its line, column and reason."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import date
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from opd_fallback.application.backentry import (
    COLUMNS,
    FileUnusable,
    ImportRefused,
    import_file,
    import_row,
    parse_row,
    rejects_path_for,
)
from opd_fallback.application.services import CounterService
from opd_fallback.store import Store
from opd_fallback.store.tables import Operator
from tests.helpers import db as db_helper

HEADER = ("slip_no,visit_date,recorded_at,operator_id,uhid,name,name_local,sex,age_years,age_months,"
          "guardian_relation,guardian_name,mobile,department,unit,fee_paise,fee_mode,fee_ref,"
          "lab_tests,lab_paise,lab_mode,lab_ref")
ROWS = [
    # line 2: good, new patient, Devanagari local name, +91 mobile with spaces and dashes
    "101,2026-11-20,09:15,op1,,Ram Kumar,राम कुमार,M,40,,S/O,Shyam Lal,+91 98765-43210,MED,MED-U1,1000,cash,,,,,",
    # line 3: good revisit of a central patient with a lab order paid by UPI
    "102,2026-11-20,09:20,op1,KGMU00012,,,,,,,,,SURG,,0,waived,,CBC;LFT,55000,upi,UTR123456",
    # line 4: bad mobile
    "103,2026-11-20,09:25,op1,,Sita Devi,सीता देवी,F,30,,,,12345,MED,,1000,cash,,,,,",
    # line 5: unknown department (the patient part is fine: nothing of the row may be saved)
    "104,2026-11-20,09:30,op1,,Gita Rani,,F,25,,,,,XYZ,,1000,cash,,,,,",
    # line 6: missing name for a new patient
    "105,2026-11-20,09:35,op1,,,,M,50,,,,,MED,,1000,cash,,,,,",
    # line 7: lab amount does not add up to the tests' prices
    "106,2026-11-20,09:40,op1,KGMU00013,,,,,,,,,MED,,,,,CBC,20000,cash,",
    # line 8: good, infant with months, only the Devanagari name also given
    "107,2026-11-21,,op1,,Baby of Anita,अनीता की बेटी,F,,3,D/O,Anita,09876543210,MED,,1000,card,SLIP77,,,,",
    # line 9: the same slip as line 2 again in this file
    "101,2026-11-20,09:15,op1,,Ram Kumar,राम कुमार,M,40,,S/O,Shyam Lal,+91 98765-43210,MED,MED-U1,1000,cash,,,,,",
    # line 10: name in Devanagari only where Latin is required
    "108,2026-11-21,10:00,op1,,मोहन,,M,33,,,,,MED,,1000,cash,,,,,",
    # line 11: UPI without its reference; bad time
    "109,2026-11-21,25:00,op1,,Mohan Lal,,M,33,,,,,MED,,1000,upi,,,,,",
]


def _write(tmp_path: Path, rows: list[str], header: str = HEADER, name: str = "slips.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def _count(store: Store, sql: str) -> int:
    with store.read() as s:
        return int(s.execute(text(sql)).scalar() or 0)


def _problems(report) -> dict[int, set[str]]:
    out: dict[int, set[str]] = {}
    for r in report.rejected:
        for p in r.problems:
            out.setdefault(p.line, set()).add(p.column)
    return out


TODAY = date(2026, 11, 26)
IMPORTER = "clerk1"  # the authenticated operator importing (the CLI checks the PIN)


def add_operators(store: Store, *ids: str, active: bool = True) -> None:
    """Operators as ``operator add`` leaves them (the import never checks a PIN
    itself: the CLI does, see test_cli_import), without the slow PIN hash."""
    with store.write() as s:
        for i in ids:
            s.add(Operator(id=i, name=f"Operator {i}", pin_hash="-", role="operator", active=active,
                           created_at="2026-11-01T09:00:00+05:30"))


@pytest.fixture(autouse=True)
def _operators(store: Store) -> None:
    """op1 wrote the paper slips; clerk1 imports them."""
    add_operators(store, "op1", IMPORTER)


def test_good_and_bad_rows_imported_twice(
    tmp_path: Path, store: Store, with_master_data: Callable[..., None]
) -> None:
    with_master_data(store)
    path = _write(tmp_path, ROWS)
    report = import_file(store, "C07", path, today=TODAY, imported_by=IMPORTER)

    assert report.count("imported") == 3
    assert report.exit_code == 1
    assert _problems(report) == {
        4: {"mobile"},
        5: {"department"},
        6: {"name"},
        7: {"lab_paise"},
        9: {"slip_no"},
        10: {"name"},
        11: {"recorded_at", "fee_ref"},
    }
    reasons = {p.line: p.reason for r in report.rejected for p in r.problems}
    assert "10 digits" in reasons[4]
    assert "'XYZ' is not a department" in reasons[5]
    assert "required" in reasons[6]
    assert "₹550.00" not in reasons[7] and "₹150.00" in reasons[7] and "₹200.00" in reasons[7]
    assert "line 2" in reasons[9]
    assert "English letters" in reasons[10]

    # 3 good rows: new patient (register, visit, fee) + revisit (visit, fee, lab, lab fee) + new (3 ops)
    assert _count(store, "SELECT count(*) FROM op") == 3 + 4 + 3
    assert _count(store, "SELECT count(*) FROM op WHERE source != 'backentry'") == 0
    assert _count(store, "SELECT count(*) FROM patient") == 2
    assert _count(store, "SELECT count(*) FROM patient WHERE name = 'Gita Rani'") == 0  # whole row or nothing
    assert _count(store, "SELECT count(*) FROM backentry_slip") == 3
    with store.read() as s:
        ram = s.execute(text("SELECT name_local, mobile, local_ref FROM patient WHERE name='Ram Kumar'")).one()
        first_op = s.execute(text("SELECT recorded_at FROM op WHERE record_ref = :r"), {"r": ram[2]}).scalar()
        lab_pay = s.execute(text(
            "SELECT amount_paise, mode, mode_ref, items FROM payment WHERE lab_order_local_ref IS NOT NULL")).one()
        infant_ops = s.execute(text("SELECT recorded_at FROM op WHERE recorded_at LIKE '2026-11-21%'")).all()
    assert ram[0] == "राम कुमार" and ram[1] == "9876543210"
    assert ram[2].startswith("C07-261120-")
    assert first_op == "2026-11-20T09:15:00+05:30"
    assert lab_pay[0] == 55000 and lab_pay[1] == "upi" and lab_pay[2] == "UTR123456"
    assert '"CBC"' in lab_pay[3] and '"LFT"' in lab_pay[3]
    assert {r[0] for r in infant_ops} == {"2026-11-21T00:00:00+05:30"}

    # the rejects file: the bad rows as they were, with the reason
    rejects = rejects_path_for(path)
    assert report.rejects_path == rejects
    with rejects.open(encoding="utf-8-sig", newline="") as fh:
        rej = list(csv.DictReader(fh))
    assert [r["slip_no"] for r in rej] == ["103", "104", "105", "106", "101", "108", "109"]
    assert rej[0]["name_local"] == "सीता देवी" and "line 4, mobile" in rej[0]["error"]

    # the same file again: nothing new
    before = _count(store, "SELECT count(*) FROM op")
    again = import_file(store, "C07", path, today=TODAY, imported_by=IMPORTER)
    assert _count(store, "SELECT count(*) FROM op") == before
    assert again.count("imported") == 0 and again.count("already_imported") == 3
    assert _problems(again) == _problems(report)


def test_fixed_rejects_file_imports_and_only_those_rows(
    tmp_path: Path, store: Store, with_master_data: Callable[..., None]
) -> None:
    with_master_data(store)
    path = _write(tmp_path, ROWS)
    import_file(store, "C07", path, today=TODAY, imported_by=IMPORTER)
    rejects = rejects_path_for(path)
    body = rejects.read_text(encoding="utf-8").replace(",12345,", ",9876500001,").replace(",XYZ,", ",MED,")
    fixed = tmp_path / "fixed.csv"
    fixed.write_text(body, encoding="utf-8")
    before = _count(store, "SELECT count(*) FROM backentry_slip")
    report = import_file(store, "C07", fixed, today=TODAY, imported_by=IMPORTER)
    assert report.count("imported") == 2
    assert {r.slip_no for r in report.rows if r.status == "imported"} == {"103", "104"}
    # line 5 of fixed.csv is slip 101 (already imported by the first file): not new, not an error
    assert any(r.slip_no == "101" and r.status == "already_imported" for r in report.rows)
    assert _count(store, "SELECT count(*) FROM backentry_slip") == before + 2


def test_dry_run_saves_nothing_and_writes_no_rejects(
    tmp_path: Path, store: Store, with_master_data: Callable[..., None]
) -> None:
    with_master_data(store)
    path = _write(tmp_path, ROWS)
    report = import_file(store, "C07", path, dry_run=True, today=TODAY, imported_by=IMPORTER)
    assert report.count("would_import") == 3 and len(report.rejected) == 7
    assert _count(store, "SELECT count(*) FROM op") == 0
    assert _count(store, "SELECT count(*) FROM counter") == 0
    assert not rejects_path_for(path).exists()


def test_a_dry_run_commits_nothing_not_even_an_empty_batch(
    tmp_path: Path, store: Store, with_master_data: Callable[..., None]
) -> None:
    """Each batch of a dry run is rolled back, not committed: nothing reaches the
    WAL (and no disk sync is waited for). Another connection's ``data_version``
    changes with every commit made by someone else."""
    with_master_data(store)
    path = _write(tmp_path, ROWS * 3)
    watcher = db_helper.connect(store.path, isolation_level=None)
    try:
        before = watcher.execute("PRAGMA data_version").fetchone()[0]
        report = import_file(store, "C07", path, dry_run=True, today=TODAY, imported_by=IMPORTER, batch_rows=4)
        assert report.count("would_import") == 3 and report.total == 30
        assert watcher.execute("PRAGMA data_version").fetchone()[0] == before
        import_file(store, "C07", path, today=TODAY, imported_by=IMPORTER, batch_rows=4)
        assert watcher.execute("PRAGMA data_version").fetchone()[0] != before  # the watch can see a commit
    finally:
        watcher.close()


def test_without_master_data_codes_are_taken_as_typed(tmp_path: Path, store: Store) -> None:
    path = _write(tmp_path, [ROWS[3]])  # department XYZ
    report = import_file(store, "C07", path, today=TODAY, imported_by=IMPORTER)
    assert report.count("imported") == 1 and report.exit_code == 0
    assert not rejects_path_for(path).exists()


def test_stale_rejects_file_removed_when_all_rows_are_in(
    tmp_path: Path, store: Store, with_master_data: Callable[..., None]
) -> None:
    with_master_data(store)
    path = _write(tmp_path, [ROWS[0], ROWS[2]])
    assert import_file(store, "C07", path, today=TODAY, imported_by=IMPORTER).exit_code == 1
    assert rejects_path_for(path).exists()
    _write(tmp_path, [ROWS[0], ROWS[2].replace(",12345,", ",9876500001,")])
    assert import_file(store, "C07", path, today=TODAY, imported_by=IMPORTER).exit_code == 0
    assert not rejects_path_for(path).exists()


@pytest.mark.parametrize(
    ("cells", "column"),
    [
        ("110,2026-11-27,09:00,op1,,Ram,,M,4,,,,,MED,,,,,,,,", "visit_date"),  # future
        ("110,20-11-2026,09:00,op1,,Ram,,M,4,,,,,MED,,,,,,,,", "visit_date"),
        (",2026-11-20,09:00,op1,,Ram,,M,4,,,,,MED,,,,,,,,", "slip_no"),
        ("110,2026-11-20,09:00,,,Ram,,M,4,,,,,MED,,,,,,,,", "operator_id"),
        ("110,2026-11-20,09:00,op1,,Ram,,M,,,,,,MED,,,,,,,,", "age_years"),
        ("110,2026-11-20,09:00,op1,,Ram,,M,200,,,,,MED,,,,,,,,", "age_years"),
        ("110,2026-11-20,09:00,op1,,Ram,,Q,4,,,,,MED,,,,,,,,", "sex"),
        ("110,2026-11-20,09:00,op1,,Ram,,M,4,,S/O,,,MED,,,,,,,,", "guardian_relation"),
        ("110,2026-11-20,09:00,op1,,Ram,,M,4,,,,,,,,,,,,,", "department"),
        ("110,2026-11-20,09:00,op1,,Ram,,M,4,,,,,MED,MED-U9,,,,,,,", "unit"),
        ("110,2026-11-20,09:00,op1,,Ram,,M,4,,,,,MED,,10.50,cash,,,,,", "fee_paise"),
        ("110,2026-11-20,09:00,op1,,Ram,,M,4,,,,,MED,,1000,,,,,,", "fee_mode"),
        ("110,2026-11-20,09:00,op1,,Ram,,M,4,,,,,MED,,1000,cheque,,,,,", "fee_mode"),
        ("110,2026-11-20,09:00,op1,,Ram,,M,4,,,,,MED,,1000,card,,,,,", "fee_ref"),
        ("110,2026-11-20,09:00,op1,,Ram,,M,4,,,,,MED,,,,,XRAY,15000,cash,", "lab_tests"),
        ("110,2026-11-20,09:00,op1,,Ram,,M,4,,,,,MED,,,,,,15000,cash,", "lab_tests"),
        ("110,2026-11-20,09:00,op1,,Ram,,M,4,,,,,MED,,,,,CBC;CBC,30000,cash,", "lab_tests"),
        ("110,2026-11-20,09:00,op1,,Ram,,M,4,,,,,MED,,,,,CBC,15000,upi,", "lab_ref"),
        ("110,2026-11-20,09:00,op1,,Ram,,M,4,,,,,MED,,,,,CBC,,,", "lab_mode"),
        ("110,2026-11-20,09:00,op1,,Ram,,M,4,,,,,MED,,,,,CBC,,cash,", "lab_paise"),
    ],
)
def test_each_bad_cell_named(
    tmp_path: Path, store: Store, with_master_data: Callable[..., None], cells: str, column: str
) -> None:
    with_master_data(store)
    report = import_file(store, "C07", _write(tmp_path, [cells]), today=TODAY, imported_by=IMPORTER)
    assert report.exit_code == 1
    assert column in {p.column for p in report.rejected[0].problems}, report.rejected[0].problems
    assert all(p.line == 2 and p.reason for p in report.rejected[0].problems)
    assert _count(store, "SELECT count(*) FROM op") == 0


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "no header"),
        (b"slip_no,visit_date,operator_id,department,colour\n1,2026-11-20,op1,MED,red\n", "unknown column"),
        (b"slip_no,visit_date,department\n1,2026-11-20,MED\n", "missing: operator_id"),
        (b"slip_no,visit_date,operator_id,department,name,name\n", "given twice"),
        ("slip_no,visit_date,operator_id,department,name\n1,2026-11-20,op1,MED,R\u00e2m\n".encode("latin-1"),
         "not UTF-8"),
    ],
)
def test_unusable_files(tmp_path: Path, store: Store, content: bytes, match: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(FileUnusable, match=match):
        import_file(store, "C07", path, today=TODAY, imported_by=IMPORTER)
    assert _count(store, "SELECT count(*) FROM op") == 0


def test_bom_columns_in_any_order_and_quoted_multiline_cells(tmp_path: Path, store: Store) -> None:
    body = ("department,name,sex,age_years,operator_id,visit_date,slip_no,address_line\r\n"
            'MED,Ram Kumar,M,40,op1,2026-11-20,201,"House 4,\nAliganj"\r\n'
            "MED,,M,40,op1,2026-11-20,202,\r\n")
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + body.encode())
    report = import_file(store, "C07", path, today=TODAY, imported_by=IMPORTER)
    assert report.count("imported") == 1
    assert report.rejected[0].problems[0].line == 4  # the row after the two-line cell
    with store.read() as s:
        assert s.execute(text("SELECT address_line FROM patient")).scalar() == "House 4, Aliganj"


# --- property: no cell, however odd, makes the import fail other than by rejecting the row ----

ODD = st.text(max_size=20) | st.sampled_from(
    ["", " ", "0", "-1", "99999999999999", "2026-02-30", "24:00", "CBC;;LFT", "राम", "upi", "M", "S/O", "MED"])
GOODISH = {"slip_no": "1", "visit_date": "2026-11-20", "operator_id": "op1", "name": "Ram", "sex": "M",
           "age_years": "4", "department": "MED"}


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(COLUMNS), ODD, max_size=12))
def test_odd_cells_only_ever_reject_the_row(store: Store, cells: dict[str, str]) -> None:
    row = {**GOODISH, **cells}
    slip, problems = parse_row(7, row, today=TODAY)
    assert (slip is None) == bool(problems)
    assert all(p.line == 7 and p.reason for p in problems)
    if slip is not None:
        out = import_row(CounterService(store, "C07"), 7, slip, imported_by=IMPORTER)
        assert out.status in ("imported", "already_imported", "rejected")
        assert (out.status == "rejected") == bool(out.problems)


# --- a slip is never skipped or doubled in silence (issue 11, section 2) --------

SHORT = "slip_no,visit_date,recorded_at,operator_id,name,sex,age_years,mobile,department,fee_paise,fee_mode"


def test_overlapping_slip_numbers_with_other_patients_are_rejected_naming_the_earlier_import(
    tmp_path: Path, store: Store
) -> None:
    first = _write(tmp_path, ["1,2026-11-20,09:00,op1,Ram Kumar,M,40,9876500001,MED,1000,cash",
                              "2,2026-11-20,09:05,op1,Sita Devi,F,30,9876500002,MED,1000,cash",
                              "3,2026-11-20,09:10,op1,Gita Rani,F,25,,MED,1000,cash"], SHORT, "day1.csv")
    assert import_file(store, "C07", first, today=TODAY, imported_by=IMPORTER).count("imported") == 3
    # another clerk's file of the same day reused slip numbers 2 and 3 for other patients
    second = _write(tmp_path, ["2,2026-11-20,11:00,op1,Mohan Lal,M,50,9876500009,MED,1000,cash",
                               "3,2026-11-20,09:10,op1,Gita Rani,F,25,,MED,2000,cash",
                               "4,2026-11-20,11:10,op1,Asha Devi,F,60,,MED,1000,cash"], SHORT, "day1b.csv")
    report = import_file(store, "C07", second, today=TODAY, imported_by=IMPORTER)

    assert report.exit_code == 1
    assert report.count("imported") == 1 and report.count("already_imported") == 0
    assert _problems(report) == {2: {"slip_no"}, 3: {"slip_no"}}
    reasons = {p.line: p.reason for r in report.rejected for p in r.problems}
    assert "day1.csv, line 3" in reasons[2]
    assert "recorded_at, name, sex, age_years, mobile" in reasons[2]
    assert "day1.csv, line 4" in reasons[3] and "fee_paise" in reasons[3] and "name" not in reasons[3]
    # nothing lost: both rows are in the rejects file to be fixed
    with rejects_path_for(second).open(encoding="utf-8-sig", newline="") as fh:
        assert [r["name"] for r in csv.DictReader(fh)] == ["Mohan Lal", "Gita Rani"]
    assert _count(store, "SELECT count(*) FROM patient WHERE name = 'Mohan Lal'") == 0
    assert _count(store, "SELECT count(*) FROM visit") == 4
    assert _count(store, "SELECT sum(amount_paise) FROM payment") == 4000

    # the first file again: the same content is 'already imported', not an error
    again = import_file(store, "C07", first, today=TODAY, imported_by=IMPORTER)
    assert again.exit_code == 0 and again.count("already_imported") == 3


def test_leading_zeros_and_spaces_do_not_double_a_slip(tmp_path: Path, store: Store) -> None:
    row = ",2026-11-20,09:00,op1,Ram Kumar,M,40,+91 98765 00001,MED,1000,cash"
    assert import_file(store, "C07", _write(tmp_path, ["00042" + row], SHORT, "a.csv"),
                       today=TODAY, imported_by=IMPORTER).count("imported") == 1
    # a spreadsheet dropped the zeros and wrote the mobile differently: the same slip
    report = import_file(store, "C07", _write(tmp_path, [" 42 " + row.replace("+91 98765 00001", "9876500001")],
                                              SHORT, "b.csv"), today=TODAY, imported_by=IMPORTER)
    assert report.exit_code == 0 and report.count("already_imported") == 1
    assert _count(store, "SELECT count(*) FROM visit") == 1
    assert _count(store, "SELECT sum(amount_paise) FROM payment") == 1000
    # within one file too
    report = import_file(store, "C07", _write(tmp_path, ["7" + row, "007" + row], SHORT, "c.csv"),
                         today=TODAY, imported_by=IMPORTER)
    assert report.count("imported") == 1 and _problems(report) == {3: {"slip_no"}}
    assert "already on line 2 of this file" in report.rejected[0].problems[0].reason


def test_importing_operator_on_every_op_and_the_writer_kept_locally(tmp_path: Path, store: Store) -> None:
    path = _write(tmp_path, [ROWS[0], ROWS[0].replace("101,", "110,", 1).replace(",op1,", ",ghost-99,")])
    report = import_file(store, "C07", path, today=TODAY, imported_by=IMPORTER)
    assert report.count("imported") == 1
    assert _problems(report) == {3: {"operator_id"}}
    assert "'ghost-99' is not an operator of this counter" in report.rejected[0].problems[0].reason
    with store.read() as s:
        assert {r[0] for r in s.execute(text("SELECT operator_id FROM op")).all()} == {IMPORTER}
        assert {r[0] for r in s.execute(text("SELECT operator_id FROM visit")).all()} == {IMPORTER}
        slip = s.execute(text("SELECT written_by, imported_by, source_file, source_line FROM backentry_slip")).one()
        actor, detail = s.execute(text(
            "SELECT actor, detail FROM audit_log WHERE action = 'backentry.import'")).one()
    assert tuple(slip) == ("op1", IMPORTER, "slips.csv", 2)
    assert actor == IMPORTER and '"written_by":"op1"' in detail


@pytest.mark.parametrize("importer", ["ghost-99", "gone"])
def test_only_an_active_operator_may_import(tmp_path: Path, store: Store, importer: str) -> None:
    add_operators(store, "gone", active=False)
    with pytest.raises(ImportRefused, match="not an active operator"):
        import_file(store, "C07", _write(tmp_path, [ROWS[0]]), today=TODAY, imported_by=importer)
    assert _count(store, "SELECT count(*) FROM op") == 0


def test_services_see_what_the_row_made_in_its_batch(tmp_path: Path, store: Store,
                                                     with_master_data: Callable[..., None]) -> None:
    """Rows are flushed per batch: the visit, payments and lab order still name
    the right patient and depend on the right ops."""
    with_master_data(store)
    rows = [ROWS[0], ROWS[3], "111,2026-11-20,09:15,op1,,Ram Kumar,राम कुमार,M,40,,S/O,Shyam Lal,"
                                "+91 98765-43210,MED,MED-U1,1000,cash,,CBC;LFT,55000,cash,"]
    report = import_file(store, "C07", _write(tmp_path, rows), today=TODAY, imported_by=IMPORTER, batch_rows=2)
    assert report.count("imported") == 2 and _problems(report) == {3: {"department"}}, [str(p) for r in report.rejected for p in r.problems]
    with store.read() as s:
        ops = {r[0]: (r[1], r[2]) for r in s.execute(text("SELECT op_id, kind, depends_on FROM op")).all()}
        names = {r[0] for r in s.execute(text(
            "SELECT patient_name FROM visit UNION SELECT patient_name FROM payment "
            "UNION SELECT patient_name FROM lab_order")).all()}
        lab_pay_deps = s.execute(text(
            "SELECT o.depends_on FROM op o JOIN payment p ON p.op_id = o.op_id "
            "WHERE p.lab_order_local_ref IS NOT NULL")).scalar()
    assert names == {"Ram Kumar"}
    assert sum(1 for k, _ in ops.values() if k == "patient.register") == 2
    kinds_needed = {ops[d][0] for d in orjson.loads(lab_pay_deps)}
    assert kinds_needed == {"patient.register", "visit.open", "lab.order"}


def test_progress_is_reported_per_batch(tmp_path: Path, store: Store) -> None:
    seen: list[tuple[int, int]] = []
    rows = [f"{i},2026-11-20,09:00,op1,Ram,M,4,,MED,1000,cash" for i in range(1, 6)]
    import_file(store, "C07", _write(tmp_path, rows, SHORT), today=TODAY, imported_by=IMPORTER,
                batch_rows=2, progress=lambda done, total, _rejected: seen.append((done, total)))
    assert seen == [(0, 5), (2, 5), (4, 5), (5, 5)]


# --- lab_items (format 1.1) ----------------------------------------------------

LAB = "slip_no,visit_date,operator_id,uhid,department,lab_tests,lab_paise,lab_mode,lab_items"


def test_lab_items_taken_as_written(tmp_path: Path, store: Store, with_master_data: Callable[..., None]) -> None:
    with_master_data(store)  # list prices CBC 15000, LFT 40000: a concession was charged instead
    path = _write(tmp_path, ["1,2026-11-20,op1,KGMU00012,MED,CBC;LFT,35000,cash,CBC:15000;LFT:20000"], LAB)
    assert import_file(store, "C07", path, today=TODAY, imported_by=IMPORTER).exit_code == 0
    with store.read() as s:
        items = s.execute(text("SELECT items FROM payment")).scalar()
    assert {i["code"]: i["amount_paise"] for i in orjson.loads(items)} == {"CBC": 15000, "LFT": 20000}


def test_lab_items_need_no_price_list(tmp_path: Path, store: Store) -> None:
    path = _write(tmp_path, ["1,2026-11-20,op1,KGMU00012,MED,CBC;LFT,35000,cash,LFT:20000;CBC:15000"], LAB)
    assert import_file(store, "C07", path, today=TODAY, imported_by=IMPORTER).count("imported") == 1


@pytest.mark.parametrize(("items", "says"), [
    ("CBC:15000;LFT:30000", "add up to ₹450.00 but lab_paise is ₹350.00"),
    ("CBC:15000", "each test of lab_tests once"),
    ("CBC:15000;ESR:20000", "each test of lab_tests once"),
    ("CBC=15000;LFT:20000", "must be a test code and paise"),
    ("CBC:150.00;LFT:20000", "must be a test code and paise"),
])
def test_bad_lab_items_named(tmp_path: Path, store: Store, items: str, says: str) -> None:
    path = _write(tmp_path, [f"1,2026-11-20,op1,KGMU00012,MED,CBC;LFT,35000,cash,{items}"], LAB)
    report = import_file(store, "C07", path, today=TODAY, imported_by=IMPORTER)
    assert _problems(report) == {2: {"lab_items"}}
    assert says in report.rejected[0].problems[0].reason
    assert _count(store, "SELECT count(*) FROM op") == 0


# --- files for people: formulas, BOM, safe temporary file -----------------------


@pytest.mark.parametrize(("column", "value"), [
    ("name", "=HYPERLINK(\"http://x\",\"Ram\")"), ("name", "@SUM(A1)"), ("name_local", "+राम"),
    ("guardian_name", "-2+3+cmd|' /C calc'!A0"),
])
def test_names_that_begin_like_a_formula_are_rejected(tmp_path: Path, store: Store, column: str, value: str) -> None:
    header = "slip_no,visit_date,operator_id,name,name_local,sex,age_years,guardian_relation,guardian_name,department"
    cells = {"name": "Ram", "name_local": "", "guardian_name": "Shyam", column: value}
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(
        ["1", "2026-11-20", "op1", cells["name"], cells["name_local"], "M", "4", "S/O", cells["guardian_name"], "MED"])
    report = import_file(store, "C07", _write(tmp_path, [buf.getvalue()], header), today=TODAY,
                         imported_by=IMPORTER)
    assert _problems(report) == {2: {column}}, [str(p) for r in report.rejected for p in r.problems]
    assert "formula" in report.rejected[0].problems[0].reason
    raw = rejects_path_for(tmp_path / "slips.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # a BOM so Excel shows Devanagari
    with rejects_path_for(tmp_path / "slips.csv").open(encoding="utf-8-sig", newline="") as fh:
        written = next(csv.DictReader(fh))[column]
    assert written == "'" + value  # shown as text by a spreadsheet, never run


def test_rejects_file_never_follows_a_planted_symlink(tmp_path: Path, store: Store) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    path = _write(tmp_path, [ROWS[2]])
    for planted in ("slips.rejects.csv.tmp", ".slips.rejects.csv.tmp", "slips.rejects.csv"):
        (tmp_path / planted).symlink_to(victim)
    report = import_file(store, "C07", path, today=TODAY, imported_by=IMPORTER)
    assert report.exit_code == 1
    assert victim.read_text() == "precious\n"
    rejects = rejects_path_for(path)
    assert not rejects.is_symlink() and "mobile" in rejects.read_text(encoding="utf-8-sig")
    assert rejects.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp") and not p.is_symlink()) == []


def test_slips_imported_before_contents_were_kept_are_compared_by_their_ops(
    tmp_path: Path, store: Store, with_master_data: Callable[..., None]
) -> None:
    with_master_data(store)
    path = _write(tmp_path, [ROWS[0], ROWS[1]])
    assert import_file(store, "C07", path, today=TODAY, imported_by=IMPORTER).count("imported") == 2
    with store.write() as s:  # as an import before schema 3 left them (and the writer on the ops)
        s.execute(text("UPDATE backentry_slip SET content = NULL, source_file = NULL, source_line = NULL"))
        s.execute(text("UPDATE op SET operator_id = 'op1'"))
    again = import_file(store, "C07", path, today=TODAY, imported_by=IMPORTER)
    assert again.count("already_imported") == 2, [str(p) for r in again.rejected for p in r.problems]
    other = [ROWS[0].replace("Ram Kumar", "Mohan Lal"), ROWS[1].replace("55000,upi", "15000,upi").replace(
        "CBC;LFT", "CBC")]
    report = import_file(store, "C07", _write(tmp_path, other, name="other.csv"), today=TODAY, imported_by=IMPORTER)
    reasons = [p.reason for r in report.rejected for p in r.problems]
    assert len(reasons) == 2
    assert "was already imported with a different name;" in reasons[0]
    assert "different lab_tests, lab_paise;" in reasons[1]


def test_schema_2_slips_get_their_normal_form_key(tmp_path: Path) -> None:
    from opd_fallback.store import migrations, open_store

    path = tmp_path / "old.db"
    open_store(path).close()
    with db_helper.connect(path) as db:  # the backentry_slip table as schema 2 had it
        db.executescript("""
            DROP TABLE backentry_slip;
            CREATE TABLE backentry_slip (id INTEGER PRIMARY KEY, device_id TEXT NOT NULL, visit_date TEXT NOT NULL,
                slip_no TEXT NOT NULL, imported_at TEXT NOT NULL, op_ids TEXT NOT NULL,
                UNIQUE (device_id, visit_date, slip_no));
            INSERT INTO backentry_slip VALUES (1, 'C07', '2026-11-20', '00042', 't', '[]'),
                                              (2, 'C07', '2026-11-20', '000', 't', '[]'),
                                              (3, 'C07', '2026-11-20', 'A7', 't', '[]');
            PRAGMA user_version = 2;
        """)
    assert migrations.LATEST >= 3
    store = open_store(path)
    with store.read() as s:
        keys = [r[0] for r in s.execute(text("SELECT slip_key FROM backentry_slip ORDER BY id"))]
        content = s.execute(text("SELECT content FROM backentry_slip WHERE id = 1")).scalar()
    store.close()
    assert keys == ["42", "0", "A7"] and content is None


def test_a_restored_counter_imports_nothing_until_its_numbers_are_checked(tmp_path: Path, store: Store) -> None:
    from opd_fallback.store import meta

    with store.write() as s:
        meta.put(s, meta.NEEDS_SEQ_CHECK, "restored from a backup")
    with pytest.raises(ImportRefused, match="check its numbers with central"):
        import_file(store, "C07", _write(tmp_path, [ROWS[0]]), today=TODAY, imported_by=IMPORTER)
    assert _count(store, "SELECT count(*) FROM op") == 0
    assert not rejects_path_for(tmp_path / "slips.csv").exists()

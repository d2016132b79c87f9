"""``opd-fallback import``: exit 0 all in, 1 some rejected, 2 file unusable,
3 operator or PIN not accepted; the importing operator logs in with a PIN."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from opd_fallback.cli import app
from opd_fallback.cli.importing import progress_bar, progress_lines
from opd_fallback.domain.exits import ExitCode
from tests.helpers import db as db_helper

runner = CliRunner()
HEADER = "slip_no,visit_date,recorded_at,operator_id,name,name_local,sex,age_years,mobile,department,fee_paise,fee_mode"
GOOD = "1,2026-11-20,09:15,op1,Ram Kumar,राम कुमार,M,40,+91 98765 43210,MED,1000,cash"
BAD = "2,2026-11-20,09:20,op1,Sita,,F,30,12345,MED,1000,cash"


@pytest.fixture
def counter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for k in list(os.environ):
        if k.startswith("OPD_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("OPD_DATA_DIR", str(tmp_path / "counter"))
    assert runner.invoke(app, ["init", "--device", "C07", "--hospital", "KGMU"]).exit_code == 0
    for op_id in ("op1", "clerk1"):
        res = runner.invoke(app, ["operator", "add", op_id, "--name", f"Operator {op_id}", "--pin-stdin"],
                            input="123456\n")
        assert res.exit_code == 0, res.output
    return tmp_path


def _import(*args: str, pin: str = "123456", operator: str = "clerk1"):
    """``import ... --operator clerk1 --pin-stdin`` with the PIN on stdin."""
    return runner.invoke(app, ["import", *args, "--operator", operator, "--pin-stdin"], input=pin + "\n")


def _csv(dir_: Path, *rows: str) -> Path:
    p = dir_ / "slips.csv"
    p.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return p


def test_all_rows_in_exit_0_then_nothing_new(counter: Path) -> None:
    f = _csv(counter, GOOD)
    res = _import(str(f))
    assert res.exit_code == 0, res.output
    assert "imported 1" in res.output
    res = _import(str(f))
    assert res.exit_code == 0 and "imported 0, already imported 1" in res.output


def test_some_rejected_exit_1_with_line_column_reason(counter: Path) -> None:
    f = _csv(counter, GOOD, BAD)
    res = _import(str(f))
    assert res.exit_code == 1
    assert "line 3, mobile: must have 10 digits (got 5)" in res.output
    assert (counter / "slips.rejects.csv").exists()


def test_dry_run(counter: Path) -> None:
    f = _csv(counter, GOOD, BAD)
    res = _import("--dry-run", str(f))
    assert res.exit_code == 1 and "would import 1" in res.output and "nothing was saved" in res.output
    res = _import(str(f))
    assert "imported 1," in res.output  # the dry run saved nothing


@pytest.mark.parametrize(
    "content",
    [b"", b"\xff\xfe\x00bad", b"slip_no,visit_date,operator_id,department,shoe_size\n", b"slip_no,name\n"],
)
def test_unusable_file_exit_2(counter: Path, content: bytes) -> None:
    f = counter / "bad.csv"
    f.write_bytes(content)
    res = _import(str(f))
    assert res.exit_code == 2, res.output
    assert "error:" in res.output


def test_missing_file_exit_2(counter: Path) -> None:
    res = _import(str(counter / "nope.csv"))
    assert res.exit_code == 2


@pytest.mark.parametrize(
    ("operator", "pin", "setup"),
    [("clerk1", "654321", None), ("ghost-99", "123456", None), ("clerk1", "123456", ["operator", "disable", "clerk1"])],
    ids=["wrong-pin", "unknown-operator", "disabled-operator"],
)
def test_importing_operator_must_log_in(counter: Path, operator: str, pin: str, setup: list[str] | None) -> None:
    if setup is not None:
        assert runner.invoke(app, setup).exit_code == 0
    f = _csv(counter, GOOD)
    res = _import(str(f), operator=operator, pin=pin)
    # refused: 1 (was 3 until the exit table was made one: 3 is "central unreachable")
    assert res.exit_code == ExitCode.REFUSED == 1, res.output
    assert "PIN" in res.output and "nothing imported" in res.output
    assert pin not in res.output
    res = _import(str(f))  # nothing was saved by the refused run
    assert "imported 1," in res.output if setup is None else res.exit_code == ExitCode.REFUSED


def test_ops_carry_the_importing_operator_and_the_writer_must_be_known(counter: Path) -> None:

    ghost = GOOD.replace("1,", "2,", 1).replace(",op1,", ",ghost-99,")
    res = _import(str(_csv(counter, GOOD, ghost)))
    assert res.exit_code == 1
    assert "line 3, operator_id: 'ghost-99' is not an operator of this counter" in res.output
    db = db_helper.connect(counter / "counter" / "counter.db")
    try:
        assert {r[0] for r in db.execute("SELECT operator_id FROM op")} == {"clerk1"}
        assert db.execute("SELECT written_by, imported_by FROM backentry_slip").fetchall() == [("op1", "clerk1")]
    finally:
        db.close()


def test_progress_bar_on_a_terminal_only(counter: Path) -> None:
    screen = io.StringIO()
    with progress_bar(True, Console(file=screen, force_terminal=True, width=80)) as update:
        assert update is not None
        update(0, 4000)
        update(2000, 4000)
    assert "2000/4000" in screen.getvalue()
    with progress_bar(False) as update:
        assert update is not None  # off a terminal: a line every 10 s (below), nothing more
    res = _import(str(_csv(counter, GOOD)))  # CliRunner's stderr is no terminal: the summary only
    assert res.exit_code == 0
    assert res.output.splitlines()[-1] == "slips.csv: imported 1, already imported 0, rejected 0 (of 1 rows)"


@pytest.mark.chaos
def test_import_killed_mid_batch_then_run_again_loses_and_doubles_nothing(counter: Path) -> None:
    """Batches commit whole: a kill loses only the open batch, which the next run imports."""
    import signal
    import subprocess
    import sys
    import time

    rows = [f"{i},2026-11-20,09:15,op1,Ram {chr(65 + i % 26)},,M,40,,MED,{1000 + i},cash" for i in range(1, 3001)]
    f = _csv(counter, *rows)
    cmd = [sys.executable, "-m", "opd_fallback", "import", str(f), "--operator", "clerk1", "--pin-stdin"]
    db_path = counter / "counter" / "counter.db"

    def slips() -> int:
        db = db_helper.connect(db_path)
        try:
            return int(db.execute("SELECT count(*) FROM backentry_slip").fetchone()[0])
        finally:
            db.close()

    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ})
    assert proc.stdin is not None
    proc.stdin.write(b"123456\n")
    proc.stdin.close()
    deadline = time.monotonic() + 120
    while slips() == 0 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    killed_at = slips()
    assert 0 < killed_at < 3000, killed_at  # killed part-way: some batches in, not all

    res = _import(str(f))
    assert res.exit_code == 0, res.output
    assert f"imported {3000 - killed_at}, already imported {killed_at}, rejected 0" in res.output
    db = db_helper.connect(db_path)
    try:
        assert db.execute("SELECT count(*) FROM visit").fetchone()[0] == 3000
        assert db.execute("SELECT count(*), sum(amount_paise) FROM payment").fetchone() == (
            3000, sum(1000 + i for i in range(1, 3001)))
        assert db.execute("SELECT count(*) FROM op").fetchone()[0] == 9000
    finally:
        db.close()


def test_overlapping_slip_of_another_patient_exits_1_with_the_earlier_file_named(counter: Path) -> None:
    assert _import(str(_csv(counter, GOOD))).exit_code == 0
    other = counter / "other.csv"
    other.write_text("\n".join([HEADER, "01,2026-11-20,10:15,op1,Mohan Lal,,M,50,,MED,1000,cash"]) + "\n",
                     encoding="utf-8")
    res = _import(str(other))
    assert res.exit_code == 1, res.output
    assert "slip 01 of 2026-11-20 was already imported from slips.csv, line 2 with a different" in res.output
    assert "imported 0, already imported 0, rejected 1" in res.output
    assert "Mohan Lal" in (counter / "other.rejects.csv").read_text(encoding="utf-8-sig")


def test_off_a_terminal_a_progress_line_every_ten_seconds() -> None:
    lines: list[str] = []
    now = [100.0]
    update = progress_lines(lines.append, clock=lambda: now[0])
    update(0, 50_000, 0)
    now[0] += 5
    update(5_000, 50_000, 1)  # not yet 10 s
    assert lines == []
    now[0] += 5
    update(10_000, 50_000, 3)
    now[0] += 4
    update(14_000, 50_000, 3)
    now[0] += 6
    update(20_000, 50_000, 4)
    assert lines == [
        "importing: 10000 of 50000 rows, 1000 rows/s, 3 rejected so far, about 40 s left\n",
        "importing: 20000 of 50000 rows, 1000 rows/s, 4 rejected so far, about 30 s left\n",
    ]


def _slips_in(counter: Path) -> int:
    db = db_helper.connect(counter / "counter" / "counter.db")
    try:
        return int(db.execute("SELECT count(*) FROM backentry_slip").fetchone()[0])
    finally:
        db.close()


@pytest.mark.parametrize("same_size", [False, True])
def test_a_file_changed_between_the_check_and_the_import_is_refused_before_any_row_is_saved(
        counter: Path, monkeypatch: pytest.MonkeyPatch, same_size: bool) -> None:
    """The first pass checks the file, the second imports it: a file rewritten in
    between (even to the same size with its time put back) saves nothing."""
    from opd_fallback.application.backentry import importer

    f = _csv(counter, GOOD, GOOD.replace("1,", "3,", 1))
    check = importer.check_importer

    def rewrite_then_check(*args: object) -> None:  # runs between the two passes
        before = f.stat()
        changed = GOOD.replace("Ram Kumar", "Ram Kumaz" if same_size else "Ram Kumar Singh")
        f.write_text("\n".join([HEADER, changed, GOOD.replace("1,", "3,", 1)]) + "\n", encoding="utf-8")
        if same_size:
            assert f.stat().st_size == before.st_size
            os.utime(f, ns=(before.st_atime_ns, before.st_mtime_ns))
        check(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(importer, "check_importer", rewrite_then_check)
    res = _import(str(f))
    assert res.exit_code == ExitCode.UNUSABLE, res.output
    assert "slips.csv: the file changed after it was checked" in res.output
    assert "nothing was imported; run the import again" in res.output
    assert ("SHA-256 differs" if same_size else "its size went from") in res.output
    assert _slips_in(counter) == 0
    monkeypatch.setattr(importer, "check_importer", check)
    assert "imported 2," in _import(str(f)).output  # as it is now


def test_a_file_changed_during_the_import_stops_at_a_batch_s_end_saying_what_was_saved(
        counter: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from opd_fallback.application.backentry import importer

    rows = [f"{i},2026-11-20,09:15,op1,Ram {chr(65 + i % 26)},,M,40,,MED,1000,cash" for i in range(1, 1201)]
    f = _csv(counter, *rows)
    batch = importer._Importer.batch

    def batch_then_append(self: importer._Importer, *args: object) -> object:
        out = batch(self, *args)  # type: ignore[arg-type]
        with f.open("a", encoding="utf-8") as fh:
            fh.write("9999,2026-11-20,09:15,op1,Late Row,,M,40,,MED,1000,cash\n")
        return out

    monkeypatch.setattr(importer._Importer, "batch", batch_then_append)
    res = _import(str(f))
    assert res.exit_code == ExitCode.UNUSABLE, res.output
    assert "the file changed after it was checked (its size went from" in res.output
    assert "the 500 rows before line 502 were checked and saved whole" in res.output
    assert _slips_in(counter) == 500


def test_a_slip_number_again_in_a_later_batch_is_rejected(counter: Path) -> None:
    """The keys of earlier batches are on disk (memory bounded by a batch): a slip
    met 1,300 rows (three batches) earlier is still a duplicate, in a dry run too."""
    rows = [f"{i},2026-11-20,09:15,op1,Ram {chr(65 + i % 26)},,M,40,,MED,1000,cash" for i in range(1, 1301)]
    rows.append("0002,2026-11-20,11:00,op1,Sita Devi,,F,30,,MED,1000,cash")  # slip 2 again (line 3)
    f = _csv(counter, *rows)
    for args in (("--dry-run",), ()):
        res = _import(*args, str(f))
        assert res.exit_code == 1, res.output
        assert "line 1302, slip_no: slip 0002 of 2026-11-20 is already on line 3 of this file" in res.output
        assert "rejected 1 (of 1301 rows)" in res.output
    assert "Sita Devi" in (counter / "slips.rejects.csv").read_text(encoding="utf-8-sig")


def test_past_the_rejected_rows_kept_the_rest_are_counted_and_in_the_rejects_file(
        counter: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from opd_fallback.application.backentry import importer

    monkeypatch.setattr(importer, "KEPT_REJECTED", 1)
    f = _csv(counter, GOOD, BAD, BAD.replace("2,", "4,", 1), BAD.replace("2,", "5,", 1))
    res = _import(str(f))
    assert res.exit_code == 1, res.output
    assert "line 3, mobile" in res.output and "line 4, mobile" not in res.output
    assert "and 2 more rejected rows not listed here (all are in the rejects file)" in res.output
    assert "imported 1, already imported 0, rejected 3 (of 4 rows)" in res.output
    lines = (counter / "slips.rejects.csv").read_text(encoding="utf-8-sig").splitlines()
    assert len(lines) == 4 and all("must have 10 digits" in line for line in lines[1:])


def test_a_change_that_keeps_size_and_time_is_found_by_the_hash_of_what_was_read(
        counter: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After the first batch the last row is retyped to the same length and the file's
    time put back: only the SHA-256 of what the second pass read tells, at its end."""
    from opd_fallback.application.backentry import importer

    rows = [f"{i},2026-11-20,09:15,op1,Ram {chr(65 + i % 26)},,M,40,,MED,1000,cash" for i in range(1, 3001)]
    f = _csv(counter, *rows)
    batch = importer._Importer.batch
    calls = []

    def batch_then_retype(self: importer._Importer, *args: object) -> object:
        out = batch(self, *args)  # type: ignore[arg-type]
        if not calls:
            before = f.stat()
            f.write_text(f.read_text(encoding="utf-8").replace(",Ram A,,M,40,,MED,1000,cash\n",
                                                              ",Ram A,,M,41,,MED,1000,cash\n"), encoding="utf-8")
            assert f.stat().st_size == before.st_size
            os.utime(f, ns=(before.st_atime_ns, before.st_mtime_ns))
        calls.append(1)
        return out

    monkeypatch.setattr(importer._Importer, "batch", batch_then_retype)
    res = _import(str(f))
    assert res.exit_code == ExitCode.UNUSABLE, res.output
    assert "(its content is not what was checked (its SHA-256 differs)): the 3000 rows of the file as it was read" \
        in res.output

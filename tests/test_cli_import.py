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

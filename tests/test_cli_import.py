"""``opd-fallback import``: exit 0 all in, 1 some rejected, 2 file unusable,
3 operator or PIN not accepted; the importing operator logs in with a PIN."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from opd_fallback.cli import app

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

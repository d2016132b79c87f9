"""Files written for people (rejects, reconcile reports): formulas neutralised,
a UTF-8 BOM, 0600, and a planted symlink never followed."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from opd_fallback.application import reports
from opd_fallback.application.people_csv import neutralise, unneutralise, write_csv


@pytest.mark.parametrize(("cell", "written"), [
    ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"), ("+91 98765 43210", "'+91 98765 43210"),
    ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"), ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"),
    ("\rx", "'\rx"), ("Ram Kumar", "Ram Kumar"), ("राम", "राम"), ("-500", "-500"), ("12.50", "12.50"),
    ("", ""), (None, ""), (1500, "1500"),
])
def test_neutralise_and_back(cell: object, written: str) -> None:
    assert neutralise(cell) == written
    if isinstance(cell, str):
        assert unneutralise(neutralise(cell)) == cell


def test_write_csv_bom_mode_and_planted_symlinks(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    target = tmp_path / "out.csv"
    for planted in ("out.csv.tmp", ".out.csv.tmp", "out.csv"):
        (tmp_path / planted).symlink_to(victim)
    write_csv(target, ["name", "amount"], [["=cmd", -500], ["सीता", 100]])
    assert victim.read_text() == "precious\n"
    assert not target.is_symlink() and target.stat().st_mode & 0o777 == 0o600
    raw = target.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert list(csv.reader(io.StringIO(raw.decode("utf-8-sig")))) == [
        ["name", "amount"], ["'=cmd", "-500"], ["सीता", "100"]]


REPORT = {
    "schema": reports.DAY_SCHEMA, "date": "2026-11-20", "status": "attention", "reasons": ["=1+1"],
    "local": {}, "central": {}, "ops": {},
    "differences": [{"field": "payments.total_paise", "local": -500, "central": "+91"}],
    "payment_warnings": [{"receipt_no": "@SUM(A1)", "paid_paise": 1500, "expected_paise": 1000, "op_id": "x",
                          "code": "amount_mismatch", "item": "-2+3"}],
    "ops_per_hour": [],
}


def test_reconcile_csv_is_neutralised_and_written_for_excel(tmp_path: Path) -> None:
    rows = list(csv.reader(io.StringIO(reports.to_csv(REPORT))))
    cells = {c for r in rows for c in r}
    assert {"'=1+1", "'+91", "'@SUM(A1)", "'-2+3", "-500", "1500"} <= cells
    assert not {"=1+1", "+91", "@SUM(A1)", "-2+3"} & cells
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (tmp_path / "r.csv.tmp").symlink_to(victim)
    path = reports.write_report(REPORT, tmp_path / "r.csv")
    assert victim.read_text() == "precious\n"
    assert path.read_bytes().startswith(b"\xef\xbb\xbf") and path.stat().st_mode & 0o777 == 0o600

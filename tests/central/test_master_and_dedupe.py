"""Master data from a TOML file, a bad file refused with the field named, and
the duplicate-detection name rules."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from opd_fallback.central.dedupe import normalise_name, similar
from tests.central.util import factory, one, unique_mobile
from tests.helpers.central import run_central

TOML = """
version = "toml-test-1"

[[departments]]
code = "MED"
name = "Medicine"
name_hi = "चिकित्सा"
units = [{ code = "MED-A", name = "Unit A" }]

[[tests]]
code = "CBC"
name = "Complete Blood Count"
sample_type = "EDTA whole blood"
price_paise = 12000

[[fees]]
code = "OPD-NEW"
name = "Registration"
price_paise = 500
"""


def test_master_data_from_toml_drives_checks_and_prices(tmp_path: Path) -> None:
    md = tmp_path / "md.toml"
    md.write_text(TOML, encoding="utf-8")
    f = factory()
    with run_central(tmp_path, master_data=md) as central, central.client() as http:
        body = http.get("/master-data").json()
        assert body["version"] == "toml-test-1" and body["departments"][0]["name_hi"] == "चिकित्सा"
        reg = f.register(mobile=unique_mobile())
        assert one(http, reg)["status"] == "applied"
        pref = {"local_ref": reg["payload"]["local_ref"]}
        assert one(http, f.visit(pref, unit="MED-A"))["status"] == "applied"
        assert one(http, f.visit(pref, unit="MED-U1"))["error"]["code"] == "unknown_department"
        res = one(http, f.payment(pref, [("OPD-NEW", 1000)]))
        assert res["result"]["warnings"] == [{"code": "amount_mismatch", "item": "OPD-NEW", "expected_paise": 500}]


def test_master_data_given_as_a_dict(tmp_path: Path) -> None:
    md = {"version": "dict-1", "departments": [{"code": "ENT", "name": "ENT", "name_hi": "नाक कान गला"}],
          "tests": [], "fees": []}
    with run_central(tmp_path, master_data=md) as central, central.client() as http:
        assert http.get("/master-data").json()["version"] == "dict-1"


def test_a_bad_master_data_file_is_refused_naming_the_field(tmp_path: Path) -> None:
    md = tmp_path / "bad.json"
    md.write_text('{"version": "x", "tests": [{"code": "CBC", "name": "CBC", "price_paise": "ten"}]}')
    run = subprocess.run(
        [sys.executable, "-m", "opd_fallback.central", "serve", "--db", str(tmp_path / "c.db"),
         "--port", "1", "--master-data", str(md)],
        capture_output=True, text=True, timeout=60,
    )
    assert run.returncode == 2
    assert "tests.0.price_paise" in run.stderr and "whole number" in run.stderr


@pytest.mark.parametrize("a,b", [
    ("Mohd. Irfan", "Mohammad Irfan"),
    ("Md Salim", "Mohammed Salim"),
    ("Ram Kr Yadav", "Ram Kumar Yadav"),
    ("Smt. Sunita Devi", "Sunita Devi"),
    ("Yadav Ram Kumar", "Ram Kumar Yadav"),
    ("Rajesh Kumar", "Rajesh Kumaar"),
])
def test_spelling_variants_are_similar(a: str, b: str) -> None:
    assert similar({"name": a, "age_years": 30}, {"name": b, "age_years": 31})


@pytest.mark.parametrize("a,b,age_b", [
    ("Ram Kumar", "Sita Devi", 30),  # same phone, another person
    ("Mohd Irfan", "Mohammad Irfan", 33),  # more than 2 years apart
    ("Anil Kumar", "Sunil Kumar", 30),
])
def test_different_people_are_not_similar(a: str, b: str, age_b: int) -> None:
    assert not similar({"name": a, "age_years": 30}, {"name": b, "age_years": age_b})


def test_normalise_name_expands_abbreviations() -> None:
    assert normalise_name("Mohd. Kr. Ali") == "mohammad kumar ali"
    assert normalise_name("Smt. Geeta") == "geeta"
    assert similar({"name": "Baby of Rekha", "age_days": 3}, {"name": "Baby of Rekha", "age_months": 1})

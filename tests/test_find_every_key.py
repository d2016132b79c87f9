"""``opd-fallback find`` by every key a clerk has in hand, for a patient of this
counter, one another counter registered (pulled from the hub) and one of
central's index: name, the first or last 4+ digits of a mobile, the whole
mobile, offline number, uhid, visit, order and receipt number, and a tube's
sample id (what a barcode scanner types). One search (store/search.py) answers
the UI and this command alike."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from opd_fallback.application.services import CounterService, PaymentInput
from opd_fallback.config import load_settings, write_config
from opd_fallback.store import open_store, outbox, patient_index
from opd_fallback.store import shared as shared_records
from opd_fallback.store.tables import Op
from tests.tui.conftest import put_master_data

OWN = {"name": "Ramesh Kumar", "sex": "M", "age_years": 40, "mobile": "9876543210"}
LAN = {"name": "Kamla Devi", "sex": "F", "age_years": 60, "mobile": "9415001234", "name_local": "कमला देवी",
       "guardian_relation": "W/O", "guardian_name": "Ram Lal"}


@pytest.fixture(scope="module")
def hospital(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """C07's data dir, with its own patient, C01's patient and an indexed one; the numbers to look up."""
    tmp = tmp_path_factory.mktemp("find")
    other = open_store(tmp / "c01.db")
    put_master_data(other)
    c01 = CounterService(other, "C01")
    reg = c01.register_new("op-1", LAN, department="MED", payment=PaymentInput(mode="cash", amount_paise=1000))
    lab = c01.lab_request("op-1", reg.patient.local_ref, reg.visit.local_ref, ["CBC", "LFT"])  # two tubes, unpaid
    with other.read() as s:
        pulled = [{"hub_seq": i + 1, "op": outbox.envelope(op)} for i, op in enumerate(s.exec(select(Op)).all())]
    other.close()

    data = tmp / "c07"
    base = load_settings(data)
    write_config(base, {"device_id": "C07", "hospital": "KGMU"})
    store = open_store(base.db_path)
    put_master_data(store)
    c07 = CounterService(store, "C07")
    own = c07.register_new("op-7", OWN, department="MED", payment=PaymentInput(mode="cash", amount_paise=1000))
    own_lab = c07.lab_request("op-7", own.patient.local_ref, own.visit.local_ref, ["CBC", "LFT"],
                              payment=PaymentInput(mode="cash"))
    with store.write() as s:
        shared_records.store_page(s, "C07", pulled, [])
        patient_index.upsert_many(s, [{"uhid": "KGMU000000500", "name": "Sunita Sharma", "sex": "F",
                                       "age_years": 50, "mobile": "7000123456", "version": 1,
                                       "local_refs": ["C09-261130-000004"]}])
    store.close()
    assert own_lab.payment is not None and reg.payment is not None
    return {
        "data": str(data), "own": own.patient.local_ref, "own_visit": own.visit.local_ref,
        "own_order": own_lab.order.local_ref, "own_receipt": own_lab.payment.extra["receipt_no"],
        "own_tube1": own_lab.order.extra["samples"][0]["sample_id"],
        "own_tube2": own_lab.order.extra["samples"][1]["sample_id"],
        "lan": reg.patient.local_ref, "lan_visit": reg.visit.local_ref, "lan_order": lab.order.local_ref,
        "lan_receipt": reg.payment.extra["receipt_no"], "lan_tube1": lab.order.extra["samples"][0]["sample_id"],
        "lan_tube2": lab.order.extra["samples"][1]["sample_id"],
    }


def _find(hospital: dict[str, str], query: str) -> list[tuple[str, str | None, str]]:
    from opd_fallback.cli import app

    out = CliRunner().invoke(app, ["--data-dir", hospital["data"], "find", query, "--json"])
    assert out.exit_code == 0, out.output
    return [(h["source"], h["local_ref"] or h["uhid"], h["match"]) for h in json.loads(out.output)]


def test_find_this_counters_patient_by_every_key(hospital: dict[str, str]) -> None:
    own = hospital["own"]
    cases = {
        "ramesh": "name", "Ramesh Kumar": "name", "ramesh kumr": "name",  # misspelt
        "9876": "mobile_start", "3210": "mobile_end", "543210": "mobile_end", "98765 43210": "mobile",
        own.lower(): "offline_no", hospital["own_visit"]: "visit_no", hospital["own_order"]: "order_no",
        hospital["own_receipt"]: "receipt_no", hospital["own_tube1"]: "sample_id", hospital["own_tube2"]: "sample_id",
    }
    got = {q: _find(hospital, q) for q in cases}
    assert got == {q: [("this_counter", own, match)] for q, match in cases.items()}


def test_find_another_counters_patient_by_every_key(hospital: dict[str, str]) -> None:
    lan = hospital["lan"]
    cases = {
        "kamla": "name", "कमला देवी": "name", "kamla devee": "name",
        "9415": "mobile_start", "1234": "mobile_end", "001234": "mobile_end", "+91 94150 01234": "mobile",
        lan: "offline_no", hospital["lan_visit"]: "visit_no", hospital["lan_order"]: "order_no",
        hospital["lan_receipt"]: "receipt_no", hospital["lan_tube1"]: "sample_id",
        hospital["lan_tube2"]: "sample_id",
    }
    got = {q: _find(hospital, q) for q in cases}
    assert got == {q: [("lan", lan, match)] for q, match in cases.items()}


def test_find_centrals_patient_by_every_key(hospital: dict[str, str]) -> None:
    cases = {"sunita": "name", "suneeta": "name", "7000": "mobile_start", "3456": "mobile_end",
             "123456": "mobile_end", "7000123456": "mobile", "kgmu000000500": "uhid",
             "C09-261130-000004": "offline_no"}
    got = {q: _find(hospital, q) for q in cases}
    assert got == {q: [("central", "KGMU000000500", match)] for q, match in cases.items()}


def test_find_prints_the_patient_as_registered(hospital: dict[str, str]) -> None:
    from opd_fallback.cli import app

    out = CliRunner().invoke(app, ["--data-dir", hospital["data"], "find", "1234"])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert len(lines) == 1 and hospital["lan"] in lines[0] and "Kamla Devi" in lines[0] and "60/F" in lines[0]
    none = CliRunner().invoke(app, ["--data-dir", hospital["data"], "find", "5555"])
    assert none.exit_code == 1 and "no patient found" in none.output


def test_the_search_reads_mobile_tails_through_an_index(tmp_path: Path) -> None:
    """A million patients stay quick only if SQLite uses the tail index (benchmarks/patient_search.py)."""
    from sqlalchemy import text

    from opd_fallback.store import search

    store = open_store(tmp_path / "c.db")
    try:
        with store.read() as s:
            for src, table in ((search.LOCAL, "patient"), (search.LAN, "shared_record"),
                               (search.INDEX, "patient_index")):
                plan = s.execute(text(f"EXPLAIN QUERY PLAN {src.select}{search.TAIL} = :t AND mobile LIKE :s"),
                                 {"t": "1234", "s": "%1234"}).all()
                assert search.TAIL_INDEXES[table] in str(plan), plan
    finally:
        store.close()

"""find: one query over this counter, the LAN's records and central's index;
every hit says where it came from."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import text
from typer.testing import CliRunner

from opd_fallback.application import matching
from opd_fallback.application.find import find
from opd_fallback.application.matching import possible_duplicates
from opd_fallback.application.services import CounterService, PaymentInput
from opd_fallback.config import load_settings, write_config
from opd_fallback.store import open_store, patient_index, shared


def lan_patient(seq: int, name: str, mobile: str, *, name_local: str | None = None) -> dict:
    return {"hub_seq": seq, "op": {
        "op_id": f"op{seq}", "kind": "patient.register", "device_id": "C03", "operator_id": "x", "seq": seq,
        "recorded_at": "2026-11-30T09:14:05+05:30", "depends_on": [], "resolution": None,
        "payload": {"local_ref": f"C03-261130-{seq:06d}", "name": name, "name_local": name_local, "sex": "F",
                    "age_years": 34, "mobile": mobile}}}


def test_find_everywhere(tmp_path) -> None:
    store = open_store(tmp_path / "counter.db")
    try:
        svc = CounterService(store, "C07")
        own = svc.register_new("op-1", {"name": "Ramesh Kumar", "sex": "M", "age_years": 40, "mobile": "9876543210"},
                               department="MED", payment=PaymentInput(mode="cash", amount_paise=1000))
        with store.write() as s:
            shared.store_page(s, "C07", [lan_patient(1, "Sita Devi", "9123456780", name_local="सीता देवी")],
                              [{"local_ref": "C03-261130-000001", "central_id": "KGMU000000009",
                                "reported_by": "C03"}])
            patient_index.upsert_many(s, [{"uhid": "KGMU000000500", "name": "Sunita Sharma", "sex": "F",
                                           "age_years": 50, "mobile": "9000000001"}])
        by_ref = find(store, "C03-261130-000001")
        assert [(h.source, h.where, h.match) for h in by_ref] == [("lan", "C03 at 09:14", "offline_no")]
        assert by_ref[0].uhid == "KGMU000000009"
        qr = find(store, f"https://his.example/slip?no={own.patient.local_ref.lower()}")
        assert [h.where for h in qr] == ["this counter"]
        assert [h.source for h in find(store, "+91 91234 56780")] == ["lan"]
        assert [h.source for h in find(store, "KGMU000000500")] == ["central"]
        with store.write() as s:  # central maps another counter's slip to that patient (contract 1.1)
            s.execute(text("INSERT INTO patient_index_ref(local_ref, uhid) VALUES ('C09-261130-000004', 'KGMU000000500')"))
        slip = find(store, "C09-261130-000004")
        assert [(h.where, h.uhid, h.match) for h in slip] == [("central", "KGMU000000500", "offline_no")]
        fuzzy = find(store, "sita devee")
        assert fuzzy and fuzzy[0].name == "Sita Devi"
        assert find(store, "सीता देवी")[0].local_ref == "C03-261130-000001"
        assert find(store, "sunita")[0].where == "central"
        assert find(store, "ramesh kumr")[0].where == "this counter"
        assert find(store, "zzzz qqqq") == []
        # before registering: the LAN has her (same mobile, similar name, close age): the counter's one
        # duplicate check (application/matching.py, domain/identity.py's rule) over the LAN's patients
        def on_lan(fields: dict[str, Any]) -> list[tuple[str | None, tuple[str, ...]]]:
            return [(m.hit.local_ref, m.why)
                    for m in possible_duplicates(store, fields, sources=(matching.lan_counters,))]

        assert on_lan({"name": "DEVI Sita", "mobile": "+91 91234 56780", "age_years": 35}) == [
            ("C03-261130-000001", ("same mobile", "same name", "similar age", "registered at C03"))]
        assert on_lan({"name": "Sita Devi", "mobile": "9123456781", "age_years": 35}) == []
        assert on_lan({"name": "Mohan Lal", "mobile": "9123456780", "age_years": 35}) == []
        assert on_lan({"name": "Sita Devi", "mobile": "9123456780", "age_years": 70}) == []
    finally:
        store.close()
    base = load_settings(tmp_path)
    write_config(base, {"device_id": "C07", "hospital": "KGMU"})
    from opd_fallback.cli import app

    out = CliRunner().invoke(app, ["--data-dir", str(tmp_path), "find", "sita", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)[0]["where"] == "C03 at 09:14"
    none = CliRunner().invoke(app, ["--data-dir", str(tmp_path), "find", "nobody here"])
    assert none.exit_code == 1 and "no patient found" in none.output

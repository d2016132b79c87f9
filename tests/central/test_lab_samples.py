"""lab.order ``samples`` (contract 1.1): one sample id per tube, stored by the
reference server; a tube's id never names a second tube."""

from __future__ import annotations

from tests.central.util import factory, patient_ref, push, registered, unique_mobile
from tests.helpers.central import CentralHandle


def test_tubes_are_stored_and_a_sample_id_is_never_taken_twice(central: CentralHandle) -> None:
    f = factory()
    with central.client("C07") as http:
        reg, _ = registered(http, f, mobile=unique_mobile())
        vis = f.visit(patient_ref(reg))
        vref = {"local_ref": vis["payload"]["local_ref"]}
        reserved = http.post("/id-blocks", json={"kind": "sample", "count": 1}).json()["ids"][0]
        lab = f.lab(patient_ref(reg), vref, tests=("CBC", "LFT"))
        lab["payload"]["sample_id"] = reserved
        lab["payload"]["samples"] = [
            {"sample_id": reserved, "sample_type": "EDTA", "tests": ["CBC"]},
            {"sample_id": "C07-S990001-2", "sample_type": "Serum", "tests": ["LFT"]},
        ]
        again = f.lab(patient_ref(reg), vref, tests=("CBC",))
        again["payload"]["samples"] = [{"sample_id": "C07-S990001-2", "sample_type": "EDTA", "tests": ["CBC"]}]
        same_twice = f.lab(patient_ref(reg), vref, tests=("CBC", "LFT"))
        same_twice["payload"]["samples"] = [
            {"sample_id": "C07-S990003-1", "sample_type": "EDTA", "tests": ["CBC"]},
            {"sample_id": "C07-S990003-1", "sample_type": "Serum", "tests": ["LFT"]},
        ]
        res = push(http, vis, lab, again, same_twice)
        assert [r["status"] for r in res] == ["applied", "applied", "rejected", "rejected"]
        assert res[2]["error"]["fields"][0]["field"] == "samples.0.sample_id"
        assert res[2]["error"]["fields"][0]["code"] == "already_used"
        assert push(http, lab)[0]["status"] == "duplicate"  # a resend is not a reuse
    rows = central.query("SELECT sample_id, sample_type, tests FROM lab_sample WHERE order_id = ? ORDER BY sample_id",
                         (res[1]["result"]["order_id"],))
    used_by = central.query("SELECT used_by_op FROM issued_id WHERE id = ?", (reserved,))[0][0]
    assert rows == [("C07-S990001-2", "Serum", '["LFT"]'), (reserved, "EDTA", '["CBC"]')]
    assert used_by == lab["op_id"]

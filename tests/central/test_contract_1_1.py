"""Contract 1.1 at the reference server, over real HTTP.

Strict references (exactly one key, never null), payload equality as RFC 8785
canonical JSON with absent equal to null, age month/day ranges, ``max_seq``
over every seq received, ``exemptions`` in master data and ``local_refs`` in
``/patients/changes``. Each test here failed against the 1.0 server.
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import orjson
import pytest

from tests.central.util import factory, one, patient_ref, push, registered, unique_mobile
from tests.helpers.central import CentralHandle

BAD_REFS = {
    "both keys": lambda lr, cid: {"central_id": cid, "local_ref": lr},
    "neither key": lambda lr, cid: {},
    "null central_id beside local_ref": lambda lr, cid: {"central_id": None, "local_ref": lr},
    "null local_ref beside central_id": lambda lr, cid: {"central_id": cid, "local_ref": None},
    "only a null key": lambda lr, cid: {"local_ref": None},
}


def _field_names(res: dict[str, Any]) -> set[str]:
    return {f["field"] for f in res["error"]["fields"]}


@pytest.mark.parametrize("form", list(BAD_REFS))
def test_every_reference_field_must_have_exactly_one_non_null_key(central: CentralHandle, form: str) -> None:
    f = factory()
    make = BAD_REFS[form]
    with central.client("C07") as http:
        reg, uhid = registered(http, f, mobile=unique_mobile())
        vis = f.visit(patient_ref(reg))
        pay = f.payment(patient_ref(reg), [("OPD-NEW", 1000)], visit={"local_ref": vis["payload"]["local_ref"]})
        assert [r["status"] for r in push(http, vis, pay)] == ["applied", "applied"]
        vref = {"local_ref": vis["payload"]["local_ref"]}
        bad = {
            "patient": [
                f.visit(make(reg["payload"]["local_ref"], uhid)),
                f.update(make(reg["payload"]["local_ref"], uhid), {"district": "Lucknow"}, base_version=1),
                f.payment(make(reg["payload"]["local_ref"], uhid), [("OPD-NEW", 1000)]),
                f.lab(make(reg["payload"]["local_ref"], uhid), vref),
            ],
            "visit": [
                f.lab(patient_ref(reg), make(vis["payload"]["local_ref"], "V0000000001")),
                f.payment(patient_ref(reg), [("OPD-NEW", 1000)],
                          visit=make(vis["payload"]["local_ref"], "V0000000001")),
            ],
            "lab_order": [f.payment(patient_ref(reg), [("CBC", 15000)],
                                    lab_order=make("C07-261130-000001", "LO0000000001"))],
            "payment": [f.void(make(pay["payload"]["local_ref"], "KR000000001"))],
        }
        for field, ops in bad.items():
            for op, res in zip(ops, push(http, *ops)):
                assert res["status"] == "rejected", (field, op["kind"], res)
                assert res["error"]["code"] == "validation_failed", res
                names = _field_names(res)
                assert names and all(n == field or n.startswith(field + ".") for n in names), (field, names)
        # the same ops with a correct one-key reference go through
        good = f.void({"local_ref": pay["payload"]["local_ref"]})
        assert one(http, good)["status"] == "applied"


def test_a_null_valued_key_is_named_in_the_error(central: CentralHandle) -> None:
    f = factory()
    with central.client("C07") as http:
        reg, _ = registered(http, f, mobile=unique_mobile())
        res = one(http, f.visit({"central_id": None, "local_ref": reg["payload"]["local_ref"]}))
        assert res["status"] == "rejected" and res["error"]["code"] == "validation_failed"
        fields = {x["field"]: x["message"] for x in res["error"]["fields"]}
        assert "patient.central_id" in fields and "null" in fields["patient.central_id"]


def test_idempotency_compares_canonical_json_with_absent_equal_to_null(central: CentralHandle) -> None:
    f = factory()
    reg = f.register(mobile=unique_mobile())
    with central.client("C07") as http:
        first = one(http, reg)
        assert first["status"] == "applied"
        # the same payload: other key order, a null-valued key added, an absent-in-effect key made null
        resend = copy.deepcopy(reg)
        resend["payload"] = dict(reversed(list(reg["payload"].items())))
        resend["payload"]["name_local"] = None
        resend["payload"]["abha_number"] = None
        del resend["payload"]["uhid"]  # was null
        again = one(http, resend)
        assert again["status"] == "duplicate" and again["result"] == first["result"]
        # a real difference is still a mismatch, and a number written otherwise is one too
        changed = copy.deepcopy(reg)
        changed["payload"]["age_years"] = reg["payload"]["age_years"] + 1
        assert one(http, changed)["error"]["code"] == "idempotency_mismatch"


def test_outcomes_remembered_before_1_1_still_answer_resends_of_either_form(central: CentralHandle) -> None:
    """A 1.0 server stored sha256(sorted-key JSON as received); a 1.0 counter sent both ref keys.
    After the upgrade, the upgraded counter resends the one-key form: a duplicate, not a mismatch."""
    f = factory()
    with central.client("C07") as http:
        reg, _ = registered(http, f, mobile=unique_mobile())
        vis = f.visit(patient_ref(reg))
        assert one(http, vis)["status"] == "applied"
        old_form = {**vis["payload"], "patient": {"central_id": None, "local_ref": reg["payload"]["local_ref"]}}
        legacy = hashlib.sha256(orjson.dumps(old_form, option=orjson.OPT_SORT_KEYS)).hexdigest()
        central.execute("UPDATE op_outcome SET payload_hash=? WHERE op_id=?", (legacy, vis["op_id"]))
        assert one(http, vis)["status"] == "duplicate"
        other = copy.deepcopy(vis)
        other["payload"]["token_no"] += 1
        assert one(http, other)["error"]["code"] == "idempotency_mismatch"


def test_a_payload_without_a_canonical_form_is_rejected_naming_it(central: CentralHandle) -> None:
    f = factory()
    with central.client("C07") as http:
        reg, _ = registered(http, f, mobile=unique_mobile())
        res = one(http, f.update(patient_ref(reg), {"district": "Agra"}, base_version=2**60))
        assert res["status"] == "rejected" and res["error"]["code"] == "validation_failed"
        assert _field_names(res) == {"base_version"}  # 1.2: the field is named


@pytest.mark.parametrize(("field", "ok", "bad"), [("age_months", 11, 12), ("age_days", 31, 32)])
def test_age_months_and_days_ranges(central: CentralHandle, field: str, ok: int, bad: int) -> None:
    f = factory()
    with central.client("C07") as http:
        good = one(http, f.register(mobile=unique_mobile(), age=0, **{field: ok}))
        assert good["status"] == "applied", good
        res = one(http, f.register(mobile=unique_mobile(), age=0, **{field: bad}))
        assert res["status"] == "rejected" and res["error"]["code"] == "validation_failed"
        assert _field_names(res) == {field}


def test_max_seq_counts_every_seq_received_whatever_the_outcome(central: CentralHandle) -> None:
    f = factory("X09")
    with central.client("X09") as http:
        start = http.get("/devices/me").json()["max_seq"]
        reg, _ = registered(http, f, mobile=unique_mobile())
        bad_kind = {**f.visit(patient_ref(reg)), "kind": "visit.close"}  # rejected as an envelope
        bad_kind["seq"] = reg["seq"] + 100
        assert one(http, bad_kind)["status"] == "rejected"
        assert http.get("/devices/me").json()["max_seq"] == reg["seq"] + 100 > start
        f.seq = reg["seq"] + 200
        deferred = f.visit({"local_ref": "X09-261130-999999"})  # not known yet
        assert one(http, deferred)["status"] == "deferred"
        assert http.get("/devices/me").json()["max_seq"] == deferred["seq"]
        mismatch = copy.deepcopy(reg)
        mismatch["payload"]["name"] = "Other Name"
        mismatch["seq"] = deferred["seq"] + 5  # an idempotency_mismatch still carries a seq we saw
        assert one(http, mismatch)["error"]["code"] == "idempotency_mismatch"
        assert http.get("/devices/me").json()["max_seq"] == deferred["seq"] + 5
        # another device's op sent with this token does not move this device's numbering
        foreign = {**f.visit(patient_ref(reg)), "device_id": "L02", "seq": 10**9}
        assert one(http, foreign)["error"]["code"] == "device_mismatch"
        assert http.get("/devices/me").json()["max_seq"] == deferred["seq"] + 5


def test_master_data_serves_exemptions(central: CentralHandle) -> None:
    with central.client("C07") as http:
        md = http.get("/master-data").json()
    exempt = {e["category"]: set(e["fee_codes"]) for e in md["exemptions"]}
    assert {"OPD-NEW", "OPD-REVISIT"} <= exempt["bpl"] and {"OPD-NEW", "OPD-REVISIT"} <= exempt["staff"]
    assert "general" not in exempt


def _changes(http: Any, cursor: str | None = None) -> tuple[dict[str, dict[str, Any]], str]:
    out: dict[str, dict[str, Any]] = {}
    while True:
        params: dict[str, Any] = {"limit": 500}
        if cursor:
            params["cursor"] = cursor
        body = http.get("/patients/changes", params=params).json()
        out.update({p["uhid"]: p for p in body["patients"]})
        cursor = body["next_cursor"]
        if body["done"]:
            return out, cursor


def test_patient_changes_carry_every_local_ref_including_links(central: CentralHandle) -> None:
    c07, l02 = factory("C07"), factory("L02")
    mobile = unique_mobile()
    with central.client("C07") as a, central.client("L02") as b:
        reg, uhid = registered(a, c07, name="Kamla Devi", mobile=mobile, age=50, sex="F")
        seen, cursor = _changes(a)
        assert seen[uhid]["local_refs"] == [reg["payload"]["local_ref"]]
        # the same person registered offline at L02: a possible duplicate, linked by a person
        dup = l02.register(name="Kamla Devi", mobile=mobile, age=50, sex="F")
        assert one(b, dup)["error"]["code"] == "possible_duplicate"
        linked = one(b, {**dup, "resolution": {"action": "link", "uhid": uhid}})
        assert linked["status"] == "applied" and linked["result"] == {"uhid": uhid, "linked": True}
        # a counter that had read up to the cursor learns the new offline number
        after, _ = _changes(a, cursor)
        assert sorted(after[uhid]["local_refs"]) == sorted([reg["payload"]["local_ref"], dup["payload"]["local_ref"]])

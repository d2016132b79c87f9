"""POST /api/v1/ops:batch over real HTTP: every status and error code of the contract."""

from __future__ import annotations

import copy

import orjson

from tests.central.util import factory, one, patient_ref, push, registered, unique_mobile
from tests.helpers.central import CentralHandle


def test_register_visit_payment_then_replay_is_duplicate_without_second_effect(central: CentralHandle) -> None:
    f = factory()
    reg = f.register(mobile=unique_mobile())
    vis = f.visit(patient_ref(reg), depends_on=[reg["op_id"]])
    pay = f.payment(patient_ref(reg), [("OPD-NEW", 1000)], visit={"local_ref": vis["payload"]["local_ref"]},
                    depends_on=[vis["op_id"]])
    with central.client("C07") as http:
        before = http.get("/devices/me").json()["ops_applied"]
        first = push(http, reg, vis, pay)
        assert [r["status"] for r in first] == ["applied"] * 3
        assert first[0]["result"]["uhid"].startswith("KGMU") and first[0]["result"]["linked"] is False
        assert first[1]["result"]["visit_id"]
        assert first[2]["result"]["warnings"] == []
        again = push(http, reg, vis, pay)
        assert [r["status"] for r in again] == ["duplicate"] * 3
        assert [r["result"] for r in again] == [r["result"] for r in first]
        assert http.get("/devices/me").json()["ops_applied"] == before + 3
        # GET /ops/{op_id} remembers the applied outcome
        got = http.get(f"/ops/{pay['op_id']}").json()
        assert got == {**first[2], "status": "applied"}


def test_same_op_id_with_other_payload_or_kind_is_idempotency_mismatch(central: CentralHandle) -> None:
    f = factory()
    with central.client("C07") as http:
        reg, _ = registered(http, f, mobile=unique_mobile())
        changed = copy.deepcopy(reg)
        changed["payload"]["name"] = "Someone Else"
        other_kind = {**reg, "kind": "patient.update"}
        res = push(http, changed, other_kind)
        assert [r["status"] for r in res] == ["rejected", "rejected"]
        assert {r["error"]["code"] for r in res} == {"idempotency_mismatch"}
        # the original outcome is untouched
        assert one(http, reg)["status"] == "duplicate"


def test_dependency_missing_is_deferred_then_applies(central: CentralHandle) -> None:
    f = factory()
    reg = f.register(mobile=unique_mobile())
    vis = f.visit(patient_ref(reg), depends_on=[reg["op_id"]])
    with central.client("C07") as http:
        res = one(http, vis)
        assert res["status"] == "deferred"
        assert res["error"]["code"] == "dependency_missing"
        assert http.get(f"/ops/{vis['op_id']}").status_code == 404  # deferred is not remembered
        assert [r["status"] for r in push(http, reg, vis)] == ["applied", "applied"]


def test_local_refs_resolve_across_batches_and_pending_ref_is_deferred(central: CentralHandle) -> None:
    f = factory()
    reg = f.register(mobile=unique_mobile())
    vis = f.visit(patient_ref(reg))  # no depends_on: only the local_ref links them
    with central.client("C07") as http:
        res = one(http, vis)
        assert (res["status"], res["error"]["code"]) == ("deferred", "reference_pending")
        uhid = one(http, reg)["result"]["uhid"]
        res = one(http, vis)
        assert res["status"] == "applied"
        lab = f.lab(patient_ref(reg), {"local_ref": vis["payload"]["local_ref"]})
        assert one(http, lab)["status"] == "applied"
        # a central_id works as well as the local_ref
        vis2 = f.visit({"central_id": uhid}, visit_type="revisit")
        assert one(http, vis2)["status"] == "applied"


def test_another_device_refers_to_and_depends_on_a_record_of_a_counter(central: CentralHandle) -> None:
    c07, l02 = factory("C07"), factory("L02")
    reg = c07.register(mobile=unique_mobile())
    vis = c07.visit(patient_ref(reg), depends_on=[reg["op_id"]])
    with central.client("C07") as http:
        push(http, reg, vis)
    lab = l02.lab(patient_ref(reg), {"local_ref": vis["payload"]["local_ref"]}, depends_on=[vis["op_id"]])
    lab_ref = {"local_ref": lab["payload"]["local_ref"]}
    pay = l02.payment(patient_ref(reg), [("CBC", 15000), ("LFT", 25000)], lab_order=lab_ref,
                      depends_on=[lab["op_id"]])
    with central.client("L02") as http:
        res = push(http, lab, pay)
        assert [r["status"] for r in res] == ["applied", "applied"], res
        assert res[0]["result"]["accession"]


def test_device_cannot_write_for_another_and_the_op_id_is_not_poisoned(central: CentralHandle) -> None:
    l02 = factory("L02")
    reg = l02.register(mobile=unique_mobile())
    with central.client("C07") as http:
        res = one(http, reg)
        assert (res["status"], res["error"]["code"]) == ("rejected", "device_mismatch")
    with central.client("L02") as http:
        assert one(http, reg)["status"] == "applied"


def test_local_ref_of_another_device_is_validation_failed(central: CentralHandle) -> None:
    f = factory()
    reg = f.register(mobile=unique_mobile())
    reg["payload"]["local_ref"] = "L02-261126-999999"
    with central.client("C07") as http:
        res = one(http, reg)
    assert (res["status"], res["error"]["code"]) == ("rejected", "validation_failed")
    assert res["error"]["fields"][0]["field"] == "local_ref"


def test_malformed_payload_rejects_only_its_op_naming_the_field(central: CentralHandle) -> None:
    f = factory()
    bad = f.register(mobile="12345")
    good = f.register(mobile=unique_mobile())
    broken_envelope = {"op_id": "01BROKEN", "kind": "patient.register"}
    with central.client("C07") as http:
        res = push(http, bad, broken_envelope, good)
        assert [r["status"] for r in res] == ["rejected", "rejected", "applied"]
        assert res[0]["error"]["code"] == "validation_failed"
        assert [p["field"] for p in res[0]["error"]["fields"]] == ["mobile"]
        assert "digits" in res[0]["error"]["fields"][0]["message"]
        assert {p["field"] for p in res[1]["error"]["fields"]} >= {"device_id", "payload", "seq"}
        # a final rejection is remembered and replayed as it was
        assert one(http, bad) == res[0]
        assert http.get(f"/ops/{bad['op_id']}").json()["status"] == "rejected"


def test_master_data_and_reference_rejections(central: CentralHandle) -> None:
    f = factory()
    with central.client("C07") as http:
        _reg, uhid = registered(http, f, mobile=unique_mobile())
        vis = f.visit({"central_id": uhid}, department="NOPE")
        bad_unit = f.visit({"central_id": uhid}, department="MED", unit="ENT-U1")
        ghost = f.visit({"central_id": "KGMU999999999"})
        ok_visit = f.visit({"central_id": uhid})
        res = push(http, vis, bad_unit, ghost, ok_visit)
        assert [r["status"] for r in res] == ["rejected", "rejected", "rejected", "applied"]
        assert [r["error"]["code"] for r in res[:3]] == ["unknown_department", "unknown_department",
                                                         "unknown_reference"]
        assert res[1]["error"]["fields"][0]["field"] == "unit"
        visit_id = res[3]["result"]["visit_id"]
        lab = f.lab({"central_id": uhid}, {"central_id": visit_id}, tests=("CBC", "UNOBTAINIUM"))
        res = one(http, lab)
        assert (res["status"], res["error"]["code"]) == ("rejected", "unknown_test")
        assert res["error"]["fields"][0]["field"] == "tests.1.code"


def test_payments_are_facts_warnings_never_rejections(central: CentralHandle) -> None:
    f = factory()
    with central.client("C07") as http:
        _, uhid = registered(http, f, mobile=unique_mobile())
        pay = f.payment({"central_id": uhid}, [("OPD-NEW", 500), ("MYSTERY", 700)], mode="upi")
        res = one(http, pay)
        assert res["status"] == "applied"
        assert res["result"]["warnings"] == [
            {"code": "amount_mismatch", "item": "OPD-NEW", "expected_paise": 1000},
            {"code": "unknown_item", "item": "MYSTERY"},
        ]
        # a BPL patient is exempt from the registration fee: 0 paise is what is expected
        _, bpl = registered(http, f, mobile=unique_mobile(), category="bpl")
        res = one(http, f.payment({"central_id": bpl}, [("OPD-NEW", 0)]))
        assert res["result"]["warnings"] == []


def test_void_applies_once_and_unknown_target_is_void_target_missing(central: CentralHandle) -> None:
    f = factory()
    with central.client("C07") as http:
        reg, _uhid = registered(http, f, mobile=unique_mobile())
        pay = f.payment(patient_ref(reg), [("OPD-NEW", 1000)])
        receipt = one(http, pay)["result"]["receipt_id"]
        void = f.void({"local_ref": pay["payload"]["local_ref"]}, depends_on=[pay["op_id"]])
        res = one(http, void)
        assert res == {"op_id": void["op_id"], "status": "applied",
                       "result": {"receipt_id": receipt, "voided": True}, "error": None}
        twice = f.void({"central_id": receipt})
        missing = f.void({"central_id": "KR999999999"})
        res = push(http, twice, missing)
        assert [(r["status"], r["error"]["code"]) for r in res] == [("rejected", "void_target_missing")] * 2


def test_reserved_ids_must_be_issued_to_the_device(central: CentralHandle) -> None:
    f = factory()
    with central.client("X09") as http:
        theirs = http.post("/id-blocks", json={"kind": "uhid", "count": 1}).json()["ids"][0]
        their_sample = http.post("/id-blocks", json={"kind": "sample", "count": 1}).json()["ids"][0]
    with central.client("C07") as http:
        mine = http.post("/id-blocks", json={"kind": "uhid", "count": 2}).json()["ids"]
        receipts = http.post("/id-blocks", json={"kind": "receipt", "count": 1}).json()["ids"]
        stolen = f.register(mobile=unique_mobile(), uhid=theirs)
        invented = f.register(mobile=unique_mobile(), uhid="MADE-UP-1")
        good = f.register(mobile=unique_mobile(), uhid=mine[0])
        reuse = f.register(mobile=unique_mobile(), uhid=mine[0])
        res = push(http, stolen, invented, good, reuse)
        assert [r["status"] for r in res] == ["rejected", "rejected", "applied", "rejected"]
        assert {res[i]["error"]["code"] for i in (0, 1, 3)} == {"reserved_id_not_owned"}
        assert res[2]["result"] == {"uhid": mine[0], "linked": False}
        pay = f.payment(patient_ref(good), [("OPD-NEW", 1000)], receipt_no=receipts[0])
        assert one(http, pay)["result"]["receipt_id"] == receipts[0]
        # a sample id from another device's block is refused; one from our own block is taken
        vis = f.visit(patient_ref(good))
        vref = {"local_ref": vis["payload"]["local_ref"]}
        samples = http.post("/id-blocks", json={"kind": "sample", "count": 1}).json()["ids"]
        lab_theirs = f.lab(patient_ref(good), vref)
        lab_theirs["payload"]["sample_id"] = their_sample
        lab_mine = f.lab(patient_ref(good), vref)
        lab_mine["payload"]["sample_id"] = samples[0]
        lab_local = f.lab(patient_ref(good), vref)
        lab_local["payload"]["sample_id"] = "C07-S000044"
        res = push(http, vis, lab_theirs, lab_mine, lab_local)
        assert [r["status"] for r in res] == ["applied", "rejected", "applied", "applied"]
        assert res[1]["error"]["code"] == "reserved_id_not_owned"
        assert res[1]["error"]["fields"][0]["field"] == "sample_id"


def test_possible_duplicate_conflict_then_link_or_create_new(central: CentralHandle) -> None:
    f = factory()
    mobile = unique_mobile()
    with central.client("C07") as http:
        _, uhid = registered(http, f, name="Mohammad Irfan Kumar", mobile=mobile, age=40)
        dup = f.register(name="Mohd. Irfan Kr", mobile=mobile, age=41)
        res = one(http, dup)
        assert (res["status"], res["error"]["code"]) == ("conflict", "possible_duplicate")
        cand = res["error"]["candidates"]
        assert [c["uhid"] for c in cand] == [uhid]
        assert set(cand[0]) == {"uhid", "name", "sex", "age_years", "guardian_name", "mobile", "district"}
        assert http.get(f"/ops/{dup['op_id']}").status_code == 404  # conflicts are not remembered
        linked = one(http, {**dup, "resolution": {"action": "link", "uhid": uhid}})
        assert linked["status"] == "applied"
        assert linked["result"] == {"uhid": uhid, "linked": True}
        # the local_ref now names that patient: a visit on it lands on the same uhid
        vis = f.visit(patient_ref(dup))
        visit = one(http, vis)
        assert visit["status"] == "applied"
        rows = central.query("SELECT uhid FROM visit WHERE visit_id=?", (visit["result"]["visit_id"],))
        assert rows == [(uhid,)]
        # same mobile, similar name, but 10 years apart: a different person (a father)
        assert one(http, f.register(name="Mohd Irfan", mobile=mobile, age=52))["status"] == "applied"
        # same ABHA is the same person whatever the name; create_new overrides
        abha = "91" + mobile + "01"
        registered(http, f, name="Sunita Devi", mobile=unique_mobile(), abha_number=abha)
        again = f.register(name="Anita Verma", mobile=unique_mobile(), abha_number=abha)
        assert one(http, again)["error"]["code"] == "possible_duplicate"
        res = one(http, {**again, "resolution": {"action": "create_new"}})
        assert res["status"] == "applied" and res["result"]["linked"] is False


def test_update_versions_and_stale_update_conflict(central: CentralHandle) -> None:
    f, l02 = factory(), factory("L02")
    with central.client("C07") as http:
        reg, uhid = registered(http, f, mobile=unique_mobile())
        # updating a patient this counter registered offline: base 0 is fine
        res = one(http, f.update(patient_ref(reg), {"district": "Sitapur"}, base_version=0))
        assert res["result"] == {"uhid": uhid, "version": 2}
    with central.client("L02") as http:
        stale = l02.update({"central_id": uhid}, {"mobile": "9876543210"}, base_version=1)
        res = one(http, stale)
        assert (res["status"], res["error"]["code"]) == ("conflict", "stale_update")
        assert res["error"]["current"]["version"] == 2
        assert res["error"]["current"]["district"] == "Sitapur"
        res = one(http, {**stale, "resolution": {"action": "apply", "base_version": 2}})
        assert res["status"] == "applied" and res["result"] == {"uhid": uhid, "version": 3}
        changes = http.get("/patients/changes", params={"limit": 5000}).json()
        mine = [p for p in changes["patients"] if p["uhid"] == uhid]
        assert mine and mine[0]["version"] == 3 and mine[0]["mobile"] == "9876543210"


def test_batch_limits_413_and_bad_envelopes_422(central: CentralHandle) -> None:
    f = factory()
    ops = [f.register(mobile=unique_mobile()) for _ in range(501)]
    with central.client("C07") as http:
        r = http.post("/ops:batch", json={"ops": ops})
        assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"
        big = orjson.dumps({"ops": [{"op_id": "x", "pad": "a" * (1024 * 1024)}]})
        r = http.post("/ops:batch", content=big, headers={"content-type": "application/json"})
        assert r.status_code == 413
        for body in (b"not json", b"[]", b'{"ops": {}}', b'{"ops": [1, 2]}', b'{"ops": []}', b"{}"):
            r = http.post("/ops:batch", content=body, headers={"content-type": "application/json"})
            assert r.status_code == 422, body
            assert r.json()["error"]["code"] == "validation_failed"
        # nothing of the refused batch was applied
        assert http.get(f"/ops/{ops[0]['op_id']}").status_code == 404
        # exactly 500 is fine
        assert len(push(http, *ops[:500])) == 500


def test_an_envelope_the_database_cannot_hold_rejects_only_its_op(central: CentralHandle) -> None:
    """A seq beyond SQLite's integer range or a recorded_at that cannot be placed
    in Asia/Kolkata must not fail the whole batch (a 5xx the counter would resend forever)."""
    f = factory()
    huge_seq = {**f.register(mobile=unique_mobile()), "seq": 2**64 - 1}
    far_future = {**f.register(mobile="bad"), "recorded_at": "9999-12-31T23:00:00+00:00"}
    far_past = {**f.register(mobile=unique_mobile()), "recorded_at": "0001-01-01T00:00:00+05:30"}
    good = f.register(mobile=unique_mobile())
    with central.client("C07") as http:
        res = push(http, huge_seq, far_future, far_past, good)
        assert [r["status"] for r in res] == ["rejected", "rejected", "rejected", "applied"], res
        assert [r["error"]["code"] for r in res[:3]] == ["validation_failed"] * 3
        assert [[p["field"] for p in r["error"]["fields"]] for r in res[:3]] == [
            ["seq"], ["recorded_at"], ["recorded_at"]]
        # like any malformed envelope, not remembered under the op_id
        assert http.get(f"/ops/{huge_seq['op_id']}").status_code == 404
        assert http.get("/devices/me").json()["max_seq"] < 2**63

"""The hub over real HTTP: idempotent storage by op_id, one counter cannot push
for another, pulls by cursor see every other counter's ops once and in order,
learned central ids travel too, and the merged index finds records."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest
from ulid import ULID

from tests.helpers.hub import run_hub


def op(device: str, seq: int, kind: str = "patient.register", **payload: object) -> dict[str, object]:
    body: dict[str, object] = {"local_ref": f"{device}-261130-{seq:06d}", "name": f"Ram {device} {seq}",
                               "sex": "M", "age_years": 40, "mobile": "9876543210"}
    body.update(payload)
    return {"op_id": str(ULID()), "kind": kind, "device_id": device, "operator_id": "op-1", "seq": seq,
            "recorded_at": "2026-11-30T09:14:00+05:30", "depends_on": [], "payload": body, "resolution": None}


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory):
    with run_hub(tmp_path_factory.mktemp("hub"), devices=("C01", "C02", "C03")) as h:
        yield h


def pull_all(client, cursor: int = 0, limit: int = 500, **params: object) -> tuple[list, list, int]:
    ops, ids = [], []
    while True:
        r = client.get("/changes", params={"cursor": cursor, "limit": limit, **params})
        assert r.status_code == 200, r.text
        body = r.json()
        ops += body["ops"]
        ids += body["central_ids"]
        assert body["next_cursor"] >= cursor
        cursor = body["next_cursor"]
        if body["done"]:
            return ops, ids, cursor


def test_push_is_idempotent_and_own_device_only(hub) -> None:
    a = op("C01", 1)
    with hub.client("C01") as c1:
        r = c1.post("/ops:push", json={"ops": [a, op("C02", 1)]})
        assert r.status_code == 200
        res = r.json()["results"]
        assert [x["status"] for x in res] == ["stored", "rejected"]
        assert res[1]["error"]["code"] == "device_mismatch"
        again = c1.post("/ops:push", json={"ops": [a]}).json()["results"]
        assert again[0]["status"] == "duplicate"
        changed = dict(a, payload={**a["payload"], "name": "Someone Else"})
        bad = c1.post("/ops:push", json={"ops": [changed]}).json()["results"]
        assert bad[0]["status"] == "rejected" and bad[0]["error"]["code"] == "idempotency_mismatch"
        junk = c1.post("/ops:push", json={"ops": [{"op_id": "x"}]}).json()["results"]
        assert junk[0]["error"]["code"] == "validation_failed"
    with hub.client("C02") as c2:
        ops, _, _ = pull_all(c2)
        mine = [o["op"] for o in ops if o["op"]["op_id"] == a["op_id"]]
        assert mine == [a]  # verbatim, once


def test_pull_pages_skip_own_ops_and_never_repeat(hub) -> None:
    with hub.client("C02") as c2, hub.client("C03") as c3:
        _, _, start = pull_all(c3)
        sent = [op("C02", 100 + i) for i in range(25)]
        assert all(r["status"] == "stored" for r in c2.post("/ops:push", json={"ops": sent}).json()["results"])
        c3.post("/ops:push", json={"ops": [op("C03", 1)]})
        got, _, end = pull_all(c3, cursor=start, limit=7)
        assert [o["op"]["op_id"] for o in got] == [o["op_id"] for o in sent]  # hub order, own op left out
        assert [o["hub_seq"] for o in got] == sorted({o["hub_seq"] for o in got})
        again, _, _ = pull_all(c3, cursor=end)
        assert again == []
        own, _, _ = pull_all(c3, cursor=start, include_own="true")
        assert len(own) == 26


def test_central_ids_and_index(hub) -> None:
    reg = op("C01", 50, name="Sita Devi", mobile="9123456780")
    visit = op("C01", 51, kind="visit.open", patient={"local_ref": reg["payload"]["local_ref"]},
               department="MED", unit=None, visit_type="new", visit_date="2026-11-30", token_no=4)
    visit["payload"].pop("name"), visit["payload"].pop("sex"), visit["payload"].pop("age_years")
    visit["payload"].pop("mobile")
    with hub.client("C01") as c1, hub.client("C02") as c2:
        _, _, cur = pull_all(c2)
        c1.post("/ops:push", json={"ops": [reg, visit]})
        r = c1.post("/ops:push", json={"central_ids": [
            {"local_ref": reg["payload"]["local_ref"], "kind": "patient", "central_id": "KGMU000000077"}]})
        assert r.json()["central_ids_new"] == 1
        same = c1.post("/ops:push", json={"central_ids": [
            {"local_ref": reg["payload"]["local_ref"], "kind": "patient", "central_id": "KGMU000000077"}]})
        assert same.json()["central_ids_new"] == 0  # unchanged: nothing new to pull
        ops, ids, _ = pull_all(c2, cursor=cur)
        assert [o["op"]["kind"] for o in ops] == ["patient.register", "visit.open"]
        assert ids == [dict(ids[0], local_ref=reg["payload"]["local_ref"], central_id="KGMU000000077")]
        for q in ("9123456780", "sita", reg["payload"]["local_ref"], "KGMU000000077"):
            recs = c2.get("/index", params={"q": q, "kind": "patient"}).json()["records"]
            assert [x["local_ref"] for x in recs] == [reg["payload"]["local_ref"]], q
            assert recs[0]["device_id"] == "C01" and recs[0]["central_id"] == "KGMU000000077"
        visits = c2.get("/index", params={"q": reg["payload"]["local_ref"], "kind": "visit"}).json()["records"]
        assert visits[0]["patient_ref"] == reg["payload"]["local_ref"]


def test_token_refused_and_me(hub) -> None:
    import httpx

    assert httpx.get(hub.api + "/changes", verify=hub.verify(), headers={"Authorization": "Bearer nope"}).status_code == 401
    assert httpx.get(hub.api + "/changes", verify=hub.verify()).status_code == 401
    with hub.client("C01") as c1:
        c1.post("/ops:push", json={"ops": [op("C01", 900)]})
        me = c1.get("/devices/me").json()
        assert me["device_id"] == "C01" and me["max_seq"] >= 900
    assert httpx.get(hub.api + "/openapi.json", verify=hub.verify()).status_code == 401  # the API's map only for counters
    with hub.client("C01") as c1:
        doc = c1.get("/openapi.json").json()
    assert doc["info"]["title"] == "opd-fallback LAN hub" and "/hub/v1/changes" in doc["paths"]


def test_add_device_prints_token_once_and_db_is_private(tmp_path) -> None:
    db = tmp_path / "h.db"
    out = subprocess.run([sys.executable, "-m", "opd_fallback.hub", "add-device", "c09", "--db", str(db)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip()
    assert len(token) >= 40
    assert token not in db.read_bytes().decode(errors="replace")
    assert stat.S_IMODE(os.stat(db).st_mode) == 0o600
    bad = subprocess.run([sys.executable, "-m", "opd_fallback.hub", "add-device", "c-9", "--db", str(db)],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "1-16 letters or digits" in bad.stderr


def test_an_op_with_an_origin_is_kept_whole_and_its_origin_counts(hub) -> None:
    """Contract 1.2: a back-entered op's origin is stored with it and pulled by the other
    counters as pushed; the same op_id with another origin is another op."""
    a = {**op("C03", 900), "origin": {"written_by": "op-17", "device_id": "C03", "slip_no": "42"}}
    with hub.client("C03") as c3, hub.client("C02") as c2:
        assert c3.post("/ops:push", json={"ops": [a]}).json()["results"][0]["status"] == "stored"
        assert c3.post("/ops:push", json={"ops": [a]}).json()["results"][0]["status"] == "duplicate"
        other = {**a, "origin": {**a["origin"], "slip_no": "43"}}
        res = c3.post("/ops:push", json={"ops": [other]}).json()["results"][0]
        assert (res["status"], res["error"]["code"]) == ("rejected", "idempotency_mismatch")
        ops, _, _ = pull_all(c2)
    assert [o["op"] for o in ops if o["op"]["op_id"] == a["op_id"]] == [a]  # verbatim, origin included

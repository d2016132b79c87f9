"""The reading endpoints over real HTTP: health, ops, devices/me, master-data,
patients/changes, id-blocks, reconciliation (digest checked independently)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.central.util import factory, one, push, unique_mobile
from tests.helpers.central import CentralHandle

ENDPOINTS = [  # method, path, body, status with a valid token
    ("GET", "/health", None, 200),
    ("GET", "/ops/01HPZ7Q6N9X4T2YB8K3M5D7F1G", None, 404),
    ("GET", "/devices/me", None, 200),
    ("GET", "/master-data", None, 200),
    ("GET", "/patients/changes", None, 200),
    ("POST", "/id-blocks", {"kind": "uhid", "count": 1}, 200),
    ("GET", "/reconciliation?date=2026-11-26&device_id=C07", None, 200),
    ("GET", "/reconciliation/ops?date=2026-11-26&device_id=C07", None, 200),
    ("POST", "/ops:batch", {"ops": [{}]}, 200),
]


@pytest.mark.parametrize("method,path,body,status", ENDPOINTS)
def test_every_endpoint_needs_a_valid_token_and_dates_its_answers(
    central: CentralHandle, method: str, path: str, body: object, status: int
) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic eDp5"}):
        r = httpx.request(method, central.api + path, json=body, headers=headers)
        assert r.status_code == 401, (path, r.text)
        assert r.json()["error"]["code"] == "unauthorized"
        assert "date" in r.headers
    with central.client("C07") as http:
        r = http.request(method, path, json=body)
        assert r.status_code == status, (path, r.text)
        sent = parsedate_to_datetime(r.headers["date"])
        assert abs((sent - datetime.now(UTC)).total_seconds()) < 60


def test_health(central: CentralHandle) -> None:
    with central.client() as http:
        r = http.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert datetime.fromisoformat(body["server_time"]).utcoffset() == timedelta(hours=5, minutes=30)


def test_ops_lookup_is_404_for_unknown_and_for_another_devices_op(central: CentralHandle) -> None:
    f = factory("L02")
    op = f.register(mobile=unique_mobile())
    with central.client("L02") as http:
        assert one(http, op)["status"] == "applied"
        assert http.get(f"/ops/{op['op_id']}").status_code == 200
    with central.client("C07") as http:
        r = http.get(f"/ops/{op['op_id']}")
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_devices_me_starts_at_zero_and_tracks_max_seq(central: CentralHandle) -> None:
    token = central.add_device("N01")
    headers = {"Authorization": f"Bearer {token}"}
    r = httpx.get(central.api + "/devices/me", headers=headers)
    assert r.json() == {"device_id": "N01", "max_seq": 0, "ops_applied": 0, "last_recorded_at": None,
                        "reserved_used": {"uhid": 0, "receipt": 0, "sample": 0}}
    f = factory("N01")
    a, b = f.register(mobile=unique_mobile()), f.register(mobile="bad")
    with httpx.Client(base_url=central.api, headers=headers) as http:
        push(http, a, b)
        me = http.get("/devices/me").json()
    # max_seq counts every op seen (a rejected op's number was printed too)
    assert me["max_seq"] == b["seq"] and me["ops_applied"] == 1
    assert datetime.fromisoformat(me["last_recorded_at"]) == datetime.fromisoformat(a["recorded_at"])


def test_master_data_etag_and_304(central: CentralHandle) -> None:
    with central.client() as http:
        r = http.get("/master-data")
        assert r.status_code == 200
        etag = r.headers["etag"]
        data = r.json()
        assert len(data["departments"]) >= 15 and len(data["tests"]) >= 40
        assert all(d["name_hi"] and d["units"] for d in data["departments"])
        assert {"OPD-NEW": 1000}.items() <= {f["code"]: f["price_paise"] for f in data["fees"]}.items()
        assert {e["category"] for e in data["exemptions"]} >= {"bpl", "staff"}
        r = http.get("/master-data", headers={"If-None-Match": etag})
        assert r.status_code == 304 and r.content == b"" and r.headers["etag"] == etag
        assert "date" in r.headers
        r = http.get("/master-data", headers={"If-None-Match": '"stale"'})
        assert r.status_code == 200


def test_patient_changes_pages_with_a_cursor(central: CentralHandle) -> None:
    f = factory()
    with central.client() as http:
        push(http, *[f.register(mobile=unique_mobile()) for _ in range(5)])
        seen: list[str] = []
        cursor = None
        for _ in range(1000):
            params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
            page = http.get("/patients/changes", params=params).json()
            assert len(page["patients"]) <= 2
            seen += [p["uhid"] for p in page["patients"]]
            cursor = page["next_cursor"]
            if page["done"]:
                break
        everyone = http.get("/patients/changes", params={"limit": 5000}).json()
        assert seen == [p["uhid"] for p in everyone["patients"]] and len(seen) >= 5
        # from the last cursor nothing new; a new patient shows up after it
        assert http.get("/patients/changes", params={"cursor": cursor}).json()["patients"] == []
        push(http, f.register(mobile=unique_mobile()))
        assert len(http.get("/patients/changes", params={"cursor": cursor}).json()["patients"]) == 1
        for bad in ({"limit": 0}, {"limit": 5001}, {"cursor": "abc"}):
            assert http.get("/patients/changes", params=bad).status_code == 422


def test_id_blocks_are_never_issued_twice(central: CentralHandle) -> None:
    with central.client("C07") as a, central.client("L02") as b:
        ids: list[str] = []
        for http in (a, b, a):
            for kind in ("uhid", "receipt", "sample"):
                r = http.post("/id-blocks", json={"kind": kind, "count": 3})
                assert r.status_code == 200
                assert r.json()["kind"] == kind and len(r.json()["ids"]) == 3
                ids += r.json()["ids"]
        assert len(set(ids)) == len(ids)
        for bad in ({"kind": "uhid", "count": 0}, {"kind": "uhid", "count": 1001}, {"kind": "visit", "count": 1}):
            assert a.post("/id-blocks", json=bad).status_code == 422


def test_reconciliation_digest_matches_an_independent_computation(central: CentralHandle) -> None:
    ist = ZoneInfo("Asia/Kolkata")
    # 20:00 UTC on the 24th is 01:30 on the 25th in Lucknow: it counts for the 25th
    f = factory("X09")
    f.when = datetime(2025, 1, 24, 20, 0, tzinfo=UTC)
    day = f.when.astimezone(ist).date().isoformat()
    assert day == "2025-01-25"
    ops = f.day_of_opd(12)
    reg = f.register(mobile="bad")  # rejected: not in the digest
    with central.client("X09") as http:
        res = push(http, *ops, reg)
        pay = next(o for o in ops if o["kind"] == "payment.record")
        void = f.void({"local_ref": pay["payload"]["local_ref"]}, depends_on=[pay["op_id"]])
        res += push(http, void)
        applied = [r["op_id"] for r in res if r["status"] == "applied"]
        assert len(applied) == len(ops) + 1
        expected = hashlib.sha256("\n".join(sorted(applied)).encode()).hexdigest()
        r = http.get("/reconciliation", params={"date": day, "device_id": "X09"}).json()
        assert r["op_ids_sha256"] == expected
        assert r["date"] == day and r["device_id"] == "X09" and r["ops_applied"] == len(applied)
        payments = [o["payload"] for o in ops if o["kind"] == "payment.record"]
        assert r["payments"]["count"] == len(payments)
        assert r["payments"]["total_paise"] == sum(p["amount_paise"] for p in payments)
        by_mode: dict[str, int] = {}
        for p in payments:
            by_mode[p["mode"]] = by_mode.get(p["mode"], 0) + p["amount_paise"]
        assert r["payments"]["by_mode"] == by_mode
        assert r["voids"] == {"count": 1, "total_paise": pay["payload"]["amount_paise"]}
        assert sum(r["by_kind"].values()) == len(applied) and r["by_kind"]["payment.void"] == 1
        # the op_ids behind the digest, in pages
        got: list[str] = []
        cursor = None
        while True:
            params = {"date": day, "device_id": "X09", "limit": 7} | ({"cursor": cursor} if cursor else {})
            page = http.get("/reconciliation/ops", params=params).json()
            got += page["op_ids"]
            if page["done"]:
                break
            cursor = page["next_cursor"]
        assert got == sorted(applied)
        # another day, or another device: empty, digest of nothing
        empty = http.get("/reconciliation", params={"date": "2025-01-24", "device_id": "X09"}).json()
        assert empty["ops_applied"] == 0 and empty["op_ids_sha256"] == hashlib.sha256(b"").hexdigest()
        for bad in ({"date": "2025-02-30", "device_id": "X09"}, {"date": "25-01-2025", "device_id": "X09"},
                    {"device_id": "X09"}):
            assert http.get("/reconciliation", params=bad).status_code == 422

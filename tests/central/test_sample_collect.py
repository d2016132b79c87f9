"""``lab.sample_collect`` (contract 1.2) at the reference server, on SQLite and
PostgreSQL: a collection desk's events for the tubes of an order another
device placed, ``GET /samples/{sample_id}`` and ``samples`` in the reconciliation."""

from __future__ import annotations

from typing import Any

import httpx

from opd_fallback.domain.clock import today_ist
from tests.central.util import factory, patient_ref, push, registered, unique_mobile
from tests.helpers.central import CentralHandle


def _order_with_two_tubes(http: httpx.Client, tag: str) -> tuple[dict[str, Any], list[str]]:
    """C07 orders CBC (EDTA) and LFT (Serum); returns the lab.order op (not pushed) and the tube ids."""
    f = factory()
    reg, _ = registered(http, f, mobile=unique_mobile())
    vis = f.visit(patient_ref(reg))
    assert push(http, vis)[0]["status"] == "applied"
    lab = f.lab(patient_ref(reg), {"local_ref": vis["payload"]["local_ref"]}, tests=("CBC", "LFT"))
    tubes = [f"C07-S{tag}-1", f"C07-S{tag}-2"]
    lab["payload"]["sample_id"] = tubes[0]
    lab["payload"]["samples"] = [
        {"sample_id": tubes[0], "sample_type": "EDTA", "tests": ["CBC"]},
        {"sample_id": tubes[1], "sample_type": "Serum", "tests": ["LFT"]},
    ]
    return lab, tubes


def test_another_devices_tube_waits_for_its_order_then_every_event_counts(central: CentralHandle) -> None:
    desk = factory("L02")
    day = today_ist().isoformat()
    with central.client("C07") as c07, central.client("L02") as l02:
        lab, (edta, serum) = _order_with_two_tubes(c07, "810001")
        drawn = desk.collect(edta, collected_at=f"{day}T09:05:00+05:30", depends_on=[lab["op_id"]])
        # the order's counter has not synced it yet: the desk's op waits for it, no person needed
        early = push(l02, drawn)[0]
        assert (early["status"], early["error"]["code"]) == ("deferred", "dependency_missing")
        assert l02.get(f"/samples/{edta}").status_code == 404

        order = push(c07, lab)[0]
        assert order["status"] == "applied"
        order_id = order["result"]["order_id"]
        assert l02.get(f"/samples/{edta}").json() == {
            "sample_id": edta, "order_id": order_id, "sample_type": "EDTA", "tests": ["CBC"],
            "status": "ordered", "collected_at": None}

        refused = desk.collect(serum, status="rejected", reason="haemolysed",
                               collected_at=f"{day}T09:06:00+05:30", depends_on=[lab["op_id"]])
        redrawn = desk.collect(serum, collected_at=f"{day}T09:20:00+05:30")
        # an older event arriving last does not undo the newer one (the tube's state is the latest collected_at)
        late_old = desk.collect(edta, status="rejected", reason="clotted", collected_at=f"{day}T08:59:00+05:30")
        res = push(l02, drawn, refused, redrawn, late_old)
        assert [r["status"] for r in res] == ["applied"] * 4
        assert [r["result"] for r in res] == [
            {"sample_id": edta, "order_id": order_id, "status": "collected"},
            {"sample_id": serum, "order_id": order_id, "status": "rejected"},
            {"sample_id": serum, "order_id": order_id, "status": "collected"},
            {"sample_id": edta, "order_id": order_id, "status": "rejected"},
        ]
        assert push(l02, drawn)[0] == {**res[0], "status": "duplicate"}
        tampered = {**drawn, "payload": {**drawn["payload"], "status": "rejected", "reason": "other"}}
        assert push(l02, tampered)[0]["error"]["code"] == "idempotency_mismatch"

        assert c07.get(f"/samples/{edta}").json() == {
            "sample_id": edta, "order_id": order_id, "sample_type": "EDTA", "tests": ["CBC"],
            "status": "collected", "collected_at": f"{day}T09:05:00+05:30"}
        assert c07.get(f"/samples/{serum}").json() == {
            "sample_id": serum, "order_id": order_id, "sample_type": "Serum", "tests": ["LFT"],
            "status": "collected", "collected_at": f"{day}T09:20:00+05:30"}

        recon = l02.get("/reconciliation", params={"date": day, "device_id": "L02"}).json()
        assert recon["samples"] == {"collected": 2, "rejected": 2}
        assert recon["by_kind"]["lab.sample_collect"] == 4
        other = c07.get("/reconciliation", params={"date": day, "device_id": "C07"}).json()
        assert other["samples"] == {"collected": 0, "rejected": 0}


def test_a_tube_no_order_has_and_a_refusal_without_reason_are_rejected(central: CentralHandle) -> None:
    desk = factory("L02")
    with central.client("L02") as l02:
        unknown, no_reason, bad_reason, no_time = push(
            l02,
            desk.collect("C07-S999999-9"),
            desk.collect("C07-S999999-8", status="rejected"),
            desk.collect("C07-S999999-7", status="rejected", reason="dropped"),
            {**desk.collect("C07-S999999-6"), "payload": {"sample_id": "C07-S999999-6", "status": "collected"}},
        )
        assert unknown["status"] == "rejected"
        assert unknown["error"]["code"] == "unknown_sample"
        assert unknown["error"]["fields"] == [{"field": "sample_id", "code": "not_found",
                                               "message": "no applied lab order has a tube C07-S999999-9"}]
        for r, field in ((no_reason, "reason"), (bad_reason, "reason"), (no_time, "collected_at")):
            assert (r["status"], r["error"]["code"]) == ("rejected", "validation_failed"), r
            assert [f["field"] for f in r["error"]["fields"]] == [field], r
        assert l02.get("/samples/C07-S999999-9").status_code == 404

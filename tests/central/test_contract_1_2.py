"""Contract 1.2 details of the reference server the conformance kit cannot see
from outside: outcomes remembered before 1.2 still answer their resends."""

from __future__ import annotations

import copy
import hashlib

import rfc8785

from opd_fallback.domain.contract import drop_nulls
from tests.central.util import factory, one, patient_ref, registered, unique_mobile
from tests.helpers.central import CentralHandle


def test_an_update_remembered_by_a_1_1_server_is_still_a_duplicate(central: CentralHandle) -> None:
    """A 1.1 server hashed a patient.update with its nulls dropped everywhere; after the
    upgrade the same resend is a duplicate, and a 1.2 outcome tells a cleared field
    from a field left out."""
    f = factory()
    with central.client("C07") as http:
        reg, _ = registered(http, f, mobile=unique_mobile())
        upd = f.update(patient_ref(reg), {"mobile": None, "district": "Agra"}, base_version=1)
        first = one(http, upd)
        assert first["status"] == "applied"
        assert central.query("SELECT payload_hash FROM op_outcome WHERE op_id=?", (upd["op_id"],))[0][0] \
            .startswith("jcs2:")
        without = copy.deepcopy(upd)
        del without["payload"]["changes"]["mobile"]
        assert one(http, without)["error"]["code"] == "idempotency_mismatch"
        old = "jcs:" + hashlib.sha256(rfc8785.dumps(drop_nulls(upd["payload"]))).hexdigest()
        central.execute("UPDATE op_outcome SET payload_hash=? WHERE op_id=?", (old, upd["op_id"]))
        again = one(http, upd)
        assert again["status"] == "duplicate" and again["result"] == first["result"]
        with_origin = {**upd, "origin": {"slip_no": "1"}}
        assert one(http, with_origin)["error"]["code"] == "idempotency_mismatch"


def test_a_nul_byte_in_a_reading_is_a_4xx_on_every_database(central: CentralHandle) -> None:
    """PostgreSQL text cannot hold a NUL byte: the schemathesis soak found a 500 for
    GET /id-blocks/used?cursor=...%00 there. A cursor with one is refused naming the
    field; a ref or a tube id with one is simply not found."""
    with central.client("C07") as http:
        r = http.get("/id-blocks/used", params={"kind": "receipt", "cursor": "C07-R\x00"})
        assert r.status_code == 422 and "cursor" in r.json()["error"]["message"], r.text
        assert http.get("/refs/C07-%00").status_code == 404
        assert http.get("/samples/C07-S%00").status_code == 404

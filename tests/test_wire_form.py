"""The exact wire form of every op the counter builds (contract 1.1).

A strict central server rejects a reference that is not an object with exactly
one key, so every op the services build is checked here: register, visit, lab,
payment, void and update, through the same calls the counter and the CLI use.
Also: empty optional fields are left out (except the contract's "or null"
fields), an upgraded counter's queued 1.0 ops are rewritten to the one-key
form, and the exemption rule the counter uses for waivers.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import ValidationError
from sqlalchemy import text
from sqlmodel import select

from opd_fallback.application.services import CounterService, PaymentInput
from opd_fallback.domain import payloads as P
from opd_fallback.domain.contract import Exemption, MasterData, canonical_payload
from opd_fallback.domain.masterdata import Catalog, is_exempt
from opd_fallback.store import Store, open_store
from opd_fallback.store.migrations import one_key_refs
from opd_fallback.store.operators import add_operator
from opd_fallback.store.patient_index import upsert_many
from opd_fallback.store.tables import Op

REF_FIELDS = ("patient", "visit", "lab_order", "payment")


def _ops(store: Store) -> list[Op]:
    with store.read() as s:
        return list(s.exec(select(Op).order_by(Op.seq)))


def _check_refs(kind: str, payload: dict[str, Any]) -> int:
    """Assert each reference has exactly one key with a non-null string; count them."""
    n = 0
    for name in REF_FIELDS:
        if name not in payload:
            continue
        ref = payload[name]
        assert isinstance(ref, dict) and len(ref) == 1, f"{kind}.{name} = {ref!r}"
        (key, value), = ref.items()
        assert key in ("central_id", "local_ref") and isinstance(value, str) and value, f"{kind}.{name} = {ref!r}"
        n += 1
    return n


def test_every_op_the_counter_builds_has_one_key_references(
    store: Store, svc: CounterService, with_master_data: Callable[..., None],
) -> None:
    with_master_data(store)
    add_operator(store, "sup1", "Meena", "999999", role="supervisor")
    # a patient known only from central's index: refs to it are central ids
    with store.write() as s:
        upsert_many(s, [{"uhid": "KGMU000000777", "name": "Sita Devi", "sex": "F", "version": 2,
                         "local_refs": ["C03-261130-000042"]}])
    reg = svc.register_new("op1", {"name": "Ram Kumar", "sex": "M", "age_years": 40},
                           department="MED", payment=PaymentInput(mode="cash"))
    assert reg.payment is not None
    rev = svc.revisit("op1", "KGMU000000777", department="MED", payment=PaymentInput(mode="upi", mode_ref="UTR1"))
    lab = svc.lab_request("op1", reg.patient.local_ref, reg.visit.local_ref, ["CBC"],
                          payment=PaymentInput(mode="cash"))
    svc.lab_request("op1", "KGMU000000777", rev.visit.local_ref, ["LFT"], payment=PaymentInput(mode="cash"))
    svc.void("op1", reg.payment.extra["receipt_no"], "wrong amount", approved_by="sup1")
    svc.update_patient("op1", reg.patient.local_ref, {"mobile": "9876543210", "district": None})
    svc.update_patient("op1", "C03-261130-000042", {"district": "Lucknow"})
    with svc.transaction("op1") as tx:  # a payment for a lab order alone, and one for an unsynced visit
        tx.record_payment(reg.patient.local_ref, PaymentInput(mode="cash", amount_paise=500,
                                                              items=[{"code": "CBC", "amount_paise": 500}]),
                          lab_order=lab.order.local_ref)
    from opd_fallback.application.collection import CollectionDesk

    CollectionDesk(store, "C07", svc=svc).refuse("op1", lab.order.extra["sample_id"], "clotted")
    ops = _ops(store)
    kinds = {op.kind for op in ops}
    assert kinds == set(P.OP_KINDS)
    refs = 0
    for op in ops:
        payload = orjson.loads(op.payload)
        refs += _check_refs(op.kind, payload)
        nulls = {k for k, v in payload.items() if v is None}
        assert nulls <= {"uhid", "mobile"}, f"{op.kind} sends null for {nulls}"
        if op.kind != "patient.register":
            assert not nulls
        P.validate_payload(op.kind, payload)  # what the server checks
    assert refs >= 15
    by_kind = {op.kind: orjson.loads(op.payload) for op in ops}
    # the index patient (and the other counter's number mapped to it) travel as the central id
    assert {"central_id": "KGMU000000777"} in [orjson.loads(o.payload)["patient"] for o in ops
                                                if o.kind == "patient.update"]
    assert by_kind["payment.void"]["payment"] == {"local_ref": reg.payment.local_ref}
    # patient.update keeps an explicit null in changes: it clears the field
    first_update = next(orjson.loads(o.payload) for o in ops if o.kind == "patient.update")
    assert first_update["changes"] == {"mobile": "9876543210", "district": None}


@pytest.mark.parametrize("ref", [
    {"central_id": None, "local_ref": "C07-261130-000001"},
    {"central_id": "KGMU000000001", "local_ref": None},
    {"central_id": "KGMU000000001", "local_ref": "C07-261130-000001"},
    {"local_ref": None},
    {},
])
def test_a_reference_that_is_not_exactly_one_key_is_refused_naming_the_field(ref: dict[str, Any]) -> None:
    payload = {"payment": ref, "reason": "typo"}
    with pytest.raises(ValidationError) as exc:
        P.validate_payload("payment.void", payload)
    fields = {".".join(map(str, e["loc"])) for e in exc.value.errors()}
    assert fields and all(f.startswith("payment") for f in fields), fields


def test_a_ref_model_dumps_one_key_wherever_it_is_nested() -> None:
    model = P.validate_payload("lab.order", {
        "local_ref": "C07-261130-000009", "patient": {"central_id": "KGMU000000001"},
        "visit": {"local_ref": "C07-261130-000008"}, "tests": [{"code": "cbc"}],
    })
    body = P.wire(model)
    assert body["patient"] == {"central_id": "KGMU000000001"}
    assert body["visit"] == {"local_ref": "C07-261130-000008"}
    assert "sample_id" not in body and "ordered_by" not in body and "samples" not in body
    assert model.model_dump()["patient"] == {"central_id": "KGMU000000001"}


def test_lab_order_accepts_per_tube_samples_when_given() -> None:
    model = P.validate_payload("lab.order", {
        "local_ref": "C07-261130-000009", "patient": {"central_id": "KGMU000000001"},
        "visit": {"central_id": "V0000000001"}, "tests": [{"code": "CBC"}, {"code": "LFT"}],
        "sample_id": "KS000000001",
        "samples": [{"sample_id": "KS000000001", "sample_type": "EDTA", "tests": ["CBC"]},
                    {"sample_id": "KS000000002", "sample_type": "Serum", "tests": ["LFT"]}],
    })
    assert len(P.wire(model)["samples"]) == 2


def test_canonical_payload_treats_absent_as_null_and_ignores_key_order() -> None:
    a = {"b": 1, "a": {"y": None, "x": "é"}, "list": [None, 2]}
    b = {"list": [None, 2], "a": {"x": "é"}, "b": 1, "c": None}
    assert canonical_payload(a) == canonical_payload(b) == '{"a":{"x":"é"},"b":1,"list":[null,2]}'.encode()
    assert canonical_payload({"b": 2}) != canonical_payload({"b": 1})
    with pytest.raises(ValueError):
        canonical_payload({"base_version": 2**60})


def test_upgrade_rewrites_queued_1_0_ops_to_one_key_references(tmp_path: Path) -> None:
    path = tmp_path / "counter.db"
    st = open_store(path)
    svc = CounterService(st, "C07")
    reg = svc.register_new("op1", {"name": "Ram Kumar", "sex": "M", "age_years": 40},
                           department="MED", payment=PaymentInput(mode="cash", amount_paise=1000))
    old_form = {"central_id": None, "local_ref": reg.patient.local_ref}
    with st.write() as s:  # what a 1.0 counter queued, one op already synced in that form
        for op in s.exec(select(Op).where(Op.kind != "patient.register")):
            body = orjson.loads(op.payload)
            body["patient"] = old_form
            op.payload = orjson.dumps(body).decode()
            op.state = "synced" if op.kind == "payment.record" else op.state
            s.add(op)
        s.execute(text("PRAGMA user_version=3"))
    st.close()
    st = open_store(path)
    by_kind = {op.kind: (op.state, orjson.loads(op.payload)) for op in _ops(st)}
    st.close()
    assert by_kind["visit.open"][1]["patient"] == {"local_ref": reg.patient.local_ref}
    assert by_kind["payment.record"][1]["patient"] == old_form  # synced: kept as it was sent
    assert one_key_refs({"patient": old_form, "changes": {"mobile": None}}) == {
        "patient": {"local_ref": reg.patient.local_ref}, "changes": {"mobile": None}}


def test_is_exempt_uses_master_data_exemptions_or_the_defaults() -> None:
    listed = [Exemption(category="bpl", fee_codes=["OPD-NEW", "opd-revisit"]),
              Exemption(category="staff", fee_codes=["OPD-NEW", "INJ"])]
    assert is_exempt("bpl", "OPD-NEW", listed)
    assert is_exempt("BPL", "OPD-REVISIT", listed)  # codes and categories as the counter writes them
    assert not is_exempt("bpl", "INJ", listed)
    assert is_exempt("staff", "INJ", listed)
    assert not is_exempt("general", "OPD-NEW", listed)
    assert not is_exempt("bpl", "OPD-NEW", [])  # central says nobody is exempt
    # no exemptions from central (a 1.0 server): bpl and staff pay no OPD fee, and only that
    assert is_exempt("bpl", "OPD-NEW") and is_exempt("staff", "OPD-REVISIT")
    assert not is_exempt("bpl", "CBC") and not is_exempt("ayushman", "OPD-NEW") and not is_exempt(None, "OPD-NEW")
    md = MasterData.model_validate({"version": "1", "fees": [{"code": "OPD-NEW", "name": "n", "price_paise": 1000}],
                                    "exemptions": [{"category": "ayushman", "fee_codes": ["OPD-NEW"]}]})
    cat = Catalog(md)
    assert cat.is_exempt("ayushman", "OPD-NEW") and not cat.is_exempt("bpl", "OPD-NEW")
    quote = cat.opd_fee("new", "ayushman")
    assert quote is not None and quote.exempt and quote.due_paise == 0


def test_a_supervisor_correcting_a_reference_key_replaces_the_reference(store: Store, svc: CounterService) -> None:
    from opd_fallback.application.review import ReviewService
    from tests.test_review import flag, get

    add_operator(store, "sup1", "Sup One", "222222", role="supervisor")
    reg = svc.register_new("op1", {"name": "Ram Kumar", "sex": "M", "age_years": 40},
                           department="MED", payment=PaymentInput(mode="cash", amount_paise=1000))
    flag(store, reg.visit.op_id, "rejected", "rejected", {"code": "unknown_reference", "message": "patient"})
    rs = ReviewService(store)
    d = rs.correct(rs.authenticate("sup1", "222222"), reg.visit.op_id, {"patient.central_id": "KGMU000000009"})
    assert d.new_op_id is not None
    assert orjson.loads(get(store, d.new_op_id).payload)["patient"] == {"central_id": "KGMU000000009"}


def test_canonical_form_keeps_a_null_inside_changes_and_adds_the_origin() -> None:
    """1.2: a null in patient.update's changes clears a field, so it is not an absent
    key; an origin counts with the payload, and an op without one compares as in 1.1."""
    from opd_fallback.domain.contract import canonical_op

    cleared = {"patient": {"central_id": "KGMU1"}, "base_version": 1, "changes": {"mobile": None}}
    kept = {"patient": {"central_id": "KGMU1"}, "base_version": 1, "changes": {}}
    assert canonical_payload(cleared, "patient.update") != canonical_payload(kept, "patient.update")
    assert canonical_payload(cleared) == canonical_payload(kept)  # any other kind: nulls dropped everywhere
    pay = {"local_ref": "C07-1", "amount_paise": 0}
    assert canonical_op(pay) == canonical_payload(pay) == canonical_op(pay, {"slip_no": None})
    assert canonical_op(pay, {"slip_no": "42"}) != canonical_op(pay, {"slip_no": "43"})

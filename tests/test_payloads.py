"""Op payload models: good and bad values per rule; any odd payload fails only
with a clean ValidationError; valid payloads round-trip through their wire form."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from opd_fallback.domain import payloads as P
from opd_fallback.domain.errors import DomainError, explain, validate

REG = {"local_ref": "C07-261126-000001", "name": "Ram Kumar", "sex": "M", "age_years": 40}
PAY = {
    "local_ref": "C07-261126-000003", "receipt_no": "C07-R000003", "patient": {"local_ref": "C07-261126-000001"},
    "visit": {"local_ref": "C07-261126-000002"}, "amount_paise": 1000, "mode": "cash",
    "items": [{"code": "OPD-NEW", "qty": 1, "amount_paise": 1000}],
}
VISIT = {"local_ref": "C07-261126-000002", "patient": {"central_id": "KGMU1"}, "department": "med",
         "unit": "MED-U1", "visit_type": "new", "visit_date": "2026-11-26", "token_no": 4}
LAB = {"local_ref": "C07-261126-000004", "patient": {"central_id": "KGMU1"}, "visit": {"local_ref": "C07-261126-2"},
       "tests": [{"code": "cbc"}, {"code": "LFT"}], "sample_id": "C07-S000004"}


def fields_of(exc: ValidationError) -> set[str]:
    return {p.field for p in explain(exc)}


def test_register_good_and_normalised() -> None:
    m = P.PatientRegister.model_validate({**REG, "name": " ram  kumar ", "name_local": "राम कुमार",
                                          "mobile": "+91 98765-43210", "abha_number": "12-3456-7890-1234",
                                          "pin": "226 003", "guardian_relation": "S/O", "guardian_name": "Shyam"})
    assert (m.name, m.mobile, m.abha_number, m.pin, m.category) == (
        "ram kumar", "9876543210", "12345678901234", "226003", "general")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "राम"}, "name"),
        ({"sex": "X"}, "sex"),
        ({"age_years": 131}, "age_years"),
        ({"age_years": "forty"}, "age_years"),
        ({"age_years": 40.5}, "age_years"),
        ({"age_months": 12}, "age_months"),
        ({"age_days": 40}, "age_days"),
        ({"birth_date": "2999-01-01"}, "birth_date"),
        ({"mobile": "12345"}, "mobile"),
        ({"abha_number": "123"}, "abha_number"),
        ({"pin": "012345"}, "pin"),
        ({"category": "vip"}, "category"),
        ({"guardian_relation": "F/O", "guardian_name": "X"}, "guardian_relation"),
        ({"colour": "red"}, "colour"),
        ({"local_ref": "nodash"}, "local_ref"),
    ],
)
def test_register_bad_values_name_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        P.PatientRegister.model_validate({**REG, **change})
    assert field in fields_of(exc.value)


def test_register_whole_record_rules() -> None:
    no_age = {k: v for k, v in REG.items() if k != "age_years"}
    with pytest.raises(ValidationError, match="age"):
        P.PatientRegister.model_validate(no_age)
    P.PatientRegister.model_validate({**no_age, "birth_date": "2000-01-01"})
    with pytest.raises(ValidationError, match="guardian"):
        P.PatientRegister.model_validate({**REG, "guardian_relation": "S/O"})


def test_payment_rules() -> None:
    m = P.PaymentRecord.model_validate(PAY)
    assert m.amount_paise == 1000
    with pytest.raises(ValidationError, match=re.escape("add up to ₹10.00 but the amount is ₹12.00")):
        P.PaymentRecord.model_validate({**PAY, "amount_paise": 1200})
    with pytest.raises(ValidationError, match="UTR"):
        P.PaymentRecord.model_validate({**PAY, "mode": "upi"})
    with pytest.raises(ValidationError, match="card slip"):
        P.PaymentRecord.model_validate({**PAY, "mode": "card", "mode_ref": "  "})
    P.PaymentRecord.model_validate({**PAY, "mode": "upi", "mode_ref": "UTR1"})
    for bad in [{"amount_paise": 10.0}, {"amount_paise": "1000"}, {"amount_paise": -1}, {"mode": "cheque"},
                {"items": []}, {"patient": {}}, {"patient": {"local_ref": "A-1", "central_id": "X"}}]:
        with pytest.raises(ValidationError):
            P.PaymentRecord.model_validate({**PAY, **bad})


def test_visit_lab_void_update_rules() -> None:
    v = P.VisitOpen.model_validate(VISIT)
    assert v.department == "MED" and v.visit_date == date(2026, 11, 26)
    for bad in [{"department": ""}, {"visit_type": "follow-up"}, {"token_no": -1}, {"visit_date": "26/11/2026"}]:
        with pytest.raises(ValidationError):
            P.VisitOpen.model_validate({**VISIT, **bad})
    lab = P.LabOrder.model_validate(LAB)
    assert [t.code for t in lab.tests] == ["CBC", "LFT"]
    with pytest.raises(ValidationError, match="ordered twice"):
        P.LabOrder.model_validate({**LAB, "tests": [{"code": "CBC"}, {"code": "cbc"}]})
    with pytest.raises(ValidationError):
        P.LabOrder.model_validate({**LAB, "tests": []})
    with pytest.raises(ValidationError):
        P.PaymentVoid.model_validate({"payment": {"local_ref": "C07-1"}, "reason": "   "})
    up = P.PatientUpdate.model_validate({"patient": {"central_id": "KGMU1"}, "base_version": 2,
                                         "changes": {"mobile": "09876543210"}})
    assert up.changes == {"mobile": "9876543210"}
    with pytest.raises(ValidationError, match="cannot change uhid"):
        P.PatientUpdate.model_validate({"patient": {"central_id": "K"}, "base_version": 0, "changes": {"uhid": "x"}})
    with pytest.raises(ValidationError):
        P.PatientUpdate.model_validate({"patient": {"central_id": "K"}, "base_version": 0, "changes": {}})


# --- properties ---------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def odd_payload(model: type[P.Model], base: dict[str, Any]) -> st.SearchStrategy[Any]:
    keys = list(model.model_fields)
    mutated = st.fixed_dictionaries({}, optional={k: JSON | st.just(base.get(k)) for k in keys}).map(
        lambda d: {**base, **d}
    )
    return mutated | JSON


@pytest.mark.parametrize(
    ("kind", "base"),
    [("patient.register", REG), ("payment.record", PAY), ("visit.open", VISIT), ("lab.order", LAB),
     ("payment.void", {"payment": {"local_ref": "C07-1"}, "reason": "typo"}),
     ("patient.update", {"patient": {"central_id": "K"}, "base_version": 0, "changes": {"name": "Ram"}})],
)
@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_odd_payloads_raise_only_validation_errors(kind: str, base: dict[str, Any], data: st.DataObject) -> None:
    payload = data.draw(odd_payload(P.PAYLOAD_MODELS[kind], base))
    try:
        m = P.validate_payload(kind, payload)
    except ValidationError as exc:
        problems = explain(exc)
        assert problems and all(p.message for p in problems)
        return
    again = P.validate_payload(kind, P.wire(m))
    assert again == m


names = st.from_regex(r"[A-Za-z][A-Za-z .'\-]{0,30}", fullmatch=True).filter(lambda s: s.strip())
mobiles = st.from_regex(r"[6-9][0-9]{9}", fullmatch=True)
valid_register = st.fixed_dictionaries(
    {"local_ref": st.from_regex(r"C[0-9]{2}-[0-9]{6}-[0-9]{6}", fullmatch=True), "name": names,
     "sex": st.sampled_from(["M", "F", "O"]), "age_years": st.integers(0, 130)},
    optional={"name_local": st.text(alphabet="अआइईउऊकखगघचछजझटठडढणतथदधनपफबभमयरलवशसह ", max_size=30),
              "mobile": mobiles, "abha_number": st.from_regex(r"[0-9]{14}", fullmatch=True),
              "pin": st.from_regex(r"[1-9][0-9]{5}", fullmatch=True),
              "category": st.sampled_from(["general", "bpl", "ayushman", "staff", "other"]),
              "age_months": st.integers(0, 11), "age_days": st.integers(0, 31)},
)


@given(valid_register)
def test_valid_registrations_round_trip(raw: dict[str, Any]) -> None:
    m = P.PatientRegister.model_validate(raw)
    wire = P.wire(m)
    assert P.PatientRegister.model_validate(wire) == m
    assert P.wire(P.PatientRegister.model_validate(wire)) == wire
    if "mobile" in raw:
        assert wire["mobile"] == raw["mobile"]


@given(st.lists(st.integers(0, 10**9), min_size=1, max_size=5), st.sampled_from(["cash", "upi", "card", "waived"]))
def test_valid_payments_round_trip(amounts: list[int], mode: str) -> None:
    raw = {**PAY, "amount_paise": sum(amounts), "mode": mode, "mode_ref": "R1",
           "items": [{"code": f"T{i}", "qty": 1, "amount_paise": a} for i, a in enumerate(amounts)]}
    m = P.PaymentRecord.model_validate(raw)
    assert P.PaymentRecord.model_validate(P.wire(m)) == m
    assert isinstance(P.wire(m)["amount_paise"], int)


def test_validate_raises_domain_error_naming_fields() -> None:
    with pytest.raises(DomainError) as exc:
        validate(P.PatientRegister, {**REG, "mobile": "123", "sex": "Q"})
    assert {p.field for p in exc.value.problems} == {"mobile", "sex"}


def test_contract_1_2_a_null_field_is_an_absent_one_except_in_a_reference() -> None:
    """Every field without a value may be sent as null: the model sees no difference;
    a reference's null key stays invalid, and a null inside changes still clears."""
    from pydantic import ValidationError

    from opd_fallback.domain import payloads as P

    base = {"local_ref": "C07-261201-000001", "name": "Ram Kumar", "sex": "M", "age_years": 40}
    nulls = dict.fromkeys(("uhid", "name_local", "age_months", "age_days", "birth_date", "guardian_relation",
                           "guardian_name", "mobile", "abha_number", "address_line", "district", "state", "pin",
                           "category"))
    assert P.wire(P.PatientRegister.model_validate({**base, **nulls})) == P.wire(P.PatientRegister.model_validate(base))
    visit = {"local_ref": "C07-261201-000002", "patient": {"local_ref": base["local_ref"]}, "department": "MED",
             "visit_type": "new", "visit_date": "2026-12-01", "token_no": 1}
    assert P.VisitOpen.model_validate({**visit, "unit": None}) == P.VisitOpen.model_validate(visit)
    lab = {"local_ref": "C07-261201-000003", "patient": {"central_id": "KGMU1"}, "visit": {"central_id": "V1"},
           "tests": [{"code": "CBC"}]}
    assert P.LabOrder.model_validate({**lab, "priority": None, "samples": None, "sample_id": None}).priority == "routine"
    with pytest.raises(ValidationError):
        P.VisitOpen.model_validate({**visit, "patient": {"local_ref": base["local_ref"], "central_id": None}})
    upd = P.PatientUpdate.model_validate({"patient": {"central_id": "KGMU1"}, "base_version": 1,
                                          "changes": {"mobile": None, "district": "Agra"}})
    assert upd.changes == {"mobile": None, "district": "Agra"}
    with pytest.raises(ValidationError, match="base_version"):
        P.PatientUpdate.model_validate({"patient": {"central_id": "KGMU1"}, "base_version": 2**53,
                                        "changes": {"district": "Agra"}})

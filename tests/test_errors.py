"""Validation failures become problems that name the field in clerk's words."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from opd_fallback.domain import payloads as P
from opd_fallback.domain.errors import DomainError, FieldProblem, explain, validate

REG = {"local_ref": "C07-261126-000001", "name": "Ram Kumar", "sex": "M", "age_years": 40}


def _problems(model: type[P.Model], data: Any) -> list[FieldProblem]:
    with pytest.raises(ValidationError) as exc:
        model.model_validate(data)
    return explain(exc.value)


@pytest.mark.parametrize(
    ("change", "field", "code", "words"),
    [
        ({"name": 42}, "name", "not_text", "must be text"),
        ({"name": None}, "name", "required", "is required"),  # 1.2: null is the same as absent
        ({"sex": "X"}, "sex", "not_allowed", "must be one of"),
        ({"age_years": "forty"}, "age_years", "not_whole_number", "whole number"),
        ({"mobile": "12345"}, "mobile", "invalid", "10 digits"),
        ({"birth_date": "26/11/2000"}, "birth_date", "bad_date", "YYYY-MM-DD"),
        ({"colour": "red"}, "colour", "unknown_field", "not a known field"),
        ({"local_ref": "x"}, "local_ref", "too_short", ""),
    ],
)
def test_explain_names_field_code_and_reason(change: dict[str, Any], field: str, code: str, words: str) -> None:
    problems = _problems(P.PatientRegister, {**REG, **change})
    hit = [p for p in problems if p.field == field]
    assert hit, problems
    assert hit[0].code == code and words in hit[0].message


def test_missing_field_is_required() -> None:
    problems = _problems(P.PatientRegister, {k: v for k, v in REG.items() if k != "sex"})
    assert FieldProblem("sex", "required", "is required") in problems


def test_nested_fields_use_dotted_paths_and_labels() -> None:
    pay = {"local_ref": "C07-1-1", "receipt_no": "R1", "patient": {"central_id": "K"}, "amount_paise": 5,
           "mode": "cash", "items": [{"code": "A", "amount_paise": "x"}]}
    problems = _problems(P.PaymentRecord, pay)
    assert problems[0].field == "items.0.amount_paise"
    assert problems[0].label == "Fee items"
    assert str(problems[0]) == "Fee items: must be a whole number"


def test_field_problem_label_and_wire() -> None:
    p = FieldProblem("mobile", "invalid", "must have 10 digits (got 5)")
    assert str(p) == "Mobile: must have 10 digits (got 5)"
    assert p.wire() == {"field": "mobile", "code": "invalid", "message": "must have 10 digits (got 5)"}
    assert FieldProblem("", "x", "whole").label == "Record"
    assert FieldProblem("some_field", "x", "m").label == "Some field"


def test_domain_error_forms() -> None:
    e = DomainError.field("department", "'XYZ' is not a department here", code="unknown_department")
    assert e.code == "unknown_department" and e.problems[0].field == "department"
    assert "Department: 'XYZ' is not a department here" in str(e)
    plain = DomainError("the counter is locked")
    assert plain.problems == [FieldProblem("", "invalid", "the counter is locked")]


def test_validate_wraps_in_domain_error() -> None:
    assert isinstance(validate(P.PatientRegister, REG), P.PatientRegister)
    with pytest.raises(DomainError) as exc:
        validate(P.PatientRegister, {**REG, "pin": "0"})
    assert exc.value.code == "validation_failed"
    assert exc.value.problems[0].field == "pin" and "6 digits" in exc.value.problems[0].message

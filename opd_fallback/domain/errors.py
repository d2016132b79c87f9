"""Turning validation failures into words a counter clerk understands.

Every error names the field and says what is wrong. The same ``FieldProblem``
list is shown at the counter, printed by the CLI and returned by the server
as the contract's ``error.fields``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from opd_fallback.domain.exits import OpdError

if TYPE_CHECKING:  # pydantic loads on the first validation: the counter's login screen paints without it
    from pydantic import BaseModel, ValidationError
    from pydantic_core import ErrorDetails

M = TypeVar("M", bound="BaseModel")

FIELD_LABELS: dict[str, str] = {
    "name": "Name",
    "name_local": "Name in local script",
    "sex": "Sex",
    "age_years": "Age (years)",
    "age_months": "Age (months)",
    "age_days": "Age (days)",
    "birth_date": "Birth date",
    "guardian_relation": "Guardian relation",
    "guardian_name": "Guardian name",
    "mobile": "Mobile",
    "abha_number": "ABHA number",
    "address_line": "Address",
    "district": "District",
    "state": "State",
    "pin": "PIN code",
    "operator_pin": "PIN",
    "category": "Category",
    "department": "Department",
    "unit": "Unit",
    "visit_type": "Visit type",
    "visit_date": "Visit date",
    "token_no": "Token number",
    "tests": "Tests",
    "amount_paise": "Amount",
    "mode": "Payment mode",
    "mode_ref": "Payment reference",
    "items": "Fee items",
    "reason": "Reason",
    "receipt_no": "Receipt number",
    "local_ref": "Offline number",
    "patient": "Patient",
    "visit": "Visit",
}


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One thing wrong with one field. ``field`` is a dotted path ('' for the
    record as a whole); ``code`` is stable for translation; ``message`` is English."""

    field: str
    code: str
    message: str

    @property
    def label(self) -> str:
        head = self.field.split(".")[0]
        return FIELD_LABELS.get(head, head.replace("_", " ").capitalize()) if head else "Record"

    def __str__(self) -> str:
        return f"{self.label}: {self.message}"

    def wire(self) -> dict[str, str]:
        return {"field": self.field, "code": self.code, "message": self.message}


class DomainError(OpdError):
    """A business rule refused the request (unknown department, voiding a
    payment twice...). Carries field problems so every layer can show them."""

    def __init__(self, problems: list[FieldProblem] | str, *, code: str = "invalid") -> None:
        if isinstance(problems, str):
            problems = [FieldProblem("", code, problems)]
        self.problems = problems
        self.code = code
        super().__init__("; ".join(str(p) for p in problems))

    @classmethod
    def field(cls, field: str, message: str, *, code: str = "invalid") -> DomainError:
        return cls([FieldProblem(field, code, message)], code=code)


def _message(err: ErrorDetails) -> tuple[str, str]:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == "missing":
        return "required", "is required"
    if kind == "value_error":
        msg = str(ctx.get("error", err["msg"]))
        return "invalid", msg
    if kind == "assertion_error":
        return "invalid", str(ctx.get("error", err["msg"]))
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return "not_whole_number", "must be a whole number"
    if kind in ("string_type", "str_type"):
        return "not_text", "must be text"
    if kind == "literal_error":
        return "not_allowed", f"must be one of {ctx.get('expected', '')}"
    if kind in ("string_too_short", "too_short"):
        return "too_short", "is required" if ctx.get("min_length") == 1 else err["msg"].lower()
    if kind in ("string_too_long", "too_long"):
        return "too_long", f"is too long (at most {ctx.get('max_length')})"
    if kind == "string_pattern_mismatch":
        return "bad_format", "is not in the expected format"
    if kind in ("greater_than_equal", "greater_than"):
        return "too_small", f"must be at least {ctx.get('ge', ctx.get('gt'))}"
    if kind in ("less_than_equal", "less_than"):
        return "too_large", f"must be at most {ctx.get('le', ctx.get('lt'))}"
    if kind.startswith("date"):
        return "bad_date", "must be a date written YYYY-MM-DD"
    if kind.startswith("datetime"):
        return "bad_datetime", "must be a date and time with its offset (RFC 3339)"
    if kind == "extra_forbidden":
        return "unknown_field", "is not a known field"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return "bad_shape", "must be an object"
    if kind == "list_type":
        return "bad_shape", "must be a list"
    return kind, err["msg"]


def explain(exc: ValidationError) -> list[FieldProblem]:
    """Pydantic's errors as clerk-readable ``FieldProblem``s."""
    out: list[FieldProblem] = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"])
        code, message = _message(err)
        out.append(FieldProblem(loc, code, message))
    return out


def validate(model: type[M], data: object) -> M:
    """Validate or raise ``DomainError`` with readable problems."""
    from pydantic import ValidationError

    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise DomainError(explain(exc), code="validation_failed") from None


def error_words(err: object, limit: int = 200) -> str:
    """A contract error object (``{"code", "message"}``) as one line for a person."""
    if isinstance(err, dict):
        return f"{err.get('code', '')}: {err.get('message', '')}".strip(": ")[:limit]
    return str(err)[:limit]

"""Values a supervisor types at the command line for a payload field (``review correct``)."""

from __future__ import annotations

import orjson

from opd_fallback.domain import payloads as P
from opd_fallback.domain.errors import DomainError
from opd_fallback.domain.jsonio import JSONValue


def parse_value(kind: str, name: str, text: str) -> JSONValue:
    """A value typed at the CLI for payload field ``name``: whole numbers for
    integer fields, JSON for lists and objects, ``null`` or nothing for none."""
    raw = text.strip()
    if raw in ("", "null", "none", "None"):
        return None
    if raw[:1] in "[{":
        try:
            value: JSONValue = orjson.loads(raw)
            return value
        except orjson.JSONDecodeError:
            raise DomainError.field(name, "is not valid JSON", code="bad_json") from None
    model = P.PAYLOAD_MODELS.get(kind)
    info = model.model_fields.get(name) if model else None
    if info is not None and "int" in str(info.annotation).lower():
        try:
            return int(raw)
        except ValueError:
            raise DomainError.field(name, "must be a whole number", code="not_whole_number") from None
    return raw

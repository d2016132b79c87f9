"""JSON text for the database and the wire, in one place.

orjson is fast (the sync hot path writes a result per op) and strict (it
refuses NaN and non-string keys), and ``dumps`` returns ``str`` because every
column and log line here holds text. Keys keep their insertion order; where
equality must not depend on order (idempotency digests) the caller
canonicalises first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

import orjson

__all__ = ["JSONObject", "JSONValue", "dumps", "dumps_or_none", "loads"]

# A value that is genuinely arbitrary JSON (a payload field, central's result):
# read-only views, so a ``dict[str, int]`` or ``list[str]`` is one too.
JSONValue: TypeAlias = "str | int | float | bool | Sequence[JSONValue] | Mapping[str, JSONValue] | None"
JSONObject: TypeAlias = Mapping[str, JSONValue]


def dumps(value: Any) -> str:
    """``value`` as compact JSON text."""
    return orjson.dumps(value).decode()


def dumps_or_none(value: Any) -> str | None:
    """JSON text, or ``None`` for ``None`` (an absent column, not the text ``null``)."""
    return None if value is None else dumps(value)


def loads(text: str | bytes | None) -> Any:
    """The value of JSON text; ``None`` for a ``NULL`` column."""
    return None if text is None else orjson.loads(text)

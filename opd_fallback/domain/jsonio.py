"""JSON text for the database and the wire, in one place.

orjson is fast (the sync hot path writes a result per op) and strict (it
refuses NaN and non-string keys), and ``dumps`` returns ``str`` because every
column and log line here holds text. Keys keep their insertion order; where
equality must not depend on order (idempotency digests) the caller
canonicalises first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeAlias

import orjson
from typing_extensions import TypeAliasType

__all__ = ["JSONArray", "JSONObject", "JSONObjectField", "JSONScalar", "JSONValue", "dumps", "dumps_or_none", "loads", "loads_object"]

# The one name for "arbitrary JSON" across the package (issue 22): where a value's
# shape is known it gets a TypedDict or a model instead. Inputs that are only
# serialised take ``object`` (orjson decides), because ``dict`` is invariant and a
# ``dict[str, str]`` is not a ``JSONObject``. ``TypeAliasType`` makes the recursive
# alias usable at run time too (pydantic fields), not only by mypy.
JSONScalar: TypeAlias = str | int | float | bool | None
JSONValue = TypeAliasType("JSONValue", "JSONScalar | list[JSONValue] | dict[str, JSONValue]")
JSONArray: TypeAlias = list[JSONValue]
JSONObject: TypeAlias = dict[str, JSONValue]

# A pydantic field holding a JSON object: mypy sees a JSONObject; pydantic checks
# only that it is an object with text keys and takes the values as they are, as
# before the alias (a deep check of every value costs ~40x per op envelope, and
# the contract's JSON Schema stays the same).
if TYPE_CHECKING:
    JSONObjectField: TypeAlias = JSONObject
else:
    JSONObjectField = dict[str, object]


def dumps(value: object) -> str:
    """``value`` as compact JSON text."""
    return orjson.dumps(value).decode()


def dumps_or_none(value: object) -> str | None:
    """JSON text, or ``None`` for ``None`` (an absent column, not the text ``null``)."""
    return None if value is None else dumps(value)


def loads(text: str | bytes | None) -> Any:  # callers outside domain narrow it themselves (issue 22)
    """The value of JSON text; ``None`` for a ``NULL`` column."""
    return None if text is None else orjson.loads(text)


def loads_object(text: str | bytes | None) -> JSONObject | None:
    """JSON text that holds an object (a payload or result column); ``None`` for ``NULL``.

    Raises ``ValueError`` when the text holds something else, so a damaged column
    is told apart from an absent one."""
    value = loads(text)
    if value is None or isinstance(value, dict):
        return value
    raise ValueError(f"expected a JSON object, found {type(value).__name__}")

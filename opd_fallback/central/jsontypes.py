"""Names for JSON values whose shape no type states (central's local alias).

``JSONValue`` is any JSON value, ``JSONObject`` a JSON object: what
:func:`orjson.loads` gives, or what is about to be serialised. They are the
same recursive aliases as :mod:`opd_fallback.domain.jsonio` has on branch
``anylow`` (issue 22), so this module can re-export those once they land.
Where the shape is known, use a TypedDict or a model instead; a row as the
database driver gives it is ``apply.common.PatientRow``, not JSON.

The alias is for mypy only (a string at run time): pydantic models use
``dict[str, object]`` instead, which documents as the same OpenAPI schema.
"""

from __future__ import annotations

from typing import TypeAlias

JSONScalar: TypeAlias = str | int | float | bool | None
JSONValue: TypeAlias = "JSONScalar | list[JSONValue] | dict[str, JSONValue]"
JSONObject: TypeAlias = "dict[str, JSONValue]"

__all__ = ["JSONObject", "JSONScalar", "JSONValue"]

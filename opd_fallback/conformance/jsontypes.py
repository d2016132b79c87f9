"""Names for JSON values whose shape no type states (the conformance kit's local
alias: the kit imports nothing of central).

``JSONValue`` is a value as :func:`orjson.loads` gives it, or as it is about to
be serialised: its shape is checked at run time (by a pydantic model, or by the
code reading it), not by mypy. ``JSONObject`` is such a value known to be an
object. Where the shape is known, use a TypedDict instead. The kit judges answers
of any server and sends malformed ops on purpose, so most of what it handles
is arbitrary JSON until a rule has checked it.

Kept here until the shared alias lands in :mod:`opd_fallback.domain.jsonio`;
then this module re-exports it.
"""

from __future__ import annotations

from typing import Any, TypeAlias

JSONValue: TypeAlias = Any  # arbitrary JSON: checked at run time, not by mypy
JSONObject: TypeAlias = dict[str, JSONValue]

__all__ = ["JSONObject", "JSONValue"]

"""Names for JSON values whose shape no type states: the package's one alias.

``JSONValue`` is any JSON value, ``JSONObject`` a JSON object: what
:func:`orjson.loads` gives, or what is about to be serialised. They are
:mod:`opd_fallback.domain.jsonio`'s, re-exported so central's modules keep one
import. Where the shape is known, use a TypedDict or a model instead; a row as the
database driver gives it is ``apply.common.PatientRow``, not JSON. Pydantic
models use ``domain.jsonio.JSONObjectField`` (or ``dict[str, object]``), which
documents as the same OpenAPI schema.
"""

from __future__ import annotations

from opd_fallback.domain.jsonio import JSONObject, JSONScalar, JSONValue

__all__ = ["JSONObject", "JSONScalar", "JSONValue"]

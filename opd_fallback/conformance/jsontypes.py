"""The names for JSON the conformance kit has not checked yet.

The kit judges the answers of any server, and sends malformed ops on purpose,
so most of what it handles is JSON of no known shape until a rule has checked
it (``isinstance`` and ``Ctx.expect`` at run time). ``UncheckedJSON`` says so;
``UncheckedObject`` is such a value known to be an object (an op the kit
builds, a result it got back). Where a shape is the kit's own, it has a
TypedDict (``http.ExchangeDict``, ``runner.ReportDict``).

Deliberately loose, and so not :mod:`opd_fallback.domain.jsonio`'s precise
recursive ``JSONValue``: with that, every rule would narrow each value before
reading it (about 300 places). The kit imports nothing of central's.
"""

from __future__ import annotations

from typing import Any, TypeAlias

UncheckedJSON: TypeAlias = Any  # what a server sent (or the kit sends): the rules check it at run time
UncheckedObject: TypeAlias = dict[str, UncheckedJSON]

__all__ = ["UncheckedJSON", "UncheckedObject"]

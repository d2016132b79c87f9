"""RFC 8785 canonical JSON, fast: ``orjson`` with sorted keys where its bytes are
provably the library's, ``rfc8785.dumps`` everywhere else.

Decisions (why the fast path gives the same bytes as ``rfc8785.dumps``):
- it is taken only for values made of ``None``, ``bool``, ``int`` within
  ±(2**53 - 1), ``str``, ``list`` and ``dict`` with ``str`` keys that are all
  ASCII, exact types only (no subclasses, no tuples), nested at most 64 deep;
- no ``float`` at all: ES6 number printing (``1.0`` is ``1``, ``1e21``,
  ``-0.0`` is ``0``) differs from orjson's, and our payloads hold none (money
  is integer paise); a value holding one goes whole to the library;
- integers beyond 2**53 - 1 go to the library, which raises as before;
- ASCII keys sort the same by UTF-16 code units (RFC 8785 3.2.3) as by code
  points (orjson); a non-ASCII key sends the value to the library;
- strings: orjson and RFC 8785 escape the same set (``"``, ``\\``, the C0
  controls as ``\\b \\t \\n \\f \\r`` or lowercase ``\\u00xx``) and write
  everything else as UTF-8; a lone surrogate makes orjson refuse, and the
  library then raises its own error, as before.
``tests/test_canonical.py`` proves the equality with Hypothesis on every op
kind's payload model and on arbitrary JSON values.
"""

from __future__ import annotations

from typing import cast

import orjson
import rfc8785

_INT_MAX = 2**53 - 1
_INT_MIN = -(2**53) + 1
_MAX_DEPTH = 64


def _plain(value: object, depth: int = 0) -> bool:
    """Is ``value`` in the domain where orjson's sorted output is RFC 8785's?"""
    t = type(value)
    if t is str or value is None or t is bool:
        return True
    if type(value) is int:
        return _INT_MIN <= value <= _INT_MAX
    if depth >= _MAX_DEPTH:
        return False
    if type(value) is dict:
        for k, v in value.items():
            if type(k) is not str or not k.isascii() or not _plain(v, depth + 1):
                return False
        return True
    if type(value) is list:
        return all(_plain(v, depth + 1) for v in value)
    return False


def dumps(value: object) -> bytes:
    """Exactly ``rfc8785.dumps(value)`` (the same bytes, the same errors), faster."""
    if _plain(value):
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:
            pass  # a lone surrogate: the library raises its own error
    return rfc8785.dumps(cast("rfc8785._impl._Value", value))  # the library checks any value itself

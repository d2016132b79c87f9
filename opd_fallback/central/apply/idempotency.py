"""Payload equality for idempotency (contract 1.1 / 1.2): the hash an outcome is
remembered under, and whether a remembered hash matches a resend (``jcs2:``,
``jcs:`` and the pre-1.1 sorted-key form, see the package docstring)."""

from __future__ import annotations

import hashlib

import orjson

from opd_fallback.central.apply.common import _REF_KEYS
from opd_fallback.domain.contract import canonical_op, canonical_payload, drop_nulls

HASH_PREFIX = "jcs:"  # marks hashes of the 1.1 canonical form; older rows have none
HASH_PREFIX_12 = "jcs2:"  # 1.2: the input differs from 1.1's (an origin, a null in changes)


def _differs_from_1_1(payload: object, origin: object, kind: str | None) -> bool:
    if isinstance(origin, dict) and drop_nulls(origin):
        return True
    changes = payload.get("changes") if kind == "patient.update" and isinstance(payload, dict) else None
    return isinstance(changes, dict) and None in changes.values()


def payload_hash(payload: object, origin: object = None, kind: str | None = None) -> str:
    """The contract's payload equality (RFC 8785, absent == null; 1.2 with the
    origin and the nulls of ``changes``) hashed. Raises ``ValueError`` for a
    payload with no canonical form."""
    if _differs_from_1_1(payload, origin, kind):
        return HASH_PREFIX_12 + hashlib.sha256(canonical_op(payload, origin, kind)).hexdigest()
    return HASH_PREFIX + hashlib.sha256(canonical_payload(payload)).hexdigest()


def _same_payload(stored: str, payload: object, phash: str, origin: object = None) -> bool:
    """Does a remembered hash match this payload? Pre-1.1 rows hold the SHA-256 of
    sorted-key JSON as it was received (nulls kept, as the counter then sent them).
    A 1.1 row (``jcs:``) of a patient.update was hashed with every null dropped,
    and no op then had an origin."""
    if stored.startswith(HASH_PREFIX_12):
        return stored == phash
    if stored.startswith(HASH_PREFIX):
        if stored == phash:
            return True
        has_origin = isinstance(origin, dict) and bool(drop_nulls(origin))
        return (phash.startswith(HASH_PREFIX_12) and not has_origin
                and stored == HASH_PREFIX + hashlib.sha256(canonical_payload(payload)).hexdigest())
    if isinstance(origin, dict) and drop_nulls(origin):
        return False  # no op had an origin before 1.2
    legacy = hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return stored == legacy or stored == _legacy_with_null_ref_keys(payload)


def _legacy_with_null_ref_keys(payload: object) -> str:
    """The pre-1.1 hash of the form the 1.0 counter sent: every reference with both
    keys, the missing one null. A resend by an upgraded counter (one key) of an op
    the old server already applied must still be a duplicate, not a mismatch."""
    if not isinstance(payload, dict):
        return ""
    old = {k: ({"central_id": v.get("central_id"), "local_ref": v.get("local_ref")}
               if k in _REF_KEYS and isinstance(v, dict) else v) for k, v in payload.items()}
    return hashlib.sha256(orjson.dumps(old, option=orjson.OPT_SORT_KEYS)).hexdigest()


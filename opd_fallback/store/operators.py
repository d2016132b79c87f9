"""Counter operators and their PINs (scrypt: slow, salted, in the standard library)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re

from sqlmodel import Session, select

from opd_fallback.domain.clock import now_iso
from opd_fallback.domain.errors import DomainError
from opd_fallback.store import audit
from opd_fallback.store.engine import Store
from opd_fallback.store.tables import Operator

ROLES = ("operator", "supervisor")
# scrypt cost: ~50 ms per check on a counter PC, far too slow to brute-force a stolen file.
_N, _R, _P = 2**14, 8, 1
_OPERATOR_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


def hash_pin(pin: str, *, salt: bytes | None = None) -> str:
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(pin.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${_N}${_R}${_P}${b64(salt).decode()}${b64(digest).decode()}"


def check_pin(pin: str, stored: str) -> bool:
    try:
        _scheme, n, r, p, salt_b64, digest_b64 = stored.split("$")
        salt, want = base64.b64decode(salt_b64), base64.b64decode(digest_b64)
        got = hashlib.scrypt(pin.encode(), salt=salt, n=int(n), r=int(r), p=int(p), dklen=len(want))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


def validate_pin(pin: str) -> str:
    if not re.fullmatch(r"[0-9]{4,8}", pin or ""):
        raise DomainError.field("pin", "must be 4 to 8 digits", code="bad_pin")
    return pin


def add_operator(
    store: Store, operator_id: str, name: str, pin: str, *, role: str = "operator", actor: str = "cli"
) -> Operator:
    if not _OPERATOR_ID.match(operator_id or ""):
        raise DomainError.field("operator_id", "use letters, digits, '-', '_' or '.' (up to 64)")
    if not name or not name.strip():
        raise DomainError.field("name", "is required")
    if role not in ROLES:
        raise DomainError.field("role", f"must be one of {', '.join(ROLES)}")
    validate_pin(pin)
    with store.write() as s:
        if s.get(Operator, operator_id) is not None:
            raise DomainError.field("operator_id", f"operator {operator_id} already exists", code="exists")
        op = Operator(id=operator_id, name=name.strip(), pin_hash=hash_pin(pin), role=role, created_at=now_iso())
        s.add(op)
        audit.record(s, actor, "operator.add", operator_id, role=role)
    return op


def disable_operator(store: Store, operator_id: str, *, actor: str = "cli") -> None:
    with store.write() as s:
        op = s.get(Operator, operator_id)
        if op is None:
            raise DomainError.field("operator_id", f"no operator {operator_id}", code="not_found")
        op.active = False
        s.add(op)
        audit.record(s, actor, "operator.disable", operator_id)


def list_operators(store: Store) -> list[Operator]:
    with store.read() as s:
        return list(s.exec(select(Operator).order_by(Operator.id)))


def verify_operator(store: Store, operator_id: str, pin: str) -> Operator | None:
    """The active operator with this PIN, or None (no hint which part was wrong)."""
    with store.read() as s:
        op = s.get(Operator, operator_id)
    if op is None or not op.active:
        check_pin(pin, hash_pin("0000"))  # same cost either way
        return None
    return op if check_pin(pin, op.pin_hash) else None


def is_supervisor(op: Operator | None) -> bool:
    """An active operator with the supervisor role: the one rule for who may approve."""
    return op is not None and op.active and op.role == "supervisor"


def active_supervisor(session: Session, operator_id: str) -> Operator | None:
    """The supervisor ``operator_id`` as of this transaction (one disabled meanwhile is refused)."""
    op = session.get(Operator, operator_id)
    return op if is_supervisor(op) else None


def verify_supervisor(store: Store, operator_id: str, pin: str) -> Operator | None:
    op = verify_operator(store, operator_id, pin)
    return op if is_supervisor(op) else None


def get_operator(session: Session, operator_id: str) -> Operator | None:
    return session.get(Operator, operator_id)

"""Counter operators and their PINs: a memory-hard hash and a lockout.

A PIN has only 10^4..10^8 values, so two things protect it:

* Offline (someone copies ``counter.db``): each PIN is stored as an argon2id
  hash (argon2-cffi, the maintained binding of the reference implementation),
  whose encoded form carries its own salt and cost parameters, so the cost
  can be raised later without breaking stored hashes. One guess costs
  >= 50 ms on a counter PC (``benchmarks/pin_hash.py`` measures it). Hashes
  written by older versions (``scrypt$...``) still verify and are rehashed
  with argon2id on the next good PIN.
* Online (someone at the keyboard): after ``FREE_TRIES`` wrong PINs for one
  operator id the id is locked for ``FIRST_LOCK_S`` seconds, doubling with
  every further wrong PIN up to ``MAX_LOCK_S``; a good PIN resets the count.
  The state lives in the database (the ``meta`` table), so restarting the
  program does not reset it; every wrong PIN and every lockout is written to
  the audit log (never the PIN).

``verify_operator`` is the one way to check a PIN: the counter's login,
unlock and supervisor approvals, ``review``, ``import`` and ``restore`` all
call it, so they all get the same lockout and audit.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
import time
from datetime import datetime
from functools import lru_cache

import orjson
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from argon2.profiles import RFC_9106_LOW_MEMORY
from sqlmodel import Session, select

from opd_fallback.domain.clock import IST, duration_words, now_iso
from opd_fallback.domain.errors import DomainError, FieldProblem
from opd_fallback.store import audit, meta
from opd_fallback.store.engine import Store
from opd_fallback.store.tables import Operator

ROLES = ("operator", "supervisor")
MIN_PIN_DIGITS = {"operator": 4, "supervisor": 6}
MAX_PIN_DIGITS = 8
# RFC 9106's second recommended setting: argon2id, t=3, 64 MiB, 4 lanes
# (~130 ms per guess on the 2-core test machine under load).
HASHER = PasswordHasher.from_parameters(RFC_9106_LOW_MEMORY)
FREE_TRIES = 5
FIRST_LOCK_S = 30
MAX_LOCK_S = 3600
LOCK_KEY = "pin_lockout:"  # + operator id, in the meta table
_OPERATOR_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
_clock = time.time  # tests move time forward by replacing this


class PinRefused(DomainError):
    """A PIN was not accepted. ``locked_for_s`` > 0 when the id is locked."""

    def __init__(self, message: str, *, code: str, locked_for_s: int = 0) -> None:
        super().__init__([FieldProblem("operator_pin", code, message)], code=code)
        self.locked_for_s = locked_for_s
        self.sentence = message


# ------------------------------------------------------------------ hashing
def hash_pin(pin: str) -> str:
    """argon2id in its encoded form ``$argon2id$v=19$m=...,t=...,p=...$salt$hash``."""
    return HASHER.hash(pin)


def _check_scrypt(pin: str, stored: str) -> bool:
    try:
        _scheme, n, r, p, salt_b64, digest_b64 = stored.split("$")
        salt, want = base64.b64decode(salt_b64), base64.b64decode(digest_b64)
        got = hashlib.scrypt(pin.encode(), salt=salt, n=int(n), r=int(r), p=int(p), dklen=len(want))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


def check_pin(pin: str, stored: str) -> bool:
    """Does ``pin`` match ``stored`` (argon2id, or an older scrypt hash)?"""
    if stored.startswith("scrypt$"):
        return _check_scrypt(pin, stored)
    try:
        return HASHER.verify(stored, pin)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    if stored.startswith("scrypt$"):
        return True
    try:
        return HASHER.check_needs_rehash(stored)
    except (InvalidHashError, ValueError):
        return True


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return hash_pin("00000000")


# ------------------------------------------------------------------ rules
def validate_pin(pin: str, role: str = "operator") -> str:
    low = MIN_PIN_DIGITS.get(role, MIN_PIN_DIGITS["operator"])
    if not re.fullmatch(rf"[0-9]{{{low},{MAX_PIN_DIGITS}}}", pin or "", flags=re.ASCII):
        who = "a supervisor's PIN" if role == "supervisor" else "a PIN"
        raise DomainError.field("operator_pin", f"{who} must be {low} to {MAX_PIN_DIGITS} digits", code="bad_pin")
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
    validate_pin(pin, role)
    pin_hash = hash_pin(pin)  # slow: outside the write lock
    with store.write() as s:
        if s.get(Operator, operator_id) is not None:
            raise DomainError.field("operator_id", f"operator {operator_id} already exists", code="exists")
        op = Operator(id=operator_id, name=name.strip(), pin_hash=pin_hash, role=role, created_at=now_iso())
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


# ------------------------------------------------------------------ lockout
def _lock_state(s: Session, operator_id: str) -> tuple[int, float]:
    raw = meta.get(s, LOCK_KEY + operator_id)
    if not raw:
        return 0, 0.0
    try:
        d = orjson.loads(raw)
        return int(d.get("failures", 0)), float(d.get("locked_until", 0.0))
    except (orjson.JSONDecodeError, TypeError, ValueError, AttributeError):
        return FREE_TRIES, 0.0  # a damaged entry never unlocks anyone early


def lock_seconds(failures: int) -> int:
    """How long the id is locked after ``failures`` wrong PINs in a row (0: not locked)."""
    if failures < FREE_TRIES:
        return 0
    return int(min(MAX_LOCK_S, FIRST_LOCK_S * 2 ** min(failures - FREE_TRIES, 20)))


def _locked_sentence(operator_id: str, seconds: float, until: float) -> str:
    at = datetime.fromtimestamp(until, IST).strftime("%H:%M:%S")
    return (f"Too many wrong PINs for {operator_id}: this ID is locked; wait {duration_words(math.ceil(seconds))} "
            f"(until {at}) and try again, or ask a supervisor.")


def lockout_remaining(store: Store, operator_id: str) -> float:
    """Seconds until ``operator_id`` may try a PIN again (0 when not locked)."""
    with store.read() as s:
        _failures, until = _lock_state(s, operator_id)
    return max(0.0, until - _clock())


def unlock_operator(store: Store, operator_id: str, *, actor: str) -> bool:
    """Lift a PIN lockout early (a supervisor vouched for the person); audited.
    True if the ID had wrong PINs counted against it."""
    with store.write() as s:
        had = meta.get(s, LOCK_KEY + operator_id) is not None
        meta.delete(s, LOCK_KEY + operator_id)
        audit.record(s, actor, "operator.pin_unlock", operator_id, had_failures=had)
    return had


# ------------------------------------------------------------------ the check
def verify_operator(
    store: Store, operator_id: str, pin: str, *, role: str | None = None, purpose: str = "login"
) -> Operator:
    """The active operator with this id and PIN (and ``role``, when given).

    The one PIN check of the project. Raises ``PinRefused`` (a ``DomainError``)
    with one sentence to show as it is: a wrong id or PIN (how many tries are
    left), a locked id (how long to wait), or a right PIN of someone without
    ``role``. Wrong PINs count towards the lockout and are audited with
    ``purpose`` (login, unlock, approval, review, import, restore)."""
    operator_id = (operator_id or "").strip()
    if not _OPERATOR_ID.match(operator_id):
        check_pin(pin or "", _dummy_hash())  # same cost either way
        raise PinRefused("Wrong operator ID or PIN.", code="wrong_pin")
    with store.read() as s:
        op = s.get(Operator, operator_id)
        _failures, until = _lock_state(s, operator_id)
    now = _clock()
    if until > now:
        with store.write() as s:
            audit.record(s, operator_id, "operator.pin_while_locked", operator_id, purpose=purpose,
                         locked_for_s=math.ceil(until - now))
        raise PinRefused(_locked_sentence(operator_id, until - now, until), code="pin_locked",
                         locked_for_s=math.ceil(until - now))
    good = op is not None and op.active and check_pin(pin or "", op.pin_hash)
    if op is None or not op.active:
        check_pin(pin or "", _dummy_hash())  # no hint which part was wrong
    if not good:
        _wrong(store, operator_id, purpose)  # raises
    assert op is not None
    with store.read() as s:
        failures, _until = _lock_state(s, operator_id)
    if failures or needs_rehash(op.pin_hash):
        new_hash = hash_pin(pin) if needs_rehash(op.pin_hash) else None
        with store.write() as s:
            if failures:
                meta.delete(s, LOCK_KEY + operator_id)
            if new_hash is not None:
                row = s.get(Operator, operator_id)
                if row is not None:
                    row.pin_hash = new_hash
                    s.add(row)
                    op.pin_hash = new_hash
                    audit.record(s, operator_id, "operator.pin_rehashed", operator_id, scheme="argon2id")
    if role is not None and op.role != role:
        raise PinRefused(f"{operator_id} is not a {role}; ask a {role} to enter their own ID and PIN.",
                         code=f"not_{role}")
    return op


def _wrong(store: Store, operator_id: str, purpose: str) -> None:
    with store.write() as s:
        failures, _until = _lock_state(s, operator_id)
        failures += 1
        now = _clock()
        locked = lock_seconds(failures)
        until = now + locked if locked else 0.0
        meta.put(s, LOCK_KEY + operator_id, orjson.dumps({"failures": failures, "locked_until": until}).decode())
        audit.record(s, operator_id, "operator.pin_wrong", operator_id, purpose=purpose, failures=failures)
        if locked:
            audit.record(s, operator_id, "operator.pin_lockout", operator_id, purpose=purpose,
                         failures=failures, locked_for_s=locked)
    if locked:
        raise PinRefused(_locked_sentence(operator_id, locked, until), code="pin_locked", locked_for_s=locked)
    left = FREE_TRIES - failures
    raise PinRefused(f"Wrong operator ID or PIN; {left} more wrong {'try' if left == 1 else 'tries'} "
                     f"and this ID is locked for {duration_words(FIRST_LOCK_S)}.", code="wrong_pin")


def verify_supervisor(store: Store, operator_id: str, pin: str, *, purpose: str = "approval") -> Operator:
    """``verify_operator`` with ``role="supervisor"`` (kept for callers' readability)."""
    return verify_operator(store, operator_id, pin, role="supervisor", purpose=purpose)


def is_supervisor(op: Operator | None) -> bool:
    """An active operator with the supervisor role: the one rule for who may approve."""
    return op is not None and op.active and op.role == "supervisor"


def active_supervisor(session: Session, operator_id: str) -> Operator | None:
    """The supervisor ``operator_id`` as of this transaction (one disabled meanwhile is refused)."""
    op = session.get(Operator, operator_id)
    return op if is_supervisor(op) else None


def get_operator(session: Session, operator_id: str) -> Operator | None:
    return session.get(Operator, operator_id)

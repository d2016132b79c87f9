"""PINs are stored only as an argon2id hash with its parameters; verification
needs the right PIN of an active operator; wrong PINs lock the ID with a
growing delay that survives a restart, and are audited."""

from __future__ import annotations

import base64
import hashlib
import time

import orjson
import pytest
from argon2 import PasswordHasher
from sqlalchemy import text

from opd_fallback.domain.errors import DomainError
from opd_fallback.store import Store, open_store
from opd_fallback.store import operators as ops
from opd_fallback.store.tables import Operator


@pytest.fixture
def cheap_pins(monkeypatch: pytest.MonkeyPatch) -> None:
    """A cheap argon2id for tests about the lockout, not about the cost (the
    parameters travel in each hash, so verification follows whatever was stored)."""
    monkeypatch.setattr(ops, "HASHER", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    ops._dummy_hash.cache_clear()
    yield
    ops._dummy_hash.cache_clear()


def _audit(store: Store) -> list[tuple[str, str, dict]]:
    with store.read() as s:
        rows = s.execute(text("SELECT action, subject, detail FROM audit_log WHERE action LIKE 'operator.pin%' "
                              "ORDER BY id")).all()
    return [(r[0], r[1], orjson.loads(r[2])) for r in rows]


@pytest.mark.production_pin_cost
def test_pin_is_stored_as_argon2id_with_its_parameters_and_salted(store: Store) -> None:
    ops.add_operator(store, "op1", "Asha", "4826")
    ops.add_operator(store, "op2", "Ravi", "4826")
    with store.read() as s:
        rows = dict(s.execute(text("SELECT id, pin_hash FROM operator")).all())
        dump = "\n".join(str(r) for r in s.execute(text("SELECT * FROM operator")).all())
    assert "4826" not in dump
    assert rows["op1"].startswith("$argon2id$v=19$m=65536,t=3,p=4$") and rows["op1"] != rows["op2"]


@pytest.mark.production_pin_cost
def test_one_guess_costs_at_least_50_ms() -> None:
    stored = ops.hash_pin("4826")
    t0 = time.perf_counter()
    assert not ops.check_pin("4827", stored)
    assert time.perf_counter() - t0 >= 0.05


def test_verify_right_and_wrong_pin_and_disabled(store: Store, cheap_pins: None) -> None:
    ops.add_operator(store, "op1", "Asha", "4826")
    ops.add_operator(store, "sup1", "Meena", "999999", role="supervisor")
    assert ops.verify_operator(store, "op1", "4826").id == "op1"
    with pytest.raises(ops.PinRefused, match="Wrong operator ID or PIN"):
        ops.verify_operator(store, "op1", "4827")
    with pytest.raises(ops.PinRefused, match="Wrong operator ID or PIN"):
        ops.verify_operator(store, "nobody", "4826")
    with pytest.raises(ops.PinRefused, match="op1 is not a supervisor") as e:
        ops.verify_operator(store, "op1", "4826", role="supervisor")
    assert e.value.code == "not_supervisor"
    assert ops.verify_supervisor(store, "sup1", "999999").id == "sup1"
    ops.disable_operator(store, "op1")
    with pytest.raises(ops.PinRefused):
        ops.verify_operator(store, "op1", "4826")


def test_supervisors_need_six_digits_operators_four_to_eight(store: Store) -> None:
    with pytest.raises(DomainError, match="supervisor's PIN must be 6 to 8 digits"):
        ops.add_operator(store, "sup1", "Meena", "9999", role="supervisor")
    ops.add_operator(store, "sup1", "Meena", "99999999", role="supervisor")
    ops.add_operator(store, "op1", "Asha", "4826")
    ops.add_operator(store, "op2", "Ravi", "48261234")


@pytest.mark.parametrize("pin", ["", "12", "123456789", "12a4", "١٢٣٤"])
def test_bad_pins_refused(store: Store, pin: str) -> None:
    with pytest.raises(DomainError) as exc:
        ops.add_operator(store, "op1", "Asha", pin)
    assert exc.value.problems[0].field == "operator_pin"


def test_duplicate_and_bad_ids_and_roles(store: Store) -> None:
    ops.add_operator(store, "op1", "Asha", "4826")
    with pytest.raises(DomainError, match="already exists"):
        ops.add_operator(store, "op1", "Asha", "4826")
    with pytest.raises(DomainError):
        ops.add_operator(store, "bad id", "X", "4826")
    with pytest.raises(DomainError):
        ops.add_operator(store, "op3", "X", "4826", role="admin")


def test_five_wrong_pins_lock_the_id_even_for_the_right_pin_doubling_and_audited(
    store: Store, monkeypatch: pytest.MonkeyPatch, cheap_pins: None
) -> None:
    now = [1_800_000_000.0]
    monkeypatch.setattr(ops, "_clock", lambda: now[0])
    ops.add_operator(store, "op1", "Asha", "4826")
    for left in (4, 3, 2, 1):
        with pytest.raises(ops.PinRefused, match=f"{left} more wrong"):
            ops.verify_operator(store, "op1", "0000")
    with pytest.raises(ops.PinRefused, match="locked; wait 30 s") as e:
        ops.verify_operator(store, "op1", "0000")
    assert e.value.code == "pin_locked" and e.value.locked_for_s == 30
    now[0] += 10  # the right PIN does not help while locked
    with pytest.raises(ops.PinRefused, match="wait 20 s"):
        ops.verify_operator(store, "op1", "4826")
    now[0] += 21
    with pytest.raises(ops.PinRefused, match="wait 60 s"):  # one more wrong PIN: doubled
        ops.verify_operator(store, "op1", "1111")
    now[0] += 61
    assert ops.verify_operator(store, "op1", "4826").id == "op1"  # a good PIN resets the count
    with pytest.raises(ops.PinRefused, match="4 more wrong"):
        ops.verify_operator(store, "op1", "0000")
    actions = [(a, d.get("failures"), d.get("locked_for_s")) for a, _s, d in _audit(store)]
    assert actions[:7] == [
        ("operator.pin_wrong", 1, None), ("operator.pin_wrong", 2, None), ("operator.pin_wrong", 3, None),
        ("operator.pin_wrong", 4, None), ("operator.pin_wrong", 5, None), ("operator.pin_lockout", 5, 30),
        ("operator.pin_while_locked", None, 20),
    ]
    assert actions[7:] == [("operator.pin_wrong", 6, None), ("operator.pin_lockout", 6, 60),
                           ("operator.pin_wrong", 1, None)]
    assert all("0000" not in str(d) and "4826" not in str(d) for _a, _s, d in _audit(store))


def test_lockout_survives_reopening_the_database(store: Store, cheap_pins: None) -> None:
    ops.add_operator(store, "op1", "Asha", "4826")
    for _ in range(ops.FREE_TRIES):
        with pytest.raises(ops.PinRefused):
            ops.verify_operator(store, "op1", "0000")
    path = store.path
    store.close()
    again = open_store(path)
    try:
        with pytest.raises(ops.PinRefused) as e:
            ops.verify_operator(again, "op1", "4826")
        assert e.value.code == "pin_locked"
        assert 0 < ops.lockout_remaining(again, "op1") <= 30
    finally:
        again.close()


def test_an_old_scrypt_hash_still_verifies_and_is_rehashed_on_the_next_good_pin(store: Store) -> None:
    salt = b"0123456789abcdef"
    digest = hashlib.scrypt(b"4826", salt=salt, n=2**14, r=8, p=1, dklen=32)
    old = f"scrypt$16384$8$1${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"
    with store.write() as s:
        s.add(Operator(id="op1", name="Asha", pin_hash=old, role="operator", created_at="2026-01-01T00:00:00Z"))
    with pytest.raises(ops.PinRefused):
        ops.verify_operator(store, "op1", "4827")
    with store.read() as s:
        assert s.get(Operator, "op1").pin_hash == old  # a wrong PIN changes nothing
    assert ops.verify_operator(store, "op1", "4826").id == "op1"
    with store.read() as s:
        new = s.get(Operator, "op1").pin_hash
    assert new.startswith("$argon2id$") and ops.check_pin("4826", new) and not ops.check_pin("4827", new)
    assert ops.verify_operator(store, "op1", "4826").id == "op1"
    assert [a for a, _s, _d in _audit(store)] == ["operator.pin_wrong", "operator.pin_rehashed"]

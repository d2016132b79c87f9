"""PINs are stored only as a slow salted hash; verification needs the right PIN
of an active operator."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from opd_fallback.domain.errors import DomainError
from opd_fallback.store import Store
from opd_fallback.store import operators as ops


def test_pin_is_stored_hashed_and_salted(store: Store) -> None:
    ops.add_operator(store, "op1", "Asha", "4826")
    ops.add_operator(store, "op2", "Ravi", "4826")
    with store.read() as s:
        rows = dict(s.execute(text("SELECT id, pin_hash FROM operator")).all())
        dump = "\n".join(str(r) for r in s.execute(text("SELECT * FROM operator")).all())
    assert "4826" not in dump
    assert rows["op1"].startswith("scrypt$") and rows["op1"] != rows["op2"]  # salted


def test_verify_right_and_wrong_pin_and_disabled(store: Store) -> None:
    ops.add_operator(store, "op1", "Asha", "4826")
    ops.add_operator(store, "sup1", "Meena", "9999", role="supervisor")
    assert ops.verify_operator(store, "op1", "4826") is not None
    assert ops.verify_operator(store, "op1", "4827") is None
    assert ops.verify_operator(store, "nobody", "4826") is None
    assert ops.verify_supervisor(store, "op1", "4826") is None
    assert ops.verify_supervisor(store, "sup1", "9999") is not None
    ops.disable_operator(store, "op1")
    assert ops.verify_operator(store, "op1", "4826") is None


@pytest.mark.parametrize("pin", ["", "12", "123456789", "12a4", "١٢٣٤"])
def test_bad_pins_refused(store: Store, pin: str) -> None:
    with pytest.raises(DomainError) as exc:
        ops.add_operator(store, "op1", "Asha", pin)
    assert exc.value.problems[0].field == "pin"


def test_duplicate_and_bad_ids_and_roles(store: Store) -> None:
    ops.add_operator(store, "op1", "Asha", "4826")
    with pytest.raises(DomainError, match="already exists"):
        ops.add_operator(store, "op1", "Asha", "4826")
    with pytest.raises(DomainError):
        ops.add_operator(store, "bad id", "X", "4826")
    with pytest.raises(DomainError):
        ops.add_operator(store, "op3", "X", "4826", role="admin")

"""Ops are never deleted; payments never edited or deleted; the audit log is append-only."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from opd_fallback.application.services import CounterService, PaymentInput
from opd_fallback.store import Store, audit


def _one(svc: CounterService) -> None:
    svc.register_new("op1", {"name": "Ram Kumar", "sex": "M", "age_years": 40},
                     department="MED", payment=PaymentInput(mode="cash", amount_paise=1000))


def test_outbox_delete_refused(store: Store, svc: CounterService) -> None:
    _one(svc)
    with pytest.raises(DatabaseError, match="ops are never deleted"):
        with store.write() as s:
            s.execute(text("DELETE FROM op"))
    with store.read() as s:
        assert s.execute(text("SELECT count(*) FROM op")).scalar() == 3


def test_payment_cannot_be_edited_or_deleted(store: Store, svc: CounterService) -> None:
    _one(svc)
    for change in ("amount_paise = 1", "mode = 'upi'", "items = '[]'"):
        with pytest.raises(DatabaseError, match="never edited"):
            with store.write() as s:
                s.execute(text(f"UPDATE payment SET {change}"))
    with pytest.raises(DatabaseError, match="never deleted"):
        with store.write() as s:
            s.execute(text("DELETE FROM payment"))
    with store.read() as s:
        assert tuple(s.execute(text("SELECT amount_paise, mode FROM payment")).one()) == (1000, "cash")


def test_audit_log_is_append_only(store: Store) -> None:
    with store.write() as s:
        audit.record(s, "sup1", "payment.void", "C07-261126-000003", reason="wrong amount")
    with pytest.raises(DatabaseError, match="append-only"):
        with store.write() as s:
            s.execute(text("UPDATE audit_log SET actor = 'someone-else'"))
    with pytest.raises(DatabaseError, match="append-only"):
        with store.write() as s:
            s.execute(text("DELETE FROM audit_log"))
    with store.write() as s:
        audit.record(s, "sup1", "operator.disable", "op1")
    with store.read() as s:
        entries = audit.history(s)
    assert [e.action for e in entries] == ["operator.disable", "payment.void"]
    assert entries[1].actor == "sup1"

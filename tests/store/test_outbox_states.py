"""The life of an op: every allowed transition works, every other one is refused.

The table is :data:`opd_fallback.store.outbox.TRANSITIONS`; these tests walk
each (state, transition) pair on a real database, so a transition added or
widened without thought shows up here.
"""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import text

from opd_fallback.store import Store, outbox

STATES = outbox.STATES
PARAMS = {"st": "applied", "res": "{}", "err": '{"code": "x"}', "why": "because"}

# (transition, from) -> to; everything not listed must be refused
ALLOWED = {
    ("synced", outbox.PENDING): outbox.SYNCED,
    ("synced", outbox.REJECTED): outbox.SYNCED,
    ("synced", outbox.CONFLICT): outbox.SYNCED,
    ("synced", outbox.CANCELLED): outbox.SYNCED,
    ("synced", outbox.SYNCED): outbox.SYNCED,
    ("flagged", outbox.PENDING): "row",  # rejected or conflict, as the row says
    ("deferred", outbox.PENDING): outbox.PENDING,
    ("waiting", outbox.PENDING): outbox.PENDING,
    ("requeued", outbox.SYNCED): outbox.PENDING,
    ("resubmitted", outbox.REJECTED): outbox.PENDING,
    ("resubmitted", outbox.CONFLICT): outbox.PENDING,
    ("cancelled", outbox.REJECTED): outbox.CANCELLED,
    ("cancelled", outbox.CONFLICT): outbox.CANCELLED,
    ("cancelled", outbox.PENDING): outbox.CANCELLED,  # review cancels what waits on a cancelled op
}


def _op_in(store: Store, state: str, seq: int) -> str:
    with store.write() as s:
        op = outbox.enqueue(s, seq=seq, kind="visit.open", device_id="C07", operator_id="op1", payload={})
        op_id = op.op_id
    with store.write() as s:  # put it in the state under test directly: this test is the table's judge
        s.execute(text("UPDATE op SET state=:st WHERE op_id=:i"), {"st": state, "i": op_id})
    return op_id


@pytest.mark.parametrize(("name", "source"), list(itertools.product(outbox.TRANSITIONS, STATES)))
def test_each_transition_from_each_state(store: Store, name: str, source: str) -> None:
    op_id = _op_in(store, source, 1)
    params = {**PARAMS, "state": outbox.CONFLICT} if name == "flagged" else dict(PARAMS)
    expected = ALLOWED.get((name, source))
    with store.write() as s:
        if expected is None:
            with pytest.raises(outbox.IllegalTransition):
                outbox.transition_one(s, op_id, name, **params)
            assert outbox.transition(s, name, [{"id": op_id, **params}]) == 0  # set-based: left as it is
        else:
            assert outbox.transition_one(s, op_id, name, **params) == source
    with store.read() as s:
        after = outbox.op_state(s, op_id)
    if expected is None:
        assert after == source
    else:
        assert after == (outbox.CONFLICT if expected == "row" else expected)


def test_the_table_and_this_test_agree() -> None:
    """A transition added to the table without a row here fails this test."""
    allowed = {(t.name, s) for t in outbox.TRANSITIONS.values() for s in t.sources}
    assert allowed == set(ALLOWED)


def test_flagged_moves_only_to_rejected_or_conflict(store: Store) -> None:
    op_id = _op_in(store, outbox.PENDING, 1)
    with store.write() as s, pytest.raises(outbox.IllegalTransition):
        outbox.transition(s, "flagged", [{"id": op_id, **PARAMS, "state": outbox.SYNCED}])


def test_synced_books_the_result_and_clears_what_is_done(store: Store) -> None:
    """The engine and reconcile share this: resolution and reason cleared, the attempt counted."""
    op_id = _op_in(store, outbox.CONFLICT, 1)
    with store.write() as s:
        s.execute(text("UPDATE op SET resolution='{\"action\":\"create_new\"}', wait_reason='x' WHERE op_id=:i"),
                  {"i": op_id})
        assert outbox.transition(s, "synced", [{"id": op_id, "st": "duplicate", "res": '{"uhid": "U1"}'}]) == 1
    with store.read() as s:
        op = outbox.get(s, op_id)
        assert op is not None
        assert (op.state, op.last_status, op.resolution, op.wait_reason, op.attempts) == (
            "synced", "duplicate", None, None, 1)
        assert op.result == '{"uhid": "U1"}' and op.synced_at


def test_many_at_once_counts_only_those_that_moved(store: Store) -> None:
    ids = [_op_in(store, st, i + 1) for i, st in enumerate([outbox.PENDING, outbox.CANCELLED, outbox.PENDING])]
    with store.write() as s:
        moved = outbox.transition(s, "waiting", [{"id": i, "why": "its registration is flagged"} for i in ids])
    assert moved == 2

"""Planning what to send: dependency order, lanes, held-back ops and their reasons."""

from __future__ import annotations

import orjson

from opd_fallback.domain.contract import OpEnvelope
from opd_fallback.sync.batching import (
    Flagged,
    LaneQueue,
    PendingOp,
    batch_body,
    encode,
    plan,
)


def op(seq: int, op_id: str, deps: tuple[str, ...] = (), kind: str = "visit.open", size: int = 10) -> PendingOp:
    return PendingOp(seq, op_id, kind, "visit", f"C07-261126-{seq:06d}", list(deps), b"x" * size, None, False)


def test_encode_is_a_valid_contract_envelope() -> None:
    row = (42, "01HPZ7Q6N9X4T2YB8K3M5D7F1G", "payment.record", "C07", "op-114", "2024-02-19T10:32:11+05:30",
           '["01HPZ7Q6N9X4T2YB8K3M5D7F1A"]', '{"amount_paise":1000,"name":"Rām \\"Q\\""}', None)
    env = orjson.loads(encode(row))
    OpEnvelope.model_validate(env)
    assert env["seq"] == 42 and env["depends_on"] == ["01HPZ7Q6N9X4T2YB8K3M5D7F1A"]
    assert env["payload"] == {"amount_paise": 1000, "name": 'Rām "Q"'} and env["resolution"] is None
    with_res = orjson.loads(encode((*row[:8], '{"action":"create_new"}')))
    assert with_res["resolution"] == {"action": "create_new"}


def test_chains_stay_in_one_lane_in_dependency_order() -> None:
    ops = [op(1, "a"), op(2, "b", ("a",)), op(3, "x"), op(4, "c", ("b",)), op(5, "y", ("x",)), op(6, "z")]
    p = plan(ops, {}, lanes=3)
    assert p.blocked == {}
    where = {o.op_id: (i, lane.index(o)) for i, lane in enumerate(p.lanes) for o in lane}
    assert where["a"][0] == where["b"][0] == where["c"][0]
    assert where["a"][1] < where["b"][1] < where["c"][1]
    assert where["x"][0] == where["y"][0] and where["x"][1] < where["y"][1]
    assert len(p.lanes) == 3 and p.to_send == 6


def test_a_superseding_dependency_with_a_higher_seq_goes_first() -> None:
    # review re-pointed 'pay' (seq 3) at the corrected registration 'fix' (seq 9)
    ops = [op(3, "pay", ("fix",)), op(9, "fix", kind="patient.register")]
    p = plan(ops, {}, lanes=2)
    assert [o.op_id for o in p.lanes[0]] == ["fix", "pay"]


def test_flagged_dependency_holds_back_the_whole_chain_with_words() -> None:
    flagged = {"r": Flagged("r", "rejected", "patient.register", "C07-261126-000001",
                            "validation_failed: Name: too long")}
    ops = [op(2, "v", ("r",)), op(3, "p", ("v",), kind="payment.record"), op(4, "free")]
    p = plan(ops, flagged, lanes=2)
    assert set(p.blocked) == {"v", "p"} and p.to_send == 1
    assert "patient.register C07-261126-000001" in p.blocked["v"] and "rejected" in p.blocked["v"]
    assert "Name: too long" in p.blocked["v"]
    assert "is itself waiting" in p.blocked["p"]
    cancelled = {"c": Flagged("c", "cancelled", "visit.open", "C07-1", None)}
    assert "was cancelled" in plan([op(5, "q", ("c",))], cancelled, 1).blocked["q"]


def test_foreign_dependencies_are_just_sent() -> None:
    p = plan([op(1, "mine", ("another-devices-op",))], {}, lanes=1)
    assert p.blocked == {} and p.to_send == 1


def test_lane_queue_batches_by_count_and_bytes_and_holds_dependents_of_failures() -> None:
    ops = [op(i, f"o{i}", size=100) for i in range(1, 8)]
    lq = LaneQueue(ops, batch_size=3, max_bytes=250)
    assert [o.op_id for o in lq.next_batch()] == ["o1", "o2"]  # 2 x 101 bytes fit, a third does not
    lq = LaneQueue([op(1, "reg"), op(2, "visit", ("reg",)), op(3, "fee", ("visit",)), op(4, "other")], batch_size=1)
    first = lq.next_batch()
    lq.note(first[0], "the server deferred (dependency_missing)")
    assert [o.op_id for o in lq.next_batch()] == ["other"]
    assert "deferred" in lq.held["visit"] and "is itself waiting" in lq.held["fee"]


def test_batch_body_is_the_contract_wrapper() -> None:
    a, b = op(1, "a"), op(2, "b")
    a.body, b.body = b'{"op_id":"a"}', b'{"op_id":"b"}'
    assert orjson.loads(batch_body([a, b])) == {"ops": [{"op_id": "a"}, {"op_id": "b"}]}

"""The sync engine against the reference central server over real HTTP."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import text

from opd_fallback.application.services import CounterService, PaymentInput
from opd_fallback.domain.clock import today_ist
from opd_fallback.store import Store, meta
from opd_fallback.sync.client import CentralClient
from opd_fallback.sync.engine import LAST_SYNC_AT, LAST_SYNC_OUTCOME, SyncEngine
from tests.helpers.central import CentralHandle, free_port, run_central

from .daygen import make_day, seed_master_data

_DEVICES = iter(range(1, 10_000))


@pytest.fixture(scope="module")
def central(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CentralHandle]:
    """One reference server per module (it takes seconds to start); each test is its own device."""
    with run_central(tmp_path_factory.mktemp("central"), devices=("C07",)) as handle:
        yield handle


@pytest.fixture
def device(central: CentralHandle) -> str:
    dev = f"T{next(_DEVICES):03d}"
    central.add_device(dev)
    return dev


@pytest.fixture
def svc(store: Store, device: str) -> CounterService:
    return CounterService(store, device)


@pytest.fixture
def client(central: CentralHandle, device: str) -> Iterator[CentralClient]:
    with CentralClient(central.url, central.tokens[device]) as c:
        yield c


def states(store: Store) -> dict[str, int]:
    with store.read() as s:
        return {str(k): int(v) for k, v in s.execute(text("SELECT state, count(*) FROM op GROUP BY state"))}


def op_row(store: Store, op_id: str) -> dict[str, Any]:
    with store.read() as s:
        row = s.execute(text("SELECT * FROM op WHERE op_id=:i"), {"i": op_id}).mappings().one()
    return dict(row)


class Recorder:
    """Wraps ``push_batch_raw`` to log when each op was sent and when it was answered applied."""

    def __init__(self, client: CentralClient) -> None:
        self.orig = client.push_batch_raw
        client.push_batch_raw = self  # type: ignore[method-assign]
        self.lock = threading.Lock()
        self.tick = 0
        self.sent: list[tuple[int, list[dict[str, Any]]]] = []
        self.applied_at: dict[str, int] = {}

    def __call__(self, body: Any) -> list[dict[str, Any]]:
        ops = orjson.loads(body)["ops"]
        with self.lock:
            self.tick += 1
            self.sent.append((self.tick, ops))
        results = self.orig(body)
        with self.lock:
            self.tick += 1
            for r in results:
                if r["status"] in ("applied", "duplicate"):
                    self.applied_at.setdefault(r["op_id"], self.tick)
        return results


def test_day_syncs_ids_written_back_and_totals_match(store: Store, device: str, client: CentralClient) -> None:
    day = make_day(store, device, 25, seed=3)
    summary = SyncEngine(store, client, lanes=2).run()
    assert summary.outcome == "ok" and summary.exit_code == 0
    assert summary.applied == day.ops and summary.still_waiting == 0
    rec = client.reconciliation(today_ist().isoformat(), device)
    assert rec.ops_applied == day.ops
    assert rec.payments.total_paise == day.payments_paise and rec.payments.count == day.payments
    again = SyncEngine(store, client).run()
    assert again.total == 0 and again.outcome == "ok"
    assert states(store) == {"synced": day.ops}
    with store.read() as s:
        for table, col in (("patient", "uhid"), ("visit", "central_id"), ("lab_order", "central_id"),
                           ("lab_order", "accession"), ("payment", "central_id"), ("payment", "patient_uhid"),
                           ("visit", "patient_uhid")):
            missing = s.execute(text(f"SELECT count(*) FROM {table} WHERE {col} IS NULL")).scalar()
            assert missing == 0, f"{table}.{col} not written back"
        assert meta.get(s, LAST_SYNC_AT)
        assert orjson.loads(meta.get(s, LAST_SYNC_OUTCOME) or "{}")["outcome"] == "ok"


def test_lost_bookkeeping_resend_is_duplicate_not_double(store: Store, device: str, client: CentralClient) -> None:
    day = make_day(store, device, 5, seed=4)
    SyncEngine(store, client).run()
    with store.write() as s:  # as if we crashed after the server applied, before booking
        s.execute(text("UPDATE op SET state='pending', result=NULL, synced_at=NULL"))
        s.execute(text("UPDATE payment SET central_id=NULL"))
    summary = SyncEngine(store, client).run()
    assert summary.duplicate == day.ops and summary.applied == 0
    rec = client.reconciliation(today_ist().isoformat(), device)
    assert rec.ops_applied == day.ops and rec.payments.total_paise == day.payments_paise
    with store.read() as s:
        assert s.execute(text("SELECT count(*) FROM payment WHERE central_id IS NULL")).scalar() == 0


def test_payment_never_sent_before_its_registration_is_applied(store: Store, device: str,
                                                               client: CentralClient) -> None:
    make_day(store, device, 40, seed=5)
    with store.read() as s:
        deps = {r[0]: orjson.loads(r[1]) for r in s.execute(text("SELECT op_id, depends_on FROM op"))}
    assert sum(1 for d in deps.values() if d) > 60  # the day really has chains
    rec = Recorder(client)
    summary = SyncEngine(store, client, batch_size=7, lanes=3).run()
    assert summary.outcome == "ok" and summary.deferred == 0
    assert len(rec.sent) > 15
    for sent_at, ops in rec.sent:
        earlier: set[str] = set()
        for op in ops:
            for d in op["depends_on"]:
                assert d in earlier or rec.applied_at.get(d, 10**9) < sent_at, (
                    f"{op['kind']} sent before its dependency was applied")
            earlier.add(op["op_id"])


def test_rejection_and_conflict_flagged_with_reasons_while_unrelated_ops_flow(
    store: Store, svc: CounterService, device: str, client: CentralClient
) -> None:
    # no master data at the counter, so an unknown department reaches the server
    bad = svc.register_new("op-1", {"name": "Asha Verma", "sex": "F", "age_years": 30}, department="NOPE",
                           payment=PaymentInput(mode="cash", amount_paise=1000))
    first = svc.register_new("op-1", {"name": "Ram Kumar", "sex": "M", "age_years": 40, "mobile": "9876543210"},
                             department="MED", payment=PaymentInput(mode="cash", amount_paise=1000))
    s1 = SyncEngine(store, client).run()
    assert s1.rejected == 1 and s1.outcome == "needs_person" and s1.exit_code == 1
    # the same person again, registered afresh: a possible duplicate
    dup = svc.register_new("op-1", {"name": "Ram Kr", "sex": "M", "age_years": 41, "mobile": "9876543210"},
                           department="MED", payment=PaymentInput(mode="cash", amount_paise=1000))
    before = states(store)
    other_ops = make_day(store, device, 3, seed=6).ops - sum(before.values())
    s2 = SyncEngine(store, client).run()
    assert s2.conflict == 1 and s2.applied == other_ops  # unrelated ops flowed on
    assert any("possible_duplicate" in r for r in s2.reasons)
    conflict = op_row(store, dup.patient.op_id)
    assert conflict["state"] == "conflict"
    err = orjson.loads(conflict["last_error"])
    assert err["code"] == "possible_duplicate" and err["candidates"][0]["uhid"]
    waiting = op_row(store, dup.visit.op_id)
    assert waiting["state"] == "pending" and "needs a person's decision" in waiting["wait_reason"]
    rejected = op_row(store, bad.visit.op_id)
    assert rejected["state"] == "rejected" and orjson.loads(rejected["last_error"])["code"] == "unknown_department"
    fee = op_row(store, bad.payment.op_id)  # type: ignore[union-attr]
    assert fee["state"] == "pending" and "rejected" in fee["wait_reason"]
    assert "unknown_department" in fee["wait_reason"]
    # a supervisor decides: link to the existing patient; the engine resends with the resolution
    uhid = err["candidates"][0]["uhid"]
    with store.write() as s:
        s.execute(text("UPDATE op SET state='pending', resolution=:r WHERE op_id=:i"),
                  {"r": orjson.dumps({"action": "link", "uhid": uhid}).decode(), "i": dup.patient.op_id})
    s3 = SyncEngine(store, client).run()
    assert s3.applied == 3 and s3.still_waiting == 1  # the rejected visit's fee still waits
    linked = op_row(store, dup.patient.op_id)
    assert linked["state"] == "synced" and linked["resolution"] is None
    assert orjson.loads(linked["result"]) == {"uhid": uhid, "linked": True}
    with store.read() as s:
        assert s.execute(text("SELECT uhid FROM patient WHERE local_ref=:r"),
                         {"r": dup.patient.local_ref}).scalar() == uhid
        assert s.execute(text("SELECT uhid FROM patient WHERE local_ref=:r"),
                         {"r": first.patient.local_ref}).scalar() == uhid


def test_cross_device_reference_deferred_then_applied(
    tmp_path: Path, store: Store, svc: CounterService, central: CentralHandle, client: CentralClient
) -> None:
    from opd_fallback.store import open_store

    other = open_store(tmp_path / "l02.db")
    peer = f"L{next(_DEVICES):03d}"
    central.add_device(peer)
    reg = CounterService(other, peer).register_new("op-2", {"name": "Gita Devi", "sex": "F", "age_years": 50},
                                                     department="MED")
    visit = svc.revisit("op-1", reg.patient.local_ref, department="MED")
    s1 = SyncEngine(store, client, max_rounds=2, round_pause_s=0.01).run()
    assert s1.deferred >= 1 and s1.still_waiting == 1 and s1.exit_code == 1
    row = op_row(store, visit.visit.op_id)
    assert row["state"] == "pending" and "reference_pending" in row["wait_reason"]
    assert row["first_deferred_at"]
    with CentralClient(central.url, central.tokens[peer]) as peer_client:
        assert SyncEngine(other, peer_client).run().outcome == "ok"
    s2 = SyncEngine(store, client).run()
    assert s2.applied == 1 and s2.exit_code == 0
    other.close()


def test_deferred_too_long_is_flagged_for_a_person(store: Store, svc: CounterService, client: CentralClient) -> None:
    svc.revisit("op-1", "Q99-261126-000001", department="MED")
    SyncEngine(store, client, max_rounds=1).run()
    summary = SyncEngine(store, client, max_rounds=1, max_deferred_wait_s=0).run()
    assert summary.waited_too_long == 1 and summary.exit_code == 1
    assert states(store) == {"conflict": 1}
    with store.read() as s:
        last_status, why = s.execute(text("SELECT last_status, wait_reason FROM op")).one()
    assert last_status == "deferred" and "waited too long" in why


def test_faults_on_everything_applied_once(tmp_path: Path, store: Store) -> None:
    day = make_day(store, "C07", 60, seed=7)
    with run_central(tmp_path, fail_rate=0.2, lost_response_rate=0.25, reset_rate=0.1, latency_ms=2,
                     seed=11) as central, CentralClient(central.url, central.tokens["C07"]) as client:
        summary = SyncEngine(store, client, batch_size=40, lanes=3, give_up_after_s=60).run()
        assert summary.outcome == "ok", summary.as_dict()
        assert summary.retries > 0 and summary.duplicate > 0
        rec = client.reconciliation(today_ist().isoformat(), "C07")
        assert rec.ops_applied == day.ops and rec.payments.total_paise == day.payments_paise
    assert states(store) == {"synced": day.ops}


def test_unauthorized_and_unreachable_exit_3_with_reasons(store: Store, device: str, central: CentralHandle) -> None:
    make_day(store, device, 2, seed=8)
    with CentralClient(central.url, "wrong-token") as client:
        summary = SyncEngine(store, client).run()
    port = free_port()
    assert summary.outcome == "unauthorized" and summary.exit_code == 3
    with store.read() as s:
        whys = {r[0] for r in s.execute(text("SELECT wait_reason FROM op"))}
    assert all(w and "token" in w for w in whys)
    with CentralClient(f"http://127.0.0.1:{port}", "t", connect_timeout=0.5) as client:
        t0 = time.monotonic()
        summary = SyncEngine(store, client, give_up_after_s=1.0).run()
    assert summary.outcome == "unreachable" and summary.exit_code == 3
    assert time.monotonic() - t0 < 15
    with store.read() as s:
        whys = {r[0] for r in s.execute(text("SELECT wait_reason FROM op"))}
    assert all(w and "not reachable" in w for w in whys)


def test_watch_picks_up_after_maintenance_window(store: Store, device: str, central: CentralHandle,
                                                client: CentralClient) -> None:
    day = make_day(store, device, 4, seed=9)
    central.maintenance(True)
    stop = threading.Event()
    summaries: list[Any] = []
    engine = SyncEngine(store, client, stop=stop)
    t = threading.Thread(target=engine.watch, kwargs={"interval_s": 0.2, "on_summary": summaries.append,
                                                      "probe_cap_s": 0.5})
    t.start()
    try:
        time.sleep(1.5)
        assert states(store) == {"pending": day.ops}  # nothing got through during maintenance
        central.maintenance(False)
        deadline = time.monotonic() + 20
        while states(store) != {"synced": day.ops} and time.monotonic() < deadline:
            time.sleep(0.1)
        assert states(store) == {"synced": day.ops}
        # a new op recorded while watching is picked up too
        more = make_day(store, device, 1, seed=10)
        assert more.ops > day.ops
        deadline = time.monotonic() + 20
        while states(store) != {"synced": more.ops} and time.monotonic() < deadline:
            time.sleep(0.1)
        assert states(store) == {"synced": more.ops}
    finally:
        central.maintenance(False)
        stop.set()
        t.join(timeout=10)
    assert not t.is_alive() and summaries


def test_clock_skew_warning_reaches_the_summary(store: Store) -> None:
    from .scripted import Scripted, js

    seed_master_data(store)
    def answer(method: str, path: str, headers: dict[str, str], body: bytes) -> Any:
        if path.endswith("/devices/me"):
            return js(200, {"device_id": "C07", "max_seq": 0, "ops_applied": 0, "last_recorded_at": None})
        return js(200, {"status": "ok"})

    with Scripted(answer, date_offset_s=3600) as srv:
        with CentralClient(srv.url, "t") as client:
            seen: list[str] = []
            engine = SyncEngine(store, client, on_warning=seen.append)
            client.health()
            summary = engine.run()
    assert seen and "60 minutes" in seen[0]
    assert summary.warnings and "behind" in summary.warnings[0]


def test_sync_run_makes_a_restored_counter_continue_above_centrals_max_seq(
    store: Store, svc: CounterService, device: str, client: CentralClient
) -> None:
    from opd_fallback.domain.errors import DomainError
    from opd_fallback.store import numbers, readiness

    make_day(store, device, 3, seed=9)
    SyncEngine(store, client).run()
    central_max = client.device_me().max_seq
    with store.write() as s:  # as if restored from a backup taken before all of that
        s.execute(text("UPDATE counter SET value = 1 WHERE name = 'seq'"))
    readiness.mark_restored(store, source="test backup")
    with pytest.raises(DomainError):
        svc.register_new("op1", {"name": "Sita Devi", "sex": "F", "age_years": 30}, department="MED")
    summary = SyncEngine(store, client).run()
    # (other tests' patients on this shared server may flag some of ours as possible duplicates)
    assert summary.outcome in ("ok", "needs_person")
    assert readiness.is_ready(store)[0]
    with store.read() as s:
        assert numbers.peek(s, numbers.SEQ) == central_max
    reg = svc.register_new("op1", {"name": "Sita Devi", "sex": "F", "age_years": 30}, department="MED")
    assert reg.patient.seq == central_max + 1


def test_every_op_ends_synced_or_with_a_stored_reason_even_when_the_server_gives_none(store: Store) -> None:
    from .scripted import Scripted, js

    seed_master_data(store)
    svc = CounterService(store, "C07")
    for i in range(4):
        svc.register_new("op-1", {"name": f"Asha {chr(65 + i)}", "sex": "F", "age_years": 30}, department="MED")
    answers = iter(["applied", "rejected", "conflict", "surprise"])

    def answer(method: str, path: str, headers: dict[str, str], body: bytes) -> Any:
        if path.endswith("/devices/me"):
            return js(200, {"device_id": "C07", "max_seq": 0, "ops_applied": 0, "last_recorded_at": None})
        if path.endswith("/ops:batch"):  # no error object at all, as the contract allows
            ops = orjson.loads(body)["ops"]
            return js(200, {"results": [{"op_id": op["op_id"], "status": next(answers, "applied"), "result": {}}
                                        for op in ops]})
        return js(200, {"status": "ok"})

    with Scripted(answer) as srv, CentralClient(srv.url, "t") as client:
        summary = SyncEngine(store, client, lanes=1, max_rounds=1).run()
    assert (summary.rejected, summary.conflict) == (1, 1) and summary.applied >= 1
    with store.read() as s:
        rows = s.execute(text("SELECT state, last_error, wait_reason FROM op ORDER BY seq")).all()
    assert {r[0] for r in rows} == {"synced", "rejected", "conflict", "pending"}
    for state, last_error, wait_reason in rows:
        if state == "synced":
            continue
        assert last_error or wait_reason, (state, last_error, wait_reason)
        if state in ("rejected", "conflict"):
            assert orjson.loads(last_error)["code"] == "no_reason_given"

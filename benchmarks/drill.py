"""A hospital morning, drilled with real processes: one LAN hub, central down
for the first part, 8 registration, 3 billing and 2 collection counters.

Patients arrive at --per-hour (2,500 an hour) hospital-wide and walk:
registration (new patient, visit and fee; for about half, the doctor's lab
request entered there, not paid yet), a walk to billing (the order of another
counter, found through the hub: ``pay_lab_order``), a walk to sample
collection (the tube found through the hub, paid, drawn: ``CollectionDesk``;
about 3% of tubes are refused, haemolysed, and drawn again). Each counter is
a desk worker serving its own queue (a patient joins the shortest queue of
the next desk) with a clerk's service time, and shares with the hub every
--share-interval seconds in the background and at once after a save, as the
counter UI does (``--no-wake``: by the interval only). The
counters run in this process through the application's services, each on its
own SQLite file; the hub and central are real subprocesses on 127.0.0.1.

**Time is compressed --speed times (default 10x)**: arrivals, walks between
desks (1-4 min to billing, 1-3 min to collection) and service times (about
10 s at registration, 7 s at billing, 5 s per patient at collection: every
desk ~80% busy at 2,500 an hour) run that much faster, so --minutes 20 of a
morning take 2 minutes. The latencies measured are real seconds, not
compressed: save-to-visible is from the save at one desk until the record is
in the store of each counter of the next desk (registration's lab order at
the 3 billing counters; billing's payment at the 2 collection counters; a
tube's collection at the other collection counter and at the registration
counter that ordered it). Goal: p99 < 2 s.

Then central returns: every counter syncs at once until its outbox is empty
(time to drain), each reconciles its day (CLEAN expected), and the ops of all
counters are compared with what central applied: lost (queued here, not
applied there) and doubled (applied there more than once as records: central
rows per kind against the counters' ops). Expected 0 and 0.

Prints the figures, then one JSON object. Usage:
    python benchmarks/drill.py [--minutes 20] [--speed 10] [--per-hour 2500] [--seed 7]
"""

from __future__ import annotations

import argparse
import heapq
import json
import queue
import random
import sqlite3
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from opd_fallback.application.collection import CollectionDesk  # noqa: E402
from opd_fallback.application.reconcile import reconcile_day  # noqa: E402
from opd_fallback.application.services import CounterService, PaymentInput  # noqa: E402
from opd_fallback.application.share import share_once  # noqa: E402
from opd_fallback.config import load_settings, write_config, write_hub_token, write_token  # noqa: E402
from opd_fallback.domain.clock import today_ist  # noqa: E402
from opd_fallback.domain.errors import DomainError  # noqa: E402
from opd_fallback.store import open_store  # noqa: E402
from opd_fallback.store import shared as shared_store  # noqa: E402
from opd_fallback.sync.client import CentralClient  # noqa: E402
from opd_fallback.sync.engine import SyncEngine  # noqa: E402
from opd_fallback.sync.refresh import refresh_all  # noqa: E402
from tests.helpers.central import run_central  # noqa: E402
from tests.helpers.hub import run_hub  # noqa: E402

REGISTRATION = [f"R{i:02d}" for i in range(1, 9)]
BILLING = [f"B{i:02d}" for i in range(1, 4)]
COLLECTION = [f"L{i:02d}" for i in range(1, 3)]
DEVICES = REGISTRATION + BILLING + COLLECTION
LAB_SHARE = 0.5
REFUSED_SHARE = 0.03
TESTS = [("CBC",), ("CBC", "FBS"), ("LFT", "KFT"), ("CBC", "LFT"), ("FBS",), ("HB", "ESR")]
FIRST = ["Ram", "Sita", "Mohd", "Anita", "Suresh", "Pooja", "Rajesh", "Sunita", "Amit", "Geeta", "Kamla", "Imran"]
LAST = ["Kumar", "Devi", "Ali", "Singh", "Yadav", "Verma", "Gupta", "Khan", "Mishra", "Pandey"]


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    return round(v[min(len(v) - 1, max(0, round(q / 100 * len(v)) - 1))], 3)


@dataclass
class Patient:
    n: int
    arrived: float
    wants_lab: bool
    reg_at: str = ""
    order_ref: str | None = None
    tubes: list[str] = field(default_factory=list)
    registered: float | None = None
    billed: float | None = None
    collected: float | None = None
    waits: int = 0  # times a desk had to wait for the record to arrive through the hub


class Drill:
    def __init__(self, args: argparse.Namespace, base: Path, central: Any, hub: Any) -> None:
        self.args, self.base, self.central, self.hub = args, base, central, hub
        self.speed = args.speed
        self.rnd = random.Random(args.seed)
        self.lock = threading.Lock()
        self.saved_at: dict[str, tuple[str, float]] = {}  # key -> (desk, monotonic save time)
        self.watch: dict[str, set[str]] = {}  # key -> devices it must become visible at
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.queues: dict[str, queue.Queue[Patient | None]] = {d: queue.Queue() for d in DEVICES}
        self.events: list[tuple[float, int, str, Patient]] = []  # (due, tiebreak, desk kind, patient)
        self.ev_lock = threading.Condition()
        self.stop_sharing = threading.Event()
        self.patients: list[Patient] = []
        self.errors: list[str] = []
        self.settings = {d: self._setup(d) for d in DEVICES}
        self.stores = {d: open_store(self.settings[d].db_path) for d in DEVICES}
        self.svc = {d: CounterService(self.stores[d], d) for d in DEVICES}
        self.desks = {d: CollectionDesk(self.stores[d], d, svc=self.svc[d]) for d in COLLECTION}
        self.seen = {d: {"shared": 0, "event": 0} for d in DEVICES}

    def _setup(self, device: str) -> Any:
        data = self.base / device
        s0 = load_settings(data)
        write_config(s0, {"device_id": device, "hospital": "KGMU", "central_url": self.central.url,
                          "hub_url": self.hub.url})
        write_token(s0, self.central.tokens[device])
        write_hub_token(s0, self.hub.tokens[device])
        s = load_settings(data)
        store = open_store(s.db_path)
        try:
            with CentralClient.from_settings(s) as client:
                assert refresh_all(store, client, s, give_up_after_s=20).ok, device
        finally:
            store.close()
        return s

    # ------------------------------------------------------------ time
    def sim(self, seconds: float) -> float:
        """Simulated seconds as real seconds."""
        return seconds / self.speed

    def later(self, delay_sim_s: float, kind: str, p: Patient) -> None:
        with self.ev_lock:
            heapq.heappush(self.events, (time.monotonic() + self.sim(delay_sim_s), p.n, kind, p))
            self.ev_lock.notify()

    def dispatcher(self, done: threading.Event) -> None:
        """Patients arrive at a desk when their walk ends: into the shortest queue there."""
        while True:
            with self.ev_lock:
                while not self.events or self.events[0][0] > time.monotonic():
                    if done.is_set() and not self.events:
                        return
                    self.ev_lock.wait(0.05 if not self.events else max(0.0, self.events[0][0] - time.monotonic()))
                _, _, kind, p = heapq.heappop(self.events)
            desks = {"registration": REGISTRATION, "billing": BILLING, "collection": COLLECTION}[kind]
            d = min(desks, key=lambda x: self.queues[x].qsize() + self.rnd.random() * 0.5)
            self.queues[d].put(p)

    def expect(self, key: str, desk: str, at: list[str]) -> None:
        with self.lock:
            self.saved_at[key] = (desk, time.monotonic())
            self.watch[key] = set(at)

    # ------------------------------------------------------------ desks
    def desk_worker(self, device: str) -> None:
        rnd = random.Random(f"{self.args.seed}-{device}")
        kind = "registration" if device in REGISTRATION else "billing" if device in BILLING else "collection"
        while True:
            p = self.queues[device].get()
            if p is None:
                return
            try:
                if kind == "registration":
                    time.sleep(self.sim(rnd.uniform(8, 12)))  # the clerk types the form
                    self.register(device, p, rnd)
                elif kind == "billing":
                    time.sleep(self.sim(rnd.uniform(5, 9)))
                    self.bill(device, p)
                else:
                    time.sleep(self.sim(rnd.uniform(3, 6)))
                    self.collect(device, p, rnd)
            except Exception as exc:  # a drill reports, it does not stop
                self.errors.append(f"{device}: {type(exc).__name__}: {exc}")

    def register(self, device: str, p: Patient, rnd: random.Random) -> None:
        svc = self.svc[device]
        name = f"{rnd.choice(FIRST)} {rnd.choice(LAST)}"
        reg = svc.register_new("op-" + device, {"name": name, "sex": rnd.choice("MF"), "age_years": rnd.randint(1, 85),
                                                "mobile": f"9{p.n:09d}"},
                               department="MED", payment=PaymentInput(mode="cash", amount_paise=1000))
        p.reg_at, p.registered = device, time.monotonic()
        if not p.wants_lab:
            return
        lab = svc.lab_request("op-" + device, reg.patient.local_ref, reg.visit.local_ref, list(rnd.choice(TESTS)))
        p.order_ref = lab.order.local_ref
        p.tubes = [t["sample_id"] for t in lab.order.extra["samples"]]
        self.expect(p.order_ref, "registration", BILLING)
        self.later(rnd.uniform(60, 240), "billing", p)

    def _until_visible(self, fn: Any, p: Patient) -> Any:
        """Call ``fn`` until the record it needs has come through the hub (the patient waits)."""
        deadline = time.monotonic() + 60
        while True:
            try:
                return fn()
            except DomainError as exc:
                if exc.code not in ("not_found", "unpaid") or time.monotonic() > deadline:
                    raise
                p.waits += 1
                time.sleep(0.05)

    def bill(self, device: str, p: Patient) -> None:
        assert p.order_ref is not None
        svc = self.svc[device]
        res = self._until_visible(lambda: svc.pay_lab_order("op-" + device, p.order_ref or "",
                                                            PaymentInput(mode="cash")), p)
        p.billed = time.monotonic()
        assert res.payment is not None
        self.expect(res.payment.local_ref, "billing", COLLECTION)
        self.later(self.rnd.uniform(60, 180), "collection", p)

    def collect(self, device: str, p: Patient, rnd: random.Random) -> None:
        desk = self.desks[device]
        other = [d for d in COLLECTION if d != device]
        for sid in p.tubes:
            tube = self._until_visible(lambda sid=sid: _paid(desk, sid), p)
            assert tube.sample_id == sid
            if rnd.random() < REFUSED_SHARE:
                done = desk.refuse("op-" + device, sid, "haemolysed")
                self.expect(done.op_id, "collection", [*other, p.reg_at])
                time.sleep(self.sim(rnd.uniform(30, 60)))  # a new draw
            done = desk.collect("op-" + device, sid)
            self.expect(done.op_id, "collection", [*other, p.reg_at])
        p.collected = time.monotonic()

    # ------------------------------------------------------------ the hub
    def sharer(self, device: str) -> None:
        st = self.stores[device]
        woke = threading.Event()  # a save wakes the sharer, as in the counter UI (tui/wiring.py)
        if not self.args.no_wake:
            shared_store.on_new_ops(st, woke.set)
        with self.hub.hub_client(device, deadline_s=10) as client:  # pinned, as after pairing
            while not self.stop_sharing.is_set():
                woke.clear()
                res = share_once(st, client, device)
                now = time.monotonic()
                if res.outcome != "ok":
                    self.errors.append(f"{device} share: {res.message}")
                seen = self.seen[device]
                with st.read() as s:
                    shared = s.execute(text(
                        "SELECT id, local_ref FROM shared_record WHERE id > :i AND kind IN ('lab_order', 'payment')"),
                        {"i": seen["shared"]}).all()
                    events = s.execute(text(
                        "SELECT id, op_id FROM sample_event WHERE id > :i AND source = 'hub'"),
                        {"i": seen["event"]}).all()
                with self.lock:
                    for rid, key in shared:
                        seen["shared"] = max(seen["shared"], int(rid))
                        self._seen(key, device, now)
                    for rid, key in events:
                        seen["event"] = max(seen["event"], int(rid))
                        self._seen(key, device, now)
                woke.wait(self.args.share_interval)

    def _seen(self, key: str, device: str, now: float) -> None:
        want = self.watch.get(key)
        if want is not None and device in want:
            want.discard(device)
            desk, at = self.saved_at[key]
            self.latency[desk].append(now - at)

    # ------------------------------------------------------------ the morning
    def morning(self) -> dict[str, Any]:
        args = self.args
        done_arriving = threading.Event()
        threads = [threading.Thread(target=self.desk_worker, args=(d,), daemon=True) for d in DEVICES]
        threads += [threading.Thread(target=self.sharer, args=(d,), daemon=True) for d in DEVICES]
        disp = threading.Thread(target=self.dispatcher, args=(done_arriving,), daemon=True)
        for t in [*threads, disp]:
            t.start()
        t0 = time.monotonic()
        rate = args.per_hour / 3600 * self.speed  # real arrivals per second
        end = t0 + args.minutes * 60 / self.speed
        n = 0
        while True:
            nxt = self.rnd.expovariate(rate)
            if time.monotonic() + nxt > end:
                break
            time.sleep(nxt)
            n += 1
            p = Patient(n, time.monotonic(), self.rnd.random() < LAB_SHARE)
            self.patients.append(p)
            self.later(0, "registration", p)
        arrivals_s = time.monotonic() - t0
        # the last patients finish their walk (bounded: the longest walk and queue, compressed)
        tail_end = time.monotonic() + self.sim(9 * 60) + 30
        while time.monotonic() < tail_end and not self._all_walked():
            time.sleep(0.2)
        done_arriving.set()
        disp.join(timeout=10)
        for d in DEVICES:
            self.queues[d].put(None)
        for t in threads[:len(DEVICES)]:
            t.join(timeout=60)
        time.sleep(max(2.0, 4 * args.share_interval))  # the last saves travel
        self.stop_sharing.set()
        for t in threads[len(DEVICES):]:
            t.join(timeout=30)
        return {"arrivals_s": round(arrivals_s, 1), "walk_s": round(time.monotonic() - t0, 1)}

    def _all_walked(self) -> bool:
        return all(p.registered is not None and (not p.wants_lab or p.collected is not None) for p in self.patients)

    # ------------------------------------------------------------ central returns
    def drain(self) -> dict[str, Any]:
        self.central.start()
        t0 = time.monotonic()
        drained: dict[str, float] = {}
        rounds: dict[str, int] = defaultdict(int)

        def pending(d: str) -> int:
            with self.stores[d].read() as s:
                return int(s.execute(text("SELECT count(*) FROM op WHERE state = 'pending'")).scalar() or 0)

        def syncer(d: str) -> None:
            with CentralClient.from_settings(self.settings[d]) as client:
                while time.monotonic() - t0 < 300:
                    rounds[d] += 1
                    SyncEngine(self.stores[d], client, self.settings[d], give_up_after_s=20).run()
                    if pending(d) == 0:
                        drained[d] = time.monotonic() - t0
                        return
                    time.sleep(0.5)  # ops deferred: another counter has not synced their reference yet

        threads = [threading.Thread(target=syncer, args=(d,)) for d in DEVICES]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return {"drain_all_s": round(max(drained.values()) if len(drained) == len(DEVICES) else float("nan"), 2),
                "drained": len(drained), "sync_rounds": dict(rounds),
                "drain_s_by_counter": {d: round(v, 2) for d, v in sorted(drained.items())}}

    def reconcile(self) -> dict[str, str]:
        out = {}
        for d in DEVICES:
            with CentralClient.from_settings(self.settings[d]) as client:
                rep = reconcile_day(self.stores[d], client, d, today_ist())
            out[d] = "CLEAN" if rep.status == "clean" else f"{rep.status.upper()}: {'; '.join(rep.reasons())}"
        return out

    def lost_and_doubled(self) -> dict[str, Any]:
        local: dict[str, str] = {}
        states: dict[str, int] = defaultdict(int)
        for d in DEVICES:
            with self.stores[d].read() as s:
                for op_id, kind, state in s.execute(text("SELECT op_id, kind, state FROM op")).all():
                    local[str(op_id)] = str(kind)
                    states[str(state)] += 1
        assert self.central.db_path is not None
        con = sqlite3.connect(self.central.db_path)
        try:
            applied = dict(con.execute("SELECT op_id, kind FROM op_outcome WHERE status = 'applied'").fetchall())
            rows = {"patient.register": con.execute("SELECT count(*) FROM patient").fetchone()[0],
                    "visit.open": con.execute("SELECT count(*) FROM visit").fetchone()[0],
                    "lab.order": con.execute("SELECT count(*) FROM lab_order").fetchone()[0],
                    "payment.record": con.execute("SELECT count(*) FROM payment").fetchone()[0],
                    "lab.sample_collect": con.execute("SELECT count(*) FROM sample_event").fetchone()[0]}
        finally:
            con.close()
        per_kind: dict[str, int] = defaultdict(int)
        for kind in local.values():
            per_kind[kind] += 1
        lost = len(set(local) - set(applied))
        doubled = len(set(applied) - set(local)) + sum(max(0, rows[k] - per_kind.get(k, 0)) for k in rows)
        return {"ops_at_counters": len(local), "ops_applied_centrally": len(applied), "lost": lost,
                "doubled": doubled, "local_states": dict(states), "central_rows": rows, "ops_by_kind": dict(per_kind)}


def _paid(desk: CollectionDesk, sid: str) -> Any:
    tube = desk.tube(sid)
    if not tube.paid:
        raise DomainError.field("sample_id", "not paid yet here", code="unpaid")
    return tube


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=20.0, help="simulated minutes of arrivals")
    ap.add_argument("--speed", type=float, default=10.0, help="time compression (10: ten simulated seconds a second)")
    ap.add_argument("--per-hour", type=int, default=2500, help="patients an hour, hospital-wide")
    ap.add_argument("--share-interval", type=float, default=0.5, help="seconds between a counter's hub exchanges")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--no-wake", action="store_true", help="share by the interval only (a save does not wake)")
    args = ap.parse_args()
    t_start = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp, run_central(Path(tmp), devices=DEVICES) as central, \
            run_hub(Path(tmp), devices=DEVICES) as hub:
        drill = Drill(args, Path(tmp), central, hub)
        central.stop()  # the outage: the morning runs on the LAN alone
        morning = drill.morning()
        drain = drill.drain()
        recon = drill.reconcile()
        ledger = drill.lost_and_doubled()
        for st in drill.stores.values():
            st.close()
    ps = drill.patients
    labs = [p for p in ps if p.wants_lab]
    walked = [p for p in ps if p.registered is not None and (not p.wants_lab or p.collected is not None)]
    desks = {}
    for desk, nxt in (("registration", "billing"), ("billing", "collection"), ("collection", "other desks")):
        lat = drill.latency.get(desk, [])
        expected = sum(len(w) for k, w in drill.watch.items() if drill.saved_at[k][0] == desk) + len(lat)
        desks[desk] = {"visible_at": nxt, "samples": len(lat), "never_seen": expected - len(lat),
                       "p50_s": pct(lat, 50), "p99_s": pct(lat, 99), "max_s": round(max(lat), 3) if lat else None}
    out = {
        "benchmark": "drill",
        "counters": {"registration": len(REGISTRATION), "billing": len(BILLING), "collection": len(COLLECTION)},
        "per_hour": args.per_hour, "speed": args.speed, "simulated_minutes": args.minutes,
        "patients": len(ps), "with_lab": len(labs), "walk_completed": len(walked),
        "walk_completed_with_lab": sum(1 for p in labs if p.collected is not None),
        "waited_for_the_hub": sum(1 for p in ps if p.waits),
        "save_to_visible": desks,
        "morning": morning, "central_returns": drain, "reconcile": recon, "ledger": ledger,
        "errors": drill.errors[:10], "errors_count": len(drill.errors),
        "wall_s": round(time.monotonic() - t_start, 1),
        "goals": {"p99_under_2s": all((d["p99_s"] or 99) < 2.0 for d in desks.values()),
                  "all_clean": all(v == "CLEAN" for v in recon.values()),
                  "lost_0_doubled_0": ledger["lost"] == 0 and ledger["doubled"] == 0},
    }
    print(f"drill: {len(ps)} patients in {args.minutes:g} simulated minutes at {args.per_hour}/h, time x{args.speed:g} "
          f"({morning['arrivals_s']} s of arrivals), central down")
    for desk, d in desks.items():
        print(f"  {desk:12s} save -> visible at {d['visible_at']:11s} p50 {d['p50_s']} s  p99 {d['p99_s']} s  "
              f"(n={d['samples']}, never seen {d['never_seen']})")
    print(f"  walks completed: {len(walked)}/{len(ps)} ({out['walk_completed_with_lab']}/{len(labs)} with lab tests)")
    print(f"central returns: all {drain['drained']}/{len(DEVICES)} counters drained in {drain['drain_all_s']} s")
    print("  reconcile: " + ", ".join(f"{d} {v}" for d, v in recon.items()))
    print(f"  ops lost {ledger['lost']}, doubled {ledger['doubled']} (of {ledger['ops_at_counters']} ops)")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

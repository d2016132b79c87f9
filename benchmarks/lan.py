"""The LAN hub at the morning peak: 14 counters sharing through one hub on loopback.

Every counter saves registrations (each a patient, a visit and a payment: 3 ops)
at its share of the hospital's peak rate (default 2,500 registrations an hour
hospital-wide), and shares with the hub every --interval seconds and at once
after each save (a save wakes the sharer: store/shared.py ``on_new_ops``), as
the counter UI's background worker does (``--no-wake``: by the interval only). For each registration we measure the
time from the save at one counter until it is in the local store of each
other counter ("save-to-found": the patient can be found there). The hub is a
real subprocess; we read its CPU time and peak memory (VmHWM) from /proc.

Goals (issue 13): p99 save-to-found < 2 s, hub peak memory < 200 MB.

Prints one JSON object. Usage:
    python benchmarks/lan.py [--counters 14] [--per-hour 2500] [--duration 90] [--interval 0.5]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from opd_fallback.application.services import CounterService, PaymentInput  # noqa: E402
from opd_fallback.application.share import share_once  # noqa: E402
from opd_fallback.store import open_store  # noqa: E402
from opd_fallback.store import shared as shared_store  # noqa: E402
from tests.helpers.hub import run_hub  # noqa: E402


def proc_stats(pid: int) -> tuple[float, int]:
    """(CPU seconds user+system, peak resident KiB) of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    hwm = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            hwm = int(line.split()[1])
    return cpu, hwm


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(q / 100 * len(values)) - 1))]


def letters(n: int) -> str:
    return "".join(chr(ord("a") + int(c)) for c in str(n))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--counters", type=int, default=14)
    ap.add_argument("--per-hour", type=int, default=2500, help="registrations an hour, hospital-wide")
    ap.add_argument("--duration", type=float, default=90.0, help="seconds of saving")
    ap.add_argument("--interval", type=float, default=0.5, help="seconds between a counter's exchanges")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--no-wake", action="store_true", help="share by the interval only (a save does not wake)")
    args = ap.parse_args()
    devices = [f"C{i:02d}" for i in range(1, args.counters + 1)]
    saved_at: dict[str, float] = {}
    latencies: list[float] = []
    lock = threading.Lock()
    stop = threading.Event()  # sharers
    stop_saving = threading.Event()
    errors: list[str] = []
    exchanges = [0]
    rate_per_counter = args.per_hour / 3600 / args.counters
    with tempfile.TemporaryDirectory() as tmp, run_hub(Path(tmp), devices=devices) as hub:
        assert hub.proc is not None
        cpu0, _ = proc_stats(hub.proc.pid)
        stores = {d: open_store(Path(tmp) / d / "counter.db") for d in devices}

        def saver(dev: str) -> None:
            rnd = random.Random(f"{args.seed}-{dev}")
            svc = CounterService(stores[dev], dev)
            n = 0
            while not stop_saving.wait(rnd.expovariate(rate_per_counter)):
                n += 1
                reg = svc.register_new("op", {"name": f"Patient {letters(n)}", "sex": "F", "age_years": 30},
                                       department="MED", payment=PaymentInput(mode="cash", amount_paise=1000))
                with lock:
                    saved_at[reg.patient.local_ref] = time.monotonic()

        def sharer(dev: str) -> None:
            seen = 0
            woke = threading.Event()
            if not args.no_wake:
                shared_store.on_new_ops(stores[dev], woke.set)
            with hub.hub_client(dev, deadline_s=10) as client:
                while not stop.is_set():
                    woke.clear()
                    res = share_once(stores[dev], client, dev)
                    now = time.monotonic()
                    if res.outcome != "ok":
                        errors.append(res.message)
                    with stores[dev].read() as s:
                        rows = s.execute(text("SELECT id, local_ref FROM shared_record WHERE id > :i AND "
                                              "kind='patient'"), {"i": seen}).all()
                    with lock:
                        exchanges[0] += 1
                        for rid, ref in rows:
                            seen = max(seen, int(rid))
                            if ref in saved_at:
                                latencies.append(now - saved_at[ref])
                    woke.wait(args.interval)

        threads = [threading.Thread(target=f, args=(d,), daemon=True) for d in devices for f in (saver, sharer)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        time.sleep(args.duration)
        stop_saving.set()
        time.sleep(max(3.0, 4 * args.interval))  # let the last saves travel (sharers still run)
        stop.set()
        for t in threads:
            t.join(timeout=30)
        wall = time.monotonic() - t0
        cpu1, hwm_kib = proc_stats(hub.proc.pid)
        for st in stores.values():
            st.close()
    expected = len(saved_at) * (args.counters - 1)
    out = {
        "benchmark": "lan_hub",
        "counters": args.counters,
        "registrations": len(saved_at),
        "ops": len(saved_at) * 3,
        "per_hour_target": args.per_hour,
        "interval_s": args.interval,
        "save_wakes_sharer": not args.no_wake,
        "exchanges": exchanges[0],
        "found_samples": len(latencies),
        "found_expected": expected,
        "not_found": expected - len(latencies),
        "save_to_found_p50_s": round(pct(latencies, 50), 3),
        "save_to_found_p99_s": round(pct(latencies, 99), 3),
        "save_to_found_max_s": round(max(latencies), 3) if latencies else None,
        "save_to_found_mean_s": round(statistics.fmean(latencies), 3) if latencies else None,
        "hub_cpu_s": round(cpu1 - cpu0, 2),
        "hub_cpu_share_of_one_core": round((cpu1 - cpu0) / wall, 3),
        "hub_peak_rss_mb": round(hwm_kib / 1024, 1),
        "wall_s": round(wall, 1),
        "errors": errors[:5],
        "goals": {"p99_under_2s": pct(latencies, 99) < 2.0, "hub_memory_under_200mb": hwm_kib / 1024 < 200},
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

"""The real sync client against a minimal batched client: how close to the floor?

A generated day at one counter (default 4,000 patients: registration, visit
and fee each, a lab order with its payment for 40%, ~15,000 ops, written
through the real services by ``tests/sync/daygen.py``) is sent, in the same
run, to the reference central server (a real process on 127.0.0.1, SQLite) by

- **the real client**: ``opd-fallback sync --json`` in its own process on a
  fresh copy of the counter's database, against a fresh server database. Its
  time is the engine's run as the command reports it (``started_unix`` to
  ``finished_unix``: lease, ``devices/me``, reading the outbox, every batch
  and every booking, the outcome in ``meta``); Python's start and imports are
  reported apart (``wall_s``), since the floor has none;
- **the floor**: a minimal client in this process (plain ``httpx``, one
  keep-alive connection, 500-op batches sent one after another, the bodies
  built from the counter's outbox before the clock starts, no store: it
  books nothing) sending the same op envelopes to another fresh server
  database.

The two alternate, ``--runs`` times each (a new server per run); the ratio is
the median of each pair's ``real ops/s / floor ops/s``. Peak memory is the
real client process's ``VmHWM`` (read from /proc while it runs). CPU seconds
are reported for each client (the real one's include its Python start and
imports, about a second) and for the server during the timed part: on a
shared two-core machine the real client's own work (reading the outbox,
booking every answer in the counter's encrypted database) competes with the
server for the cores, which the floor's does not, so the ratio falls as the
load average rises; read it with the load printed beside it.

Exit 1 if the ratio is below 0.9 or the peak memory is 200 MB or more.

Usage: python benchmarks/sync_floor.py [--patients 4000] [--runs 5] [--quick]
``--quick`` is a 600-patient day, 3 runs: seconds. Days are cached in
``--cache`` (default: $TMPDIR/opd-sync-bench).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from sync_day import GEN_VERSION, _generate, _hwm_mb, counter_dir, sync_process  # noqa: E402

from opd_fallback.domain.contract import MAX_BATCH_OPS  # noqa: E402
from opd_fallback.store import open_store  # noqa: E402
from opd_fallback.sync.batching import load_pending  # noqa: E402
from tests.helpers.central import CentralHandle, run_central  # noqa: E402

DEVICE = "C07"
MIN_RATIO = 0.9
MAX_RSS_MB = 200.0


def day(cache: Path, patients: int) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"v{GEN_VERSION}-day-{patients}-{DEVICE}.db"
    if not path.exists():
        print(f"generating a day of {patients} patients into {path} (once)...", file=sys.stderr)
        _generate(str(path), DEVICE, patients, 1, "9")
    return path


def floor_bodies(day_db: Path, base: Path) -> list[bytes]:
    """The day's envelopes, in seq order, as 500-op request bodies (from a copy: the cache stays untouched)."""
    work = base / "floor-counter.db"
    shutil.copy(day_db, work)
    store = open_store(work)
    with store.read() as s:
        ops = load_pending(s)
    store.close()
    return [b'{"ops":[' + b",".join(op.body for op in ops[i:i + MAX_BATCH_OPS]) + b"]}"
            for i in range(0, len(ops), MAX_BATCH_OPS)]


def floor_run(base: Path, bodies: list[bytes], ops: int) -> dict[str, float]:
    with run_central(base, devices=(DEVICE,)) as central, httpx.Client(
        base_url=central.api, headers={**central.headers(DEVICE), "content-type": "application/json"}, timeout=60
    ) as http:
        http.get("/health").raise_for_status()  # the connection is open before the clock starts
        server_cpu = _cpu_s(_server_pid(central))
        t0, cpu0 = time.perf_counter(), time.process_time()
        applied = 0
        for body in bodies:
            r = http.post("/ops:batch", content=body)
            r.raise_for_status()
            applied += sum(1 for res in orjson.loads(r.content)["results"] if res["status"] == "applied")
        dt, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        server_cpu = _cpu_s(_server_pid(central)) - server_cpu
    if applied != ops:
        raise SystemExit(f"floor: {applied} of {ops} ops applied")
    return {"seconds": dt, "ops_per_s": ops / dt, "client_cpu_s": cpu, "server_cpu_s": server_cpu}


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a live process so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _server_pid(central: CentralHandle) -> int:
    assert central.proc is not None
    return central.proc.pid


def real_run(base: Path, day_db: Path, ops: int) -> dict[str, float]:
    """``opd-fallback sync --json`` in its own process; its peak RSS read from /proc while it runs
    (a forked child's ru_maxrss would count this process's pages), its CPU from wait4."""
    with run_central(base / "central", devices=(DEVICE,)) as central:
        data = counter_dir(base, "counter", day_db, DEVICE, central)
        server_cpu = _cpu_s(_server_pid(central))
        t0 = time.perf_counter()
        proc = sync_process(data)
        peak = 0.0
        while True:
            peak = max(peak, _hwm_mb(proc.pid))
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            time.sleep(0.01)
        wall = time.perf_counter() - t0
        server_cpu = _cpu_s(_server_pid(central)) - server_cpu
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        out = proc.stdout.read() if proc.stdout else b""
        err = proc.stderr.read() if proc.stderr else b""
    try:
        summary = orjson.loads(out)
    except orjson.JSONDecodeError:
        raise SystemExit(f"sync printed no JSON (exit {code}):\n{out[-2000:]!r}\n{err[-2000:]!r}") from None
    if code != 0 or summary["applied"] != ops:
        raise SystemExit(f"real client: exit {code}, {summary['applied']} of {ops} ops applied: {summary}")
    dt = summary["finished_unix"] - summary["started_unix"]
    return {"seconds": dt, "ops_per_s": ops / dt, "wall_s": wall, "peak_rss_mb": peak, "batches": summary["batches"],
            "client_cpu_s": usage.ru_utime + usage.ru_stime, "server_cpu_s": server_cpu}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--patients", type=int, default=4000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="a 600-patient day, 3 runs")
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "opd-sync-bench")
    args = ap.parse_args()
    if args.quick:
        args.patients, args.runs = 600, 3
    day_db = day(args.cache, args.patients)
    load_before = os.getloadavg()
    floors: list[dict[str, float]] = []
    reals: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as d:
        base = Path(d)
        bodies = floor_bodies(day_db, base)
        ops = sum(body.count(b'{"op_id":') for body in bodies)
        for i in range(args.runs):  # alternate which goes first, so neither always meets a warmer machine
            pair = [("floor", lambda b: floors.append(floor_run(b, bodies, ops))),
                    ("real", lambda b: reals.append(real_run(b, day_db, ops)))]
            for name, run in pair if i % 2 == 0 else pair[::-1]:
                work = base / f"{name}-{i}"
                work.mkdir()
                run(work)
    ratios = [r["ops_per_s"] / f["ops_per_s"] for r, f in zip(reals, floors)]
    ratio = statistics.median(ratios)
    rss = max(r["peak_rss_mb"] for r in reals)

    def stats(runs: list[dict[str, float]]) -> dict[str, float]:
        rates = [r["ops_per_s"] for r in runs]
        return {"best_ops_per_s": round(max(rates)), "median_ops_per_s": round(statistics.median(rates)),
                "median_seconds": round(statistics.median(r["seconds"] for r in runs), 3),
                "median_client_cpu_s": round(statistics.median(r["client_cpu_s"] for r in runs), 3),
                "median_server_cpu_s": round(statistics.median(r["server_cpu_s"] for r in runs), 3)}

    result = {
        "benchmark": "sync_floor",
        "patients": args.patients,
        "ops": ops,
        "runs": args.runs,
        "cpus": os.cpu_count(),
        "load_avg_before": [round(x, 2) for x in load_before],
        "load_avg_after": [round(x, 2) for x in os.getloadavg()],
        "real_client": {**stats(reals), "median_wall_s_incl_process_start": round(
            statistics.median(r["wall_s"] for r in reals), 3), "batches": reals[0]["batches"],
            "peak_rss_mb": round(rss, 1)},
        "floor_client": stats(floors),
        "ratio_per_pair": [round(x, 3) for x in ratios],
        "ratio_median": round(ratio, 3),
        "ratio_best_to_best": round(max(r["ops_per_s"] for r in reals) / max(f["ops_per_s"] for f in floors), 3),
        "targets": {f"ratio_at_least_{MIN_RATIO}": ratio >= MIN_RATIO, f"peak_rss_under_{MAX_RSS_MB:.0f}mb":
                    rss < MAX_RSS_MB},
    }
    print(json.dumps(result, indent=2))
    return 0 if all(result["targets"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())

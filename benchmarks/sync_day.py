"""How fast a day of queued work reaches central: ``opd-fallback sync`` end to end.

A generated day (default 10,000 patients: registration, visit and fee each; a
lab order with its payment for 40%: ~38,000 ops, written through the real
services) is synced by the real CLI in its own process to the reference server
on 127.0.0.1, and compared, in the same run, with

- a naive client posting one op per request, sequentially, committing each
  answer (measured on the first ``--naive-sample`` ops of the same day);
- the server's own in-process ingest ceiling (``benchmarks/central_ingest.py``:
  the applier on its SQLite file, no HTTP, no JSON);
- 20 counters (the same number of patients split between them) syncing at
  once against one server.

Prints one JSON object. Targets: whole day < 15 s, >= 10x naive, >= 0.5 of the
ceiling, peak memory of the sync process < 200 MB.

Usage: python benchmarks/sync_day.py [--patients 10000] [--counters 20] [--naive-sample 2000]
Generated days are cached in ``--cache`` (default: $TMPDIR/opd-sync-bench) since
writing 38,000 ops through the services takes a minute or two.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from sqlalchemy import text  # noqa: E402

from opd_fallback.config import load_settings, write_config, write_token  # noqa: E402
from opd_fallback.domain.clock import now_iso, today_ist  # noqa: E402
from opd_fallback.store import open_store  # noqa: E402
from opd_fallback.sync.batching import load_pending  # noqa: E402
from tests.helpers.central import CentralHandle, run_central  # noqa: E402
from tests.sync.daygen import new_counter  # noqa: E402
from tests.sync.daygen import summary as day_summary  # noqa: E402

GEN_VERSION = 1  # bump when daygen changes what it writes


def _generate(path: str, device: str, patients: int, seed: int, prefix: str) -> str:
    tmp = Path(path + ".part")
    tmp.unlink(missing_ok=True)
    for suffix in ("-wal", "-shm"):
        Path(str(tmp) + suffix).unlink(missing_ok=True)
    store, _ = new_counter(tmp, device, patients, seed=seed, mobile_prefix=prefix)
    store.close()  # the last connection closing checkpoints the WAL into the file
    if Path(str(tmp) + "-wal").exists():
        raise RuntimeError(f"{tmp}: WAL left behind")
    os.replace(tmp, path)
    return path


def cached_days(cache: Path, patients: int, counters: int) -> tuple[Path, list[Path]]:
    """The big day (C07) and ``counters`` small days (C01..), generated once, two at a time."""
    cache.mkdir(parents=True, exist_ok=True)
    big = cache / f"v{GEN_VERSION}-day-{patients}-C07.db"
    per = max(1, patients // counters)
    small = [cache / f"v{GEN_VERSION}-day-{per}-K{i:02d}.db" for i in range(1, counters + 1)]
    jobs = []
    if not big.exists():
        jobs.append((str(big), "C07", patients, 1, "9"))
    for i, p in enumerate(small, start=1):
        if not p.exists():
            jobs.append((str(p), f"K{i:02d}", per, 100 + i, "678"[i % 3]))
    if jobs:
        print(f"generating {len(jobs)} counter day(s) into {cache} (once)...", file=sys.stderr)
        with ProcessPoolExecutor(max_workers=2) as pool:
            list(pool.map(_generate, *zip(*jobs)))
    return big, small


def counter_dir(base: Path, name: str, day_db: Path, device: str, central: CentralHandle) -> Path:
    data = base / name
    data.mkdir(parents=True)
    shutil.copy(day_db, data / "counter.db")
    s = load_settings(data)
    write_config(s, {"device_id": device, "hospital": "KGMU", "central_url": central.url})
    write_token(s, central.tokens[device])
    return data


def sync_process(data: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPD_")}
    return subprocess.Popen([sys.executable, "-m", "opd_fallback", "--data-dir", str(data), "sync", "--json"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _hwm_mb(pid: int) -> float:
    """Peak resident memory of a live process since its exec (VmHWM), in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def wait_all(procs: list[subprocess.Popen[bytes]]) -> list[tuple[dict[str, Any], int, float]]:
    """Each sync's JSON summary, exit status and peak RSS in MB. The peak is read
    from /proc while it runs: a forked child's ru_maxrss would include this
    (big) parent's pages."""
    peaks = {p.pid: 0.0 for p in procs}
    codes: dict[int, int] = {}
    while len(codes) < len(procs):
        for p in procs:
            if p.pid in codes:
                continue
            peaks[p.pid] = max(peaks[p.pid], _hwm_mb(p.pid))
            pid, status, _ = os.wait4(p.pid, os.WNOHANG)
            if pid:
                codes[p.pid] = os.waitstatus_to_exitcode(status)
                p.returncode = codes[p.pid]
        time.sleep(0.01)
    out = []
    for p in procs:
        stdout = p.stdout.read() if p.stdout else b""
        stderr = p.stderr.read() if p.stderr else b""
        try:
            summary = orjson.loads(stdout)
        except orjson.JSONDecodeError:
            raise SystemExit(f"sync printed no JSON (exit {codes[p.pid]}):\n{stdout[-2000:]!r}\n{stderr[-2000:]!r}") from None
        out.append((summary, codes[p.pid], peaks[p.pid]))
    return out


def engine_run(base: Path, day_db: Path, ops: int) -> dict[str, Any]:
    with run_central(base / "engine-central", devices=("C07",)) as central:
        data = counter_dir(base, "engine", day_db, "C07", central)
        t0 = time.perf_counter()
        summary, code, rss = wait_all([sync_process(data)])[0]
        wall = time.perf_counter() - t0
        with httpx.Client(base_url=central.api, headers=central.headers("C07"), timeout=60) as http:
            rec = http.get("/reconciliation", params={"date": today_ist().isoformat(), "device_id": "C07"}).json()
    store = open_store(data / "counter.db")
    local = day_summary(store)
    store.close()
    assert code == 0 and summary["applied"] == ops, summary
    assert rec["ops_applied"] == ops and rec["payments"]["total_paise"] == local.payments_paise, rec
    return {
        "seconds_end_to_end": round(wall, 3),
        "seconds_sync": round(summary["elapsed_s"], 3),
        "ops_per_s_end_to_end": round(ops / wall),
        "ops_per_s_sync": round(ops / summary["elapsed_s"]),
        "batches": summary["batches"],
        "peak_rss_mb": round(rss, 1),
        "exit_code": code,
        "server_payments_equal_counter": rec["payments"]["total_paise"] == local.payments_paise,
    }


def naive_run(base: Path, day_db: Path, sample: int) -> dict[str, Any]:
    """One op per POST, in seq order, each answer committed on its own: what a
    straightforward client does."""
    work = base / "naive"
    work.mkdir()
    shutil.copy(day_db, work / "counter.db")
    store = open_store(work / "counter.db")
    with store.read() as s:
        ops = load_pending(s)[:sample]
    with run_central(base / "naive-central", devices=("C07",)) as central, httpx.Client(
        base_url=central.api, headers=central.headers("C07"), timeout=60
    ) as http:
        t0 = time.perf_counter()
        for op in ops:
            r = http.post("/ops:batch", content=b'{"ops":[' + op.body + b"]}",
                          headers={"content-type": "application/json"})
            r.raise_for_status()
            res = r.json()["results"][0]
            assert res["status"] == "applied", res
            with store.write() as s:
                s.execute(text("UPDATE op SET state='synced', last_status=:st, result=:r, synced_at=:now "
                               "WHERE op_id=:i"), {"st": res["status"], "r": orjson.dumps(res["result"]).decode(),
                                                   "now": now_iso(), "i": op.op_id})
        dt = time.perf_counter() - t0
    store.close()
    return {"ops": len(ops), "seconds": round(dt, 3), "ops_per_s": round(len(ops) / dt)}


def ceiling(patients: int, base: Path) -> dict[str, Any]:
    import central_ingest  # benchmarks/central_ingest.py (the central part's benchmark)

    ops = central_ingest.workload(patients)
    return {"ops": len(ops), **central_ingest.in_process(ops, 500, base)}


def many_counters(base: Path, days: list[Path]) -> dict[str, Any]:
    devices = [f"K{i:02d}" for i in range(1, len(days) + 1)]
    with run_central(base / "many-central", devices=devices) as central:
        dirs = [counter_dir(base, f"many-{d}", day, d, central) for d, day in zip(devices, days)]
        t0 = time.perf_counter()
        procs = [sync_process(d) for d in dirs]
        results = wait_all(procs)
        wall = time.perf_counter() - t0
    ops = sum(r[0]["applied"] + r[0]["duplicate"] for r in results)
    codes = sorted({r[1] for r in results})
    # the sync phase alone: from the first counter's start of work to the last one's end
    # (20 processes starting Python at once on this box's 2 cores is not what 20 counters do)
    phase = max(r[0]["finished_unix"] for r in results) - min(r[0]["started_unix"] for r in results)
    return {
        "counters": len(days),
        "ops": ops,
        "seconds": round(wall, 3),
        "ops_per_s": round(ops / wall),
        "sync_phase_seconds": round(phase, 3),
        "sync_phase_ops_per_s": round(ops / phase),
        "exit_codes": codes,
        "retries": sum(r[0]["retries"] for r in results),
        "slowest_counter_s": round(max(r[0]["elapsed_s"] for r in results), 3),
        "peak_rss_mb_max": round(max(r[2] for r in results), 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--patients", type=int, default=10_000)
    ap.add_argument("--counters", type=int, default=20)
    ap.add_argument("--naive-sample", type=int, default=2000)
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "opd-sync-bench")
    args = ap.parse_args()
    big, small = cached_days(args.cache, args.patients, args.counters)
    store = open_store(big)
    day = day_summary(store)
    store.close()
    with tempfile.TemporaryDirectory() as d:
        base = Path(d)
        top = ceiling(args.patients, base / "ceiling")
        eng = engine_run(base, big, day.ops)
        naive = naive_run(base, big, args.naive_sample)
        many = many_counters(base, small)
    result = {
        "benchmark": "sync_day",
        "patients": args.patients,
        "ops": day.ops,
        "cpus": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "engine": eng,
        "naive_one_op_per_request": naive,
        "server_in_process_ceiling": top,
        "twenty_counters": many,
        "ratios": {
            "vs_naive": round(eng["ops_per_s_end_to_end"] / naive["ops_per_s"], 1),
            "vs_ceiling": round(eng["ops_per_s_sync"] / top["ops_per_s"], 2),
            "vs_ceiling_incl_process_start": round(eng["ops_per_s_end_to_end"] / top["ops_per_s"], 2),
            "twenty_counters_vs_one": round(many["ops_per_s"] / eng["ops_per_s_end_to_end"], 2),
            "twenty_counters_vs_one_sync_phase": round(many["sync_phase_ops_per_s"] / eng["ops_per_s_sync"], 2),
        },
        "targets": {
            "whole_day_under_15s": eng["seconds_end_to_end"] < 15,
            "at_least_10x_naive": eng["ops_per_s_end_to_end"] >= 10 * naive["ops_per_s"],
            "at_least_half_ceiling": eng["ops_per_s_sync"] >= 0.5 * top["ops_per_s"],
            "peak_memory_under_200mb": eng["peak_rss_mb"] < 200,
        },
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

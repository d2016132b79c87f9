"""How fast the reference central server applies ops: the ceiling the sync engine is measured against.

A day of a busy OPD (default 10,000 patients: register, visit and fee each; 40%
also a lab order and its payment, ~38,000 ops), split over ``--counters``
counters (default 4), is applied

- the RFC 8785 canonicalisation alone (library vs fast path, µs an op and ops/s);
- in process: the applier on its own SQLite file, batches of 500 (no HTTP, no JSON);
- over HTTP, the counters pushing at the same time, each on its own keep-alive
  connection, batches of 500 one after the other (as the sync engine does), to:
  SQLite (one server process), and PostgreSQL with 1, 2 and 4 uvicorn workers
  (a throwaway PostgreSQL started here with its default, durable settings:
  fsync on, as SQLite runs with synchronous=FULL). Each PostgreSQL figure is
  also given as a ratio to the SQLite figure of the same run. Each setup runs
  ``--rounds`` times (default 3, interleaved) on a fresh database and the
  median is reported: on a shared 2-core machine one run alone says little.

Prints one JSON object. Usage:
  python benchmarks/central_ingest.py [--patients N] [--counters 4] [--batch 500] [--workers 1,2,4] [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from opd_fallback.central.apply import Applier  # noqa: E402
from opd_fallback.central.db import create_schema, open_db  # noqa: E402
from opd_fallback.central.master import load_master  # noqa: E402
from opd_fallback.central.sample_ops import OpFactory  # noqa: E402
from tests.helpers.central import run_central  # noqa: E402
from tests.helpers.postgres import running_postgres, why_unavailable  # noqa: E402


def workload(patients: int, counters: int) -> dict[str, list[dict]]:
    return {f"C{i + 1:02d}": OpFactory(device_id=f"C{i + 1:02d}").day_of_opd(patients // counters)
            for i in range(counters)}


def in_process(ops: list[dict], batch: int, tmp: Path) -> dict:
    url = f"sqlite:///{tmp / 'inproc.db'}"
    create_schema(url)
    conn = open_db(url)
    conn.execute("INSERT INTO device(device_id, token_hash, created_at, max_seq, ops_applied) "
                 "VALUES ('C01', 'x', 'now', 0, 0)")
    applier = Applier(conn, load_master())
    t0 = time.perf_counter()
    statuses: dict[str, int] = {}
    for i in range(0, len(ops), batch):
        for r in applier.apply_batch("C01", ops[i : i + batch]):
            statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    dt = time.perf_counter() - t0
    conn.close()
    return {"seconds": round(dt, 3), "ops_per_s": round(len(ops) / dt), "statuses": statuses}


def canonicalisation(ops: list[dict], rounds: int = 3) -> dict:
    """The idempotency input of every op (domain/contract.canonical_op), by the
    rfc8785 library alone and by the fast path (domain/canonical.py), the same
    ops in the same run: µs an op and ops/s, the best of ``rounds``."""
    import rfc8785

    from opd_fallback.domain import canonical
    from opd_fallback.domain.contract import drop_nulls

    values = [drop_nulls(o["payload"], keep_in="changes" if o["kind"] == "patient.update" else None) for o in ops]
    out: dict[str, dict[str, float]] = {}
    for name, fn in (("rfc8785_library", rfc8785.dumps), ("fast_path", canonical.dumps)):
        best = float("inf")
        for _ in range(rounds):
            t0 = time.perf_counter()
            for v in values:
                fn(v)
            best = min(best, time.perf_counter() - t0)
        out[name] = {"us_per_op": round(best / len(values) * 1e6, 2), "ops_per_s": round(len(values) / best)}
    out["speedup"] = {"x": round(out["rfc8785_library"]["us_per_op"] / out["fast_path"]["us_per_op"], 1)}
    return out


def over_http(work: dict[str, list[dict]], batch: int, tmp: Path, **server: object) -> dict:
    bodies = {d: [orjson.dumps({"ops": ops[i : i + batch]}) for i in range(0, len(ops), batch)]
              for d, ops in work.items()}
    statuses: dict[str, int] = {}
    errors: list[str] = []
    lock = threading.Lock()
    tmp.mkdir(parents=True, exist_ok=True)
    with run_central(tmp, devices=list(work), max_in_flight=256, **server) as central:  # type: ignore[arg-type]

        def push(device: str) -> None:
            mine: dict[str, int] = {}
            with httpx.Client(base_url=central.api, headers=central.headers(device), timeout=300) as http:
                http.get("/health")
                start.wait()
                for body in bodies[device]:
                    r = http.post("/ops:batch", content=body, headers={"content-type": "application/json"})
                    if r.status_code != 200:
                        errors.append(f"{device}: HTTP {r.status_code} {r.text[:200]}")
                        return
                    for x in orjson.loads(r.content)["results"]:
                        mine[x["status"]] = mine.get(x["status"], 0) + 1
            with lock:
                for k, v in mine.items():
                    statuses[k] = statuses.get(k, 0) + v

        start = threading.Event()
        threads = [threading.Thread(target=push, args=(d,)) for d in work]
        for t in threads:
            t.start()
        time.sleep(0.5)  # every client connected and warm
        t0 = time.perf_counter()
        start.set()
        for t in threads:
            t.join()
        dt = time.perf_counter() - t0
    n = sum(len(ops) for ops in work.values())
    if errors:
        raise SystemExit("; ".join(errors[:3]))
    return {"seconds": round(dt, 3), "ops_per_s": round(n / dt), "statuses": statuses}


def median_run(runs: list[dict]) -> dict:
    """The run with the median ops/s, and every round's figure beside it."""
    ordered = sorted(runs, key=lambda r: r["ops_per_s"])
    return {**ordered[len(ordered) // 2], "rounds_ops_per_s": [r["ops_per_s"] for r in runs]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--patients", type=int, default=10_000)
    ap.add_argument("--counters", type=int, default=4)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--workers", default="1,2,4", help="PostgreSQL worker counts to measure")
    ap.add_argument("--rounds", type=int, default=3, help="runs of each setup; the median is reported")
    ap.add_argument("--skip-http", action="store_true")
    ap.add_argument("--skip-postgres", action="store_true")
    args = ap.parse_args()
    work = workload(args.patients, args.counters)
    every = [o for ops in work.values() for o in ops]
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        result: dict = {
            "benchmark": "central_ingest",
            "patients": args.patients,
            "counters": args.counters,
            "ops": len(every),
            "batch": args.batch,
            "cpus": os.cpu_count(),
            "load_avg_1m": round(os.getloadavg()[0], 2),
            "canonicalisation": canonicalisation(every),
            "in_process_sqlite": in_process(work["C01"], args.batch, tmp),
        }
        if not args.skip_http:
            reason = "skipped by --skip-postgres" if args.skip_postgres else why_unavailable()
            workers = [] if reason else [int(w) for w in args.workers.split(",")]
            runs: dict[str, list[dict]] = {}
            with contextlib.ExitStack() as stack:
                pg = None if reason else stack.enter_context(running_postgres(fsync=True))
                # rounds interleave the setups, so a busy moment of a shared machine hits all alike
                for r in range(args.rounds):
                    runs.setdefault("http_sqlite_1_process", []).append(
                        over_http(work, args.batch, tmp / f"sqlite{r}"))
                    for n in workers:
                        assert pg is not None
                        runs.setdefault(f"http_postgresql_{n}_workers", []).append(over_http(
                            work, args.batch, tmp / f"pg{n}-{r}", database_url=pg.create_database("bench"),
                            workers=n))
            for name, got in runs.items():
                result[name] = median_run(got)
            sqlite = result["http_sqlite_1_process"]["ops_per_s"]
            for n in workers:
                one = result[f"http_postgresql_{n}_workers"]
                one["ratio_to_sqlite"] = round(one["ops_per_s"] / sqlite, 2)
            if reason:
                result["postgresql"] = f"not measured: {reason}"
        result["load_avg_1m_after"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""How fast the reference central server applies ops: the ceiling the sync engine is measured against.

A day of a busy OPD (default 10,000 patients: register, visit and fee each; 40%
also a lab order and its payment, ~38,000 ops) is applied

- in process: the applier on its own SQLite file, batches of 500 (no HTTP, no JSON);
- over HTTP: the server in a subprocess on 127.0.0.1 (uvicorn), batches of 500
  POSTed one after the other on one keep-alive connection, as the sync engine does.

Prints one JSON object. Usage: python benchmarks/central_ingest.py [--patients N] [--batch 500]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from opd_fallback.central.apply import Applier  # noqa: E402
from opd_fallback.central.db import connect, create_schema  # noqa: E402
from opd_fallback.central.master import load_master  # noqa: E402
from opd_fallback.central.sample_ops import OpFactory  # noqa: E402
from tests.helpers.central import run_central  # noqa: E402


def workload(patients: int, device: str = "C07") -> list[dict]:
    return OpFactory(device_id=device).day_of_opd(patients)


def in_process(ops: list[dict], batch: int, tmp: Path) -> dict:
    db = tmp / "inproc.db"
    create_schema(db)
    conn = connect(db)
    conn.execute("INSERT INTO device(device_id, token_hash, created_at, max_seq, ops_applied) VALUES ('C07', 'x', 'now', 0, 0)")
    applier = Applier(conn, load_master())
    t0 = time.perf_counter()
    statuses: dict[str, int] = {}
    for i in range(0, len(ops), batch):
        for r in applier.apply_batch("C07", ops[i : i + batch]):
            statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    dt = time.perf_counter() - t0
    conn.close()
    return {"seconds": round(dt, 3), "ops_per_s": round(len(ops) / dt), "statuses": statuses}


def over_http(ops: list[dict], batch: int, tmp: Path) -> dict:
    bodies = [orjson.dumps({"ops": ops[i : i + batch]}) for i in range(0, len(ops), batch)]
    statuses: dict[str, int] = {}
    with run_central(tmp / "http") as central:
        with httpx.Client(base_url=central.api, headers=central.headers("C07"), timeout=120) as http:
            http.get("/health")
            t0 = time.perf_counter()
            for body in bodies:
                r = http.post("/ops:batch", content=body, headers={"content-type": "application/json"})
                r.raise_for_status()
                for x in orjson.loads(r.content)["results"]:
                    statuses[x["status"]] = statuses.get(x["status"], 0) + 1
            dt = time.perf_counter() - t0
            replay_t0 = time.perf_counter()
            r = http.post("/ops:batch", content=bodies[0], headers={"content-type": "application/json"})
            replay = time.perf_counter() - replay_t0
    return {
        "seconds": round(dt, 3),
        "ops_per_s": round(len(ops) / dt),
        "batches": len(bodies),
        "ms_per_batch": round(dt / len(bodies) * 1000, 1),
        "replay_batch_ms": round(replay * 1000, 1),
        "statuses": statuses,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--patients", type=int, default=10_000)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--skip-http", action="store_true")
    args = ap.parse_args()
    ops = workload(args.patients)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        result = {
            "benchmark": "central_ingest",
            "patients": args.patients,
            "ops": len(ops),
            "batch": args.batch,
            "cpus": os.cpu_count(),
            "load_avg_1m": round(os.getloadavg()[0], 2),
            "in_process": in_process(ops, args.batch, tmp),
        }
        if not args.skip_http:
            result["http"] = over_http(ops, args.batch, tmp)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

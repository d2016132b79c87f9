"""Patient search at a million patients in central's index (store/search.py):
a whole mobile (the floor: one lookup on the mobile index), the last 4 and the
last 6 digits (the tail index of schema 8), the first 5 digits (a range on the
mobile index), a name's start (FTS5) and a misspelt name, each through
``search()`` as the UI and ``find`` call it; for comparison, the last digits as
the search did them before (``LIKE '%digits'``, a scan).

    .venv/bin/python benchmarks/patient_search.py [--patients 1000000] [--json]

Prints p50/p99 (ms) and each p50 as a ratio to the floor's. Target: a part of
a mobile within 10x the whole mobile's lookup, and p99 < 50 ms.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FIRST = ["Ram", "Shyam", "Geeta", "Sita", "Mohd", "Anil", "Sunita", "Rakesh", "Pooja", "Vijay", "Kamla", "Arjun"]
LAST = ["Kumar", "Devi", "Singh", "Verma", "Yadav", "Ali", "Gupta", "Mishra", "Khan", "Pandey", "Tiwari"]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def seed(db: Path, patients: int) -> list[str]:
    from opd_fallback.store import patient_index
    from opd_fallback.store.engine import open_store

    store = open_store(db)
    rnd = random.Random(7)
    mobiles: list[str] = []
    chunk = 50_000
    for start in range(0, patients, chunk):
        rows = []
        for i in range(start, min(patients, start + chunk)):
            mobile = f"{rnd.choice('6789')}{rnd.randrange(10**9):09d}"
            mobiles.append(mobile)
            rows.append({"uhid": f"KGMU-{i:08d}", "name": f"{rnd.choice(FIRST)} {rnd.choice(LAST)}",
                         "sex": rnd.choice("MF"), "age_years": rnd.randint(0, 90), "guardian_name": rnd.choice(FIRST),
                         "mobile": mobile, "district": "Lucknow", "version": 1, "updated_at": None})
        with store.write() as s:
            patient_index.upsert_many(s, rows)
    store.close()
    return mobiles


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--patients", type=int, default=1_000_000)
    ap.add_argument("--lookups", type=int, default=200)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    from sqlalchemy import text

    from opd_fallback.store.engine import open_store
    from opd_fallback.store.search import search

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "counter.db"
        t0 = time.perf_counter()
        mobiles = seed(db, args.patients)
        seeded_s = time.perf_counter() - t0
        store = open_store(db)
        rnd = random.Random(11)
        picks = [rnd.choice(mobiles) for _ in range(args.lookups)]
        cases = {
            "whole mobile (floor)": lambda m: m,
            "last 4 digits": lambda m: m[-4:],
            "last 6 digits": lambda m: m[-6:],
            "first 5 digits": lambda m: m[:5],
            "name start": lambda m: rnd.choice(FIRST).lower() + " " + rnd.choice(LAST)[:2].lower(),
            "misspelt name": lambda m: "suneeta",
        }
        out: dict[str, dict[str, float]] = {}
        found_all = True
        with store.read() as s:
            for case, query_of in cases.items():
                times = []
                for m in picks:
                    q = query_of(m)
                    t = time.perf_counter()
                    hits = search(s, q)
                    times.append((time.perf_counter() - t) * 1000)
                    if case.endswith("digits") or case.startswith("whole"):
                        found_all &= any(h.mobile == m for h in hits) or len(hits) == 20
                out[case] = {"p50_ms": round(pct(times, 50), 2), "p99_ms": round(pct(times, 99), 2)}
            times = []
            for m in picks[:20]:  # the scan the search did before schema 8 (slow: fewer of them)
                t = time.perf_counter()
                s.execute(text("SELECT uhid FROM patient_index WHERE mobile LIKE :s LIMIT 20"),
                          {"s": "%" + m[-4:]}).all()
                times.append((time.perf_counter() - t) * 1000)
            out["last 4 digits, LIKE scan (before)"] = {"p50_ms": round(pct(times, 50), 2),
                                                        "p99_ms": round(pct(times, 99), 2)}
        store.close()
    floor = max(out["whole mobile (floor)"]["p50_ms"], 0.01)
    for v in out.values():
        v["ratio_to_floor"] = round(v["p50_ms"] / floor, 1)
    result = {"patients": args.patients, "seeded_s": round(seeded_s, 1), "lookups": args.lookups,
              "each_found_its_patient": found_all, "cases": out}
    if args.json:
        print(json.dumps(result))
        return
    print(f"{args.patients} patients in the index (seeded in {seeded_s:.0f} s), {args.lookups} lookups per case")
    for case, v in out.items():
        print(f"  {case:<36} p50 {v['p50_ms']:>8.2f} ms  p99 {v['p99_ms']:>8.2f} ms  x{v['ratio_to_floor']}")
    print(f"  every mobile lookup found its patient (or a full page): {found_all}")


if __name__ == "__main__":
    main()

"""Back-entry import speed: rows per second for a file of N slips.

    .venv/bin/python benchmarks/import_rows.py [--rows 2000 20000] [--json]

Each file is imported into a fresh counter database (real SQLite file, WAL,
synchronous=FULL) with master data and the writing operator set up; a quarter
of the rows also order a lab test with its payment, like a real OPD day.
Target: at least 1,000 rows/s.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HEADER = ("slip_no,visit_date,recorded_at,operator_id,name,name_local,sex,age_years,mobile,department,"
          "fee_paise,fee_mode,lab_tests,lab_paise,lab_mode,lab_items")


def letters(i: int) -> str:
    out = ""
    while True:
        i, r = divmod(i, 26)
        out = chr(97 + r) + out
        if i == 0:
            return out.capitalize()


def write_file(path: Path, rows: int) -> None:
    lines = [HEADER]
    for i in range(rows):
        lab = ",CBC;LFT,55000,cash,CBC:15000;LFT:40000" if i % 4 == 0 else ",,,,"
        lines.append(f"{i + 1},2026-11-20,{9 + i % 8:02d}:{i % 60:02d},writer1,Ram {letters(i)},राम,M,"
                     f"{i % 90},98{i % 100_000_000:08d},MED,1000,cash{lab}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def run(rows: int) -> dict[str, float]:
    from opd_fallback.application.backentry import import_file
    from opd_fallback.store.engine import open_store
    from opd_fallback.store.operators import add_operator
    from tests.conftest import put_master_data

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        store = open_store(d / "counter.db")
        put_master_data(store)
        add_operator(store, "importer", "Importing Clerk", "123456")
        add_operator(store, "writer1", "Slip Writer", "123456")
        path = d / "slips.csv"
        write_file(path, rows)
        t0, c0 = time.perf_counter(), time.process_time()
        report = import_file(store, "C07", path, imported_by="importer", today=date(2026, 11, 26))
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        store.close()
    assert report.count("imported") == rows, [str(p) for r in report.rejected[:3] for p in r.problems]
    return {"rows": rows, "seconds": round(elapsed, 2), "rows_per_s": round(rows / elapsed),
            "cpu_seconds": round(cpu, 2), "rows_per_cpu_s": round(rows / cpu)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[2000, 20000])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    results = [run(n) for n in args.rows]
    if args.json:
        print(json.dumps(results))
        return
    for r in results:
        print(f"import {r['rows']:>6} rows: {r['seconds']:>6.2f} s, {r['rows_per_s']:>5} rows/s "
              f"(CPU {r['cpu_seconds']:.2f} s, {r['rows_per_cpu_s']} rows per CPU second)")


if __name__ == "__main__":
    main()

"""Back-entry import speed: rows per second for files of 4,000 and 50,000 slips,
a dry run of each, and the peak memory of each.

    .venv/bin/python benchmarks/import_rows.py [--quick] [--rows 4000 50000] [--dry-run-rows N ...]
        [--memory-rows N ...] [--memory-import-rows N ...] [--json]

Each run is its own process (peak memory is that process's ``ru_maxrss``, and on
Linux the peak while importing, counted from just before ``import_file``): the
file is imported into a fresh counter database (real file, WAL,
synchronous=FULL) with master data and the writing operator set up; a quarter
of the rows also order a lab test with its payment, like a real OPD day.
``--quick`` runs 1,000 and 4,000 rows. The dry runs are of every size unless
``--dry-run-rows`` names others (``--dry-run-rows`` with no size: none). ``--memory-rows N`` adds a dry run of N
rows (``--memory-import-rows N``: an import; ``--memory-rejected-rows N``: an
import of N rows all rejected, the report's worst case) held to the memory goal only, e.g.
``--rows 4000 --dry-run-rows --memory-rows 1000000`` for the peak of a dry run
of a million rows (a 95 MB file; about 10 minutes). On a
shared machine read the rows per CPU second too: the wall rate counts time the
process waited for a core.

Goals (exit 1 when one is missed): at least 1,000 rows/s at every size and in
the dry run; the largest size at least 0.9 of the smallest's rate (no slowdown
as the database grows); peak memory below 300 MB at every size (memory is bounded by a batch, not the file).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import resource
import subprocess
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


def write_file(path: Path, rows: int, writer: str = "writer1") -> None:
    """The file written a line at a time (never held whole: the peak memory is the import's)."""
    with path.open("w", encoding="utf-8") as f:
        f.write(HEADER + "\n")
        for i in range(rows):
            lab = ",CBC;LFT,55000,cash,CBC:15000;LFT:40000" if i % 4 == 0 else ",,,,"
            f.write(f"{i + 1},2026-11-20,{9 + i % 8:02d}:{i % 60:02d},{writer},Ram {letters(i)},राम,M,"
                    f"{i % 90},98{i % 100_000_000:08d},MED,1000,cash{lab}\n")


def run(rows: int, dry_run: bool = False, rejected: bool = False) -> dict[str, float]:
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
        write_file(path, rows, "nobody" if rejected else "writer1")  # an unknown writer: every row rejected
        setup_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # before reset_peak, which resets it too
        reset_peak()
        t0, c0 = time.perf_counter(), time.process_time()
        report = import_file(store, "C07", path, imported_by="importer", today=date(2026, 11, 26), dry_run=dry_run)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        store.close()
    want = "rejected" if rejected else "would_import" if dry_run else "imported"
    assert report.count(want) == rows, [str(p) for r in report.rejected[:3] for p in r.problems]
    return {"rows": rows, "dry_run": dry_run, "all_rejected": rejected, "seconds": round(elapsed, 2), "rows_per_s": round(rows / elapsed),
            "cpu_seconds": round(cpu, 2), "rows_per_cpu_s": round(rows / cpu),
            "peak_mb": max(round(setup_kib / 1024), peak_since_reset()), "import_peak_mb": peak_since_reset()}


def reset_peak() -> None:
    """Linux: the peak resident memory counted again from now (the PIN hash of the
    setup, argon2, takes ~100 MB for a moment and would hide the import's own peak)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def peak_since_reset() -> int:
    """MB: the peak resident memory since ``reset_peak`` (the process's peak where /proc has no VmHWM)."""
    try:
        found = re.search(r"VmHWM:\s+(\d+) kB", Path("/proc/self/status").read_text())
    except OSError:
        found = None
    kib = int(found.group(1)) if found else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(kib / 1024)


def run_apart(rows: int, dry_run: bool, rejected: bool = False) -> dict[str, float]:
    """``run`` in a process of its own, so its peak memory is its own."""
    cmd = [sys.executable, __file__, "--child", str(rows)] + (["--dry-run"] if dry_run else []) + (
        ["--rejected"] if rejected else [])
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=3600).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


GOAL_ROWS_PER_S = 1000
GOAL_SAME_RATE = 0.9
GOAL_PEAK_MB = 300


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=None)
    ap.add_argument("--quick", action="store_true", help="1,000 and 4,000 rows")
    ap.add_argument("--dry-run-rows", type=int, nargs="*", default=None, help="sizes of the dry runs")
    ap.add_argument("--memory-rows", type=int, nargs="*", default=[], help="dry runs held to the memory goal only")
    ap.add_argument("--memory-import-rows", type=int, nargs="*", default=[],
                    help="imports held to the memory goal only")
    ap.add_argument("--memory-rejected-rows", type=int, nargs="*", default=[],
                    help="imports of rows all rejected (the report's and rejects file's worst case), memory goal only")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--dry-run", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--rejected", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(run(args.child, args.dry_run, args.rejected)))
        return
    sizes = args.rows or ([1000, 4000] if args.quick else [4000, 50000])
    dry = sizes if args.dry_run_rows is None else args.dry_run_rows
    results = [run_apart(n, False) for n in sizes] + [run_apart(n, True) for n in dry]
    missed = [f"{'dry run' if r['dry_run'] else 'import'} of {r['rows']} rows: {r['rows_per_s']} rows/s"
              for r in results if r["rows_per_s"] < GOAL_ROWS_PER_S]
    results += [run_apart(n, True) for n in args.memory_rows] + [run_apart(n, False) for n in args.memory_import_rows]
    results += [run_apart(n, False, rejected=True) for n in args.memory_rejected_rows]
    same = results[len(sizes) - 1]["rows_per_s"] / results[0]["rows_per_s"]
    same_cpu = results[len(sizes) - 1]["rows_per_cpu_s"] / results[0]["rows_per_cpu_s"]  # less moved by load
    if same < GOAL_SAME_RATE:
        missed.append(f"{sizes[-1]} rows ran at {same:.2f} of the rate of {sizes[0]} rows")
    missed += [f"{r['rows']} rows peaked at {r['peak_mb']} MB" for r in results if r["peak_mb"] >= GOAL_PEAK_MB]
    if args.json:
        print(json.dumps({"results": results, "same_rate": round(same, 2), "same_cpu_rate": round(same_cpu, 2),
                          "missed": missed}))
    else:
        for r in results:
            label = "dry run" if r["dry_run"] else "rejects" if r.get("all_rejected") else "import "
            print(f"{label} {r['rows']:>6} rows: {r['seconds']:>7.2f} s, "
                  f"{r['rows_per_s']:>5} rows/s (CPU {r['cpu_seconds']:.2f} s, {r['rows_per_cpu_s']} rows per CPU "
                  f"second), peak {r['peak_mb']} MB (while importing {r['import_peak_mb']} MB)")
        print(f"rate at {sizes[-1]} rows / rate at {sizes[0]} rows: {same:.2f} (per CPU second: {same_cpu:.2f})")
        for m in missed:
            print(f"below goal: {m}")
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()

"""Reconcile a 10,000-patient day (~38,000 ops) against the reference server on 127.0.0.1.

The day is written through the real services (tests/sync/daygen.py), synced
with the real sync engine, then reconciled three times: clean (summary and
digest only); after the server "loses" 200 payments (every central op_id
page fetched, every op classified); and after 2,000 answers are "lost"
(applied centrally, pending here: each costs one GET /ops/{op_id}, about
1 ms on a loaded 2-core box, then they are marked synced in 500-op
transactions, never resent). Prints JSON figures; exits 1 if a reconciliation
takes 10 s or more or finds the wrong thing.

    .venv/bin/python benchmarks/reconcile_day.py [--patients 10000] [--lost 200] [--cache DIR]

Writing 10,000 patients through the services takes minutes on a busy machine,
so the freshly generated (unsynced) counter database is kept in ``--cache``
and reused by later runs; the day reconciled is the day its ops were recorded.
The generated day prices some OPD fees off the list on purpose, so even the
clean run reports payment warnings (exit 1) while its digests match.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from opd_fallback.application.reconcile import reconcile_day  # noqa: E402
from opd_fallback.store import open_store  # noqa: E402
from opd_fallback.sync.client import CentralClient  # noqa: E402
from opd_fallback.sync.engine import sync_once  # noqa: E402
from tests.helpers.central import run_central  # noqa: E402
from tests.sync.daygen import new_counter  # noqa: E402
from tests.sync.daygen import summary as day_summary  # noqa: E402

LIMIT_S = 10.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=10_000)
    ap.add_argument("--lost", type=int, default=200, help="payments the server loses for the second run")
    ap.add_argument("--unacked", type=int, default=2000,
                    help="ops whose answers are 'lost' (marked pending again locally) for the third run")
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "opd-fallback-bench",
                    help="where the generated day is kept between runs")
    args = ap.parse_args()
    figures: dict[str, object] = {"patients": args.patients}
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        cached = args.cache / f"reconcile-day-{args.patients}.db"
        t = time.perf_counter()
        if not cached.exists():
            args.cache.mkdir(parents=True, exist_ok=True)
            gen, _ = new_counter(args.cache / "generating.db", "C07", args.patients)
            gen.close()
            from opd_fallback.cipher import custody
            from opd_fallback.store.backup import _copy

            key = custody.key_for(args.cache / "generating.db")  # encrypted (SQLCipher): copied with its key
            _copy(args.cache / "generating.db", cached, key)
            custody.adopt(cached, key)
            for f in args.cache.glob("generating.db*"):
                f.unlink()
            figures["generate_s"] = round(time.perf_counter() - t, 2)
        else:
            figures["generate_s"] = "cached"
        shutil.copy(cached, tmp / "counter.db")
        store = open_store(tmp / "counter.db")
        day = day_summary(store)
        with store.read() as s:
            first = s.exec(text("SELECT recorded_at FROM op ORDER BY seq LIMIT 1")).one()[0]  # type: ignore[call-overload]
        the_day = date.fromisoformat(first[:10])
        figures.update(ops=day.ops, payments=day.payments, day=the_day.isoformat())
        with run_central(tmp) as central, CentralClient(central.url, central.tokens["C07"]) as client:
            t = time.perf_counter()
            summary = sync_once(store, client, give_up_after_s=120)
            figures["sync_s"] = round(time.perf_counter() - t, 2)
            if summary.synced != day.ops:
                print(json.dumps({**figures, "error": f"sync left ops: {summary.as_dict()}"}))
                return 1

            t = time.perf_counter()
            clean = reconcile_day(store, client, "C07", the_day)
            figures["reconcile_clean_s"] = round(time.perf_counter() - t, 3)
            figures["clean_exit_code"] = clean.exit_code
            figures["clean_digests_match"] = clean.digests_match
            figures["clean_payment_warnings"] = len(clean.payment_warnings)

            conn = sqlite3.connect(central.db_path)
            lost = [r[0] for r in conn.execute(
                "SELECT op_id FROM payment ORDER BY random() LIMIT ?", (args.lost,))]
            with conn:
                for table in ("op_outcome", "payment", "ref_map"):
                    conn.executemany(f"DELETE FROM {table} WHERE op_id=?", [(i,) for i in lost])
            conn.close()
            t = time.perf_counter()
            full = reconcile_day(store, client, "C07", the_day)
            figures["reconcile_full_s"] = round(time.perf_counter() - t, 3)
            figures["full_pages"] = full.central_pages
            figures["full_missing_found"] = len(full.missing_centrally)
            figures["full_exit_code"] = full.exit_code

            # third run: answers lost for a slice of the day (applied centrally, pending here)
            with store.write() as s:
                s.exec(text(  # type: ignore[call-overload]
                    "UPDATE op SET state='pending', synced_at=NULL WHERE op_id IN "
                    "(SELECT op_id FROM op WHERE state='synced' AND op_id NOT IN (SELECT value FROM json_each(:lost)) "
                    "ORDER BY random() LIMIT :n)").bindparams(n=args.unacked, lost=json.dumps(lost)))
            applied_before = client.device_me().ops_applied
            t = time.perf_counter()
            lost_answers = reconcile_day(store, client, "C07", the_day)
            figures["reconcile_unacked_s"] = round(time.perf_counter() - t, 3)
            figures["unacked_marked_synced"] = len(lost_answers.marked_synced)
            figures["unacked_applied_twice"] = client.device_me().ops_applied - applied_before
        store.close()
    slowest = max(float(figures[k]) for k in ("reconcile_clean_s", "reconcile_full_s", "reconcile_unacked_s"))  # type: ignore[arg-type]
    ok = (bool(clean.digests_match) and not clean.differences_found and full.exit_code == 1
          and len(full.missing_centrally) == len(lost)
          and len(lost_answers.marked_synced) == args.unacked and figures["unacked_applied_twice"] == 0
          and slowest < LIMIT_S)
    figures["limit_s"] = LIMIT_S
    figures["ok"] = ok
    print(json.dumps(figures))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

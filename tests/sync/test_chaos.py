"""Chaos: the real `opd-fallback sync` process SIGKILLed at random moments and
restarted, against the reference server with every fault on at once (503s and
maintenance bursts, 429 with Retry-After from a low in-flight cap, responses
lost after commit, connection resets, latency), while the counter keeps
recording. In the end central holds exactly the counter's ops, each once,
every central id is stored back, and the money matches to the paisa.

Run with ``make chaos`` (``pytest -m chaos``).
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from opd_fallback.application.reconcile import central_op_ids
from opd_fallback.domain.clock import today_ist
from opd_fallback.domain.contract import op_ids_digest
from opd_fallback.store import open_store
from opd_fallback.sync.client import CentralClient
from tests.helpers import db as db_helper
from tests.helpers.central import run_central

from .daygen import FIRST, LAST, make_day

KILLS = 24
MAX_KILLS = 60
ROOT = Path(__file__).resolve().parents[2]


def _sync_cmd(data: Path) -> list[str]:
    return [sys.executable, "-m", "opd_fallback", "--data-dir", str(data), "sync", "--json", "--give-up-after", "60"]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPD_")}
    env.update({"OPD_BATCH_SIZE": "50", "OPD_BATCHES_IN_FLIGHT": "3", "PYTHONUNBUFFERED": "1"})
    return env


def _synced(db: Path) -> int:
    with db_helper.connect(db) as c:
        return int(c.execute("SELECT count(*) FROM op WHERE state = 'synced'").fetchone()[0])


def _pending(db: Path) -> int:
    with db_helper.connect(db) as c:
        return int(c.execute("SELECT count(*) FROM op WHERE state != 'synced'").fetchone()[0])


@pytest.mark.chaos
@pytest.mark.timeout(900)
def test_sigkilled_sync_under_faults_applies_everything_exactly_once(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from opd_fallback.cli import app

    rng = random.Random(20261126)
    data = tmp_path / "counter"
    with run_central(tmp_path, fail_rate=0.12, lost_response_rate=0.15, reset_rate=0.08, latency_ms=25,
                     max_in_flight=2, seed=7) as central:
        r = CliRunner().invoke(app, ["--data-dir", str(data), "init", "--device", "C07", "--hospital", "KGMU",
                                     "--server", central.url, "--token", central.tokens["C07"]])
        assert r.exit_code == 0, r.output
        db = data / "counter.db"
        store = open_store(db)
        make_day(store, "C07", 400, seed=1, mobile_prefix="8")
        killed_mid_run = killed_while_syncing = 0
        log = (tmp_path / "sync.log").open("ab")
        # kill until enough kills landed with batches in flight: how long a sync takes to reach its
        # first batch depends on the machine's load, so the number of kills is not fixed in advance
        for n in range(MAX_KILLS):
            if killed_mid_run >= KILLS and killed_while_syncing >= 10:
                break
            before = _synced(db)
            proc = subprocess.Popen(_sync_cmd(data), env=_env(), cwd=ROOT, stdout=log, stderr=log)
            if n % 6 == 3:  # a maintenance burst: every request 503 for a moment
                central.maintenance(True)
                threading.Timer(rng.uniform(0.5, 1.5), central.maintenance, args=(False,)).start()
            time.sleep(rng.uniform(0.6, 2.5))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                killed_mid_run += 1
                killed_while_syncing += _synced(db) > before and _pending(db) > 0
            proc.wait()
            # the counter keeps working while syncs come and go
            _more(store, n)
        central.maintenance(False)
        assert killed_mid_run >= 20
        assert killed_while_syncing >= 10  # killed with batches in flight, not just while starting up
        # finally let it finish (faults still on)
        for _ in range(6):
            done = subprocess.run(_sync_cmd(data), env=_env(), cwd=ROOT, stdout=log, stderr=log, timeout=300)
            if done.returncode == 0:
                break
        assert done.returncode == 0, (tmp_path / "sync.log").read_text()[-3000:]
        log.close()

        with store.read() as s:
            local_ids = [r[0] for r in s.execute(text("SELECT op_id FROM op"))]
            states = dict(s.execute(text("SELECT state, count(*) FROM op GROUP BY state")).all())
            pay_n, pay_total = s.execute(text("SELECT count(*), sum(amount_paise) FROM payment")).one()
            local_receipts = {r[0] for r in s.execute(text("SELECT central_id FROM payment"))}
            local_visits = {r[0] for r in s.execute(text("SELECT central_id FROM visit"))}
            local_orders = {r[0] for r in s.execute(text("SELECT central_id FROM lab_order"))}
            local_uhids = {r[0] for r in s.execute(text("SELECT uhid FROM patient"))}
            n_patients = s.execute(text("SELECT count(*) FROM patient")).scalar()
        store.close()
        assert states == {"synced": len(local_ids)}
        assert len(local_ids) > 3000

        central.restart()  # faults off to read the verdict
        with CentralClient(central.url, central.tokens["C07"]) as client:
            rec = client.reconciliation(today_ist().isoformat(), "C07")
            server_ids, _pages = central_op_ids(client, today_ist().isoformat(), "C07")
        assert rec.ops_applied == len(local_ids) == len(server_ids) == len(set(server_ids))
        assert set(server_ids) == set(local_ids)
        assert rec.op_ids_sha256 == op_ids_digest(local_ids)
        assert rec.payments.count == pay_n and rec.payments.total_paise == pay_total  # to the paisa

        with sqlite3.connect(central.db_path) as c:
            q = lambda sql: c.execute(sql).fetchall()  # noqa: E731
            for table in ("patient", "visit", "lab_order", "payment"):
                dupes = q(f"SELECT op_id FROM {table} WHERE device_id='C07' GROUP BY op_id HAVING count(*) > 1")
                assert dupes == [], f"{table} applied twice"
            assert {r[0] for r in q("SELECT receipt_id FROM payment WHERE device_id='C07'")} == local_receipts
            assert q("SELECT sum(amount_paise) FROM payment WHERE device_id='C07'")[0][0] == pay_total
            assert {r[0] for r in q("SELECT visit_id FROM visit WHERE device_id='C07'")} == local_visits
            assert {r[0] for r in q("SELECT order_id FROM lab_order WHERE device_id='C07'")} == local_orders
            assert {r[0] for r in q("SELECT uhid FROM patient WHERE device_id='C07'")} == local_uhids
            assert len(local_uhids) == n_patients and None not in local_uhids


def _more(store: object, n: int) -> None:
    """About 150 more ops recorded at the counter between two kills."""
    from opd_fallback.application.services import CounterService, PaymentInput

    svc = CounterService(store, "C07")  # type: ignore[arg-type]
    for i in range(40):
        reg = svc.register_new("op-3", {"name": f"{FIRST[n % len(FIRST)]} {LAST[i % len(LAST)]}", "sex": "F", "age_years": 20 + i % 50},
                               department="MED", payment=PaymentInput(mode="cash"))
        if i % 3 == 0:
            svc.lab_request("op-3", reg.patient.local_ref, reg.visit.local_ref, ["CBC"],
                            payment=PaymentInput(mode="upi", mode_ref=f"UTR{n:03d}{i:06d}"))

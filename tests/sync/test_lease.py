"""Only one sync per database: the SQLite lease."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

import pytest
from sqlalchemy import text

from opd_fallback.store import Store
from opd_fallback.store import lease as leases
from opd_fallback.sync.client import CentralClient
from opd_fallback.sync.engine import SyncEngine


def _put(store: Store, *, holder: str, pid: int, host: str, expires_at: float) -> None:
    with store.write() as s:
        s.execute(text("INSERT OR REPLACE INTO lease(name, holder, pid, host, acquired_at, expires_at) "
                       "VALUES ('sync', :h, :p, :host, '2026-11-26T10:00:00+05:30', :x)"),
                  {"h": holder, "p": pid, "host": host, "x": expires_at})


def test_second_acquire_is_refused_and_says_who(store: Store) -> None:
    with leases.acquire(store, holder="tui"):
        with pytest.raises(leases.LeaseHeld) as info:
            leases.acquire(store, holder="cli")
        words = str(info.value)
        assert "tui" in words and f"pid {os.getpid()}" in words and socket.gethostname() in words
    with leases.acquire(store, holder="cli"):  # released on exit
        assert leases.holder_of(store).holder == "cli"  # type: ignore[union-attr]
    assert leases.holder_of(store) is None


def test_dead_holder_on_this_host_is_taken_over(store: Store) -> None:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(proc.stdout)
    _put(store, holder="crashed-sync", pid=dead_pid, host=socket.gethostname(), expires_at=time.time() + 600)
    with leases.acquire(store, holder="me") as held:
        assert leases.holder_of(store).holder == "me"  # type: ignore[union-attr]
        assert not held.lost


def test_live_holder_elsewhere_is_respected_until_expiry(store: Store) -> None:
    _put(store, holder="other-pc", pid=os.getppid(), host="some-other-host", expires_at=time.time() + 600)
    with pytest.raises(leases.LeaseHeld):
        leases.acquire(store, holder="me")
    assert leases.holder_of(store).holder == "other-pc"  # type: ignore[union-attr]
    _put(store, holder="other-pc", pid=os.getppid(), host="some-other-host", expires_at=time.time() - 1)
    with leases.acquire(store, holder="me"):
        assert leases.holder_of(store).holder == "me"  # type: ignore[union-attr]


def test_a_holder_whose_lease_was_taken_over_learns_it_lost(store: Store) -> None:
    with leases.acquire(store, holder="me", ttl_s=0.3) as held:
        _put(store, holder="other-pc", pid=os.getppid(), host="some-other-host", expires_at=time.time() + 600)
        deadline = time.monotonic() + 3
        while not held.lost and time.monotonic() < deadline:
            time.sleep(0.02)
        assert held.lost
    assert leases.holder_of(store).holder == "other-pc"  # type: ignore[union-attr]  # release left theirs alone


def test_waits_for_the_holder_to_finish(store: Store) -> None:
    first = leases.acquire(store, holder="first")
    threading.Timer(0.3, first.release).start()
    t0 = time.monotonic()
    with leases.acquire(store, holder="second", wait_s=5, poll_s=0.05):
        assert time.monotonic() - t0 >= 0.25


def test_renewed_while_held(store: Store) -> None:
    with leases.acquire(store, holder="me", ttl_s=0.3):
        time.sleep(0.8)
        info = leases.holder_of(store)
        assert info is not None and info.expires_at > time.time()
        with pytest.raises(leases.LeaseHeld):
            leases.acquire(store, holder="other")


def test_engine_reports_busy_with_exit_4(store: Store) -> None:
    with leases.acquire(store, holder="background-sync"):
        with CentralClient("http://127.0.0.1:9", "t") as client:
            summary = SyncEngine(store, client).run()
    assert summary.outcome == "busy" and summary.exit_code == 4
    assert "background-sync" in summary.message


def test_busy_sync_reports_the_real_queue(store: Store) -> None:
    """``sync --json`` while another sync runs once said still_waiting 0 with ops pending."""
    from pathlib import Path

    from typer.testing import CliRunner

    from opd_fallback.application.services import CounterService, PaymentInput
    from opd_fallback.cli import app
    from opd_fallback.config import load_settings, write_config, write_token

    svc = CounterService(store, "C07")
    for i in range(3):
        svc.register_new("op-1", {"name": "Asha Verma " + "ABC"[i], "sex": "F", "age_years": 30}, department="MED",
                         payment=PaymentInput(mode="cash", amount_paise=1000))
    with store.read() as s:
        pending = int(s.execute(text("SELECT count(*) FROM op WHERE state='pending'")).scalar() or 0)
    assert pending >= 6
    data = Path(store.path).parent
    settings = load_settings(data)
    write_config(settings, {"device_id": "C07", "hospital": "KGMU", "central_url": "http://127.0.0.1:9"})
    write_token(settings, "tok")
    with leases.acquire(store, holder="background-sync"):
        r = CliRunner().invoke(app, ["--data-dir", str(data), "sync", "--json"])
    import orjson

    out = orjson.loads(r.stdout)
    assert r.exit_code == 4 and out["outcome"] == "busy"
    assert out["still_waiting"] == pending and out["needs_person"] == 0

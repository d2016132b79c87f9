"""``make demo`` / ``python -m opd_fallback.cli.demo``: a whole counter on one machine.

Starts the reference central server (demo master data) on 127.0.0.1 in a
subprocess, registers a demo device, sets up the counter in ./demo-data with
a demo operator (id ``demo``, PIN ``1234``) and a supervisor (``super``, PIN
``999999``), refreshes master data and id blocks, and opens the counter. The
server stops when the counter quits.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

DEVICE = "C01"
HOSPITAL = "KGMU (demo)"
OPERATOR = ("demo", "Demo Operator", "1234", "operator")
SUPERVISOR = ("super", "Demo Supervisor", "999999", "supervisor")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_up(url: str, token: str, proc: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    from opd_fallback.sync.client import CentralClient

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the central server stopped (exit {proc.returncode}); see demo-data/central.log")
        try:
            with CentralClient(url, token, connect_timeout=1.0, read_timeout=2.0) as client:
                client.health()
            return
        except Exception:  # not up yet
            pass
        time.sleep(0.2)  # not in tui/: a plain start-up loop
    raise SystemExit("the central server did not come up in time; see demo-data/central.log")


def main(root: Path | None = None) -> int:
    from opd_fallback.central.db import add_device
    from opd_fallback.config import load_settings, write_config, write_token
    from opd_fallback.domain.errors import DomainError
    from opd_fallback.store.engine import open_store
    from opd_fallback.store.operators import add_operator
    from opd_fallback.sync.client import CentralClient
    from opd_fallback.sync.refresh import refresh_all
    from opd_fallback.tui.wiring import app_from_settings

    root = (root or Path.cwd() / "demo-data").resolve()
    root.mkdir(parents=True, exist_ok=True)
    central_db = root / "central.db"
    counter_dir = root / "counter"
    port = _free_port()
    url = f"http://127.0.0.1:{port}"

    token = add_device(central_db, DEVICE)
    # a terminal closed under us (SIGTERM/SIGHUP) still stops the server below
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: sys.exit(0))
    log = open(root / "central.log", "ab")  # noqa: SIM115 - handed to the child process, closed at exit
    proc = subprocess.Popen(
        [sys.executable, "-m", "opd_fallback.central", "serve", "--db", str(central_db),
         "--host", "127.0.0.1", "--port", str(port)],
        stdout=log, stderr=log, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        _wait_up(url, token, proc)
        settings = load_settings(counter_dir)
        write_config(settings, {"device_id": DEVICE, "hospital": HOSPITAL, "central_url": url,
                                "printer": "file", "language": "en"})
        write_token(settings, token)
        settings = load_settings(counter_dir)
        store = open_store(settings.db_path)
        for op_id, name, pin, role in (OPERATOR, SUPERVISOR):
            try:
                add_operator(store, op_id, name, pin, role=role, actor="demo")
            except DomainError:
                pass  # already there from an earlier demo run
        with CentralClient.from_settings(settings) as client:
            summary = refresh_all(store, client, settings, give_up_after_s=15.0)
        store.close()
        print(f"central on {url}; counter {DEVICE} in {counter_dir}; refreshed: {summary}", file=sys.stderr)
        print("log in as 'demo' with PIN 1234 (supervisor: 'super', PIN 999999); prints go to "
              f"{settings.print_dir}", file=sys.stderr)
        app_from_settings(settings).run()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    return 0


if __name__ == "__main__":
    import os

    os.umask(0o077)  # as the real entry point: the demo's files are owner-only too
    raise SystemExit(main())

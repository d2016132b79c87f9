"""Run the reference central server in a subprocess for tests (real HTTP on 127.0.0.1).

Usage::

    from tests.helpers.central import run_central

    def test_something(tmp_path):
        with run_central(tmp_path, devices=("C07", "L02"), lost_response_rate=1.0, seed=3) as central:
            central.url                 # "http://127.0.0.1:PORT"  (no /api/v1)
            central.api                 # "http://127.0.0.1:PORT/api/v1"
            central.tokens["C07"]       # bearer token of device C07
            central.headers("C07")      # {"Authorization": "Bearer ..."}
            with central.client("C07") as http:   # httpx.Client on .api with the token
                http.get("/health")
            central.restart(fail_rate=0.5)        # same DB, same port, new faults
            central.maintenance(True)             # flips the flag in the server's DB
            central.database_url                  # sqlite:///... or postgresql+psycopg://...
            central.db_path                       # the server's SQLite file (None on PostgreSQL)
            central.query("SELECT ...", params)   # rows, on either database
            central.execute("UPDATE ...", params) # one write, committed

The database is SQLite unless ``database_url`` is given, or a test set
``DEFAULT_BACKEND`` (tests/central's conftest does, to run every contract test
on SQLite and on PostgreSQL).

Faults are the ``serve`` options as keyword arguments: ``fail_rate``,
``lost_response_rate``, ``reset_rate``, ``latency_ms``, ``seed``,
``max_in_flight``, ``dev_docs=True``. The server's stderr goes to ``central.log_path``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from opd_fallback.central.db import add_device, create_schema, database, open_db, set_maintenance
from opd_fallback.domain.contract import API_PREFIX
from tests.helpers import forkserver
from tests.helpers.ports import free_port
from tests.helpers.postgres import PostgresServer

START_TIMEOUT_S = 30.0
_OPTIONS = ("fail_rate", "lost_response_rate", "reset_rate", "latency_ms", "seed", "max_in_flight", "workers",
            "dev_docs")


@dataclass(frozen=True)
class Backend:
    """Which database engine a test's central server runs on."""

    name: str  # "sqlite" | "postgresql"
    postgres: PostgresServer | None = None

    def new_database_url(self, tmp_path: Path, db_name: str = "central.db") -> str:
        if self.postgres is None:
            return f"sqlite:///{Path(tmp_path) / db_name}"
        return self.postgres.create_database()


SQLITE = Backend("sqlite")
DEFAULT_BACKEND: Backend = SQLITE  # tests/central's conftest switches it per test




@dataclass
class CentralHandle:
    """A running (or stopped) central server subprocess over one database."""

    database_url: str
    port: int
    log_path: Path
    master_data: Path | None = None
    faults: dict[str, Any] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    flaw: str | None = None  # a deliberate flaw (tests/helpers/broken_central.py), for the conformance kit

    @property
    def db_path(self) -> Path | None:
        return database(self.database_url).sqlite_path

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Rows of a read-only query (``?`` parameters) on the server's database."""
        conn = open_db(self.database_url)
        try:
            return [tuple(r) for r in conn.execute(sql, params).fetchall()]
        finally:
            conn.close()

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        """One write (``?`` parameters) on the server's database, committed at once."""
        conn = open_db(self.database_url)
        try:
            conn.execute(sql, params)
        finally:
            conn.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api(self) -> str:
        return self.url + API_PREFIX

    def headers(self, device: str = "C07") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[device]}"}

    def client(self, device: str = "C07", **kw: Any) -> httpx.Client:
        """An httpx client on ``.api`` carrying the device's token."""
        kw.setdefault("timeout", 30.0)
        return httpx.Client(base_url=self.api, headers=self.headers(device), **kw)

    def add_device(self, device: str) -> str:
        """Register another device while running; returns (and remembers) its token."""
        self.tokens[device] = add_device(self.database_url, device)
        return self.tokens[device]

    def maintenance(self, on: bool) -> None:
        set_maintenance(self.database_url, on)

    def command(self) -> list[str]:
        main = ["opd_fallback.central"] if self.flaw is None else ["tests.helpers.broken_central", self.flaw]
        cmd = [sys.executable, "-m", *main, "serve", "--database-url", self.database_url,
               "--host", "127.0.0.1", "--port", str(self.port)]
        if self.master_data is not None:
            cmd += ["--master-data", str(self.master_data)]
        for key, value in self.faults.items():
            if key not in _OPTIONS:
                raise TypeError(f"unknown central option {key!r}; known: {', '.join(_OPTIONS)}")
            if isinstance(value, bool):  # a flag
                cmd += ["--" + key.replace("_", "-")] if value else []
            elif value is not None:
                cmd += ["--" + key.replace("_", "-"), str(value)]
        return cmd

    def start(self) -> None:
        if self.proc is not None:
            raise RuntimeError("already running")
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPD_CENTRAL_")}
        env["PYTHONUNBUFFERED"] = "1"
        cmd = self.command()
        log = self.log_path.open("ab")
        try:
            root = Path(__file__).resolve().parents[2]
            if "workers" in self.faults:  # several uvicorn processes: a fresh interpreter, as before
                self.proc = subprocess.Popen(cmd, stdout=log, stderr=log, env=env, cwd=str(root))
            else:  # the same command, forked from a process that has imported it (helpers/forkserver.py)
                self.proc = forkserver.popen(cmd[2], cmd[3:], env=env, cwd=root, stdout=log, stderr=log)
        finally:
            log.close()
        self._wait_up()

    def _wait_up(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        token = next(iter(self.tokens.values()), None)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"central server exited ({self.proc.returncode}):\n{self.log()}")
            try:
                r = httpx.get(self.api + "/health", headers=headers, timeout=2)
                if r.status_code in (200, 401, 503) and self.proc.poll() is None:  # 503 = maintenance is still "up"
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"central server did not answer within {START_TIMEOUT_S}s:\n{self.log()}")

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        forkserver.wait_gone(self.proc)
        self.proc = None

    def restart(self, **faults: Any) -> None:
        """Stop and start again on the same DB and port; ``faults`` replace the old ones."""
        self.stop()
        self.faults = dict(faults)
        self.start()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


_template: list[Path] = []  # this process's migrated empty SQLite database, made once


def _schema_on(url: str) -> None:
    """The newest schema on ``url``: a new SQLite file is a copy of one migrated
    once per test process (running the migrations takes a second or more each
    time); anything else is migrated (``serve`` checks the revision again)."""
    path = database(url).sqlite_path
    if path is None or path.exists():
        create_schema(url)
        return
    if not _template:
        import tempfile

        made = Path(tempfile.mkdtemp(prefix="opd-central-template-")) / "central.db"
        create_schema(f"sqlite:///{made}")
        _template.append(made)
    import sqlite3

    path.parent.mkdir(parents=True, exist_ok=True)
    src, dst = sqlite3.connect(_template[0]), sqlite3.connect(path)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


@contextmanager
def run_central(
    tmp_path: Path,
    *,
    devices: tuple[str, ...] | list[str] = ("C07",),
    master_data: Path | dict[str, Any] | None = None,
    db_name: str = "central.db",
    database_url: str | None = None,
    flaw: str | None = None,
    **faults: Any,
) -> Iterator[CentralHandle]:
    """Create the DB (in ``tmp_path`` for SQLite, a new database on the test
    PostgreSQL), register ``devices``, start the server, yield its handle, and
    stop it on exit (even when the test fails).

    ``master_data`` is a JSON/TOML file or a dict (written to JSON); None means
    the shipped demo file (``opd_fallback/central/demo_master_data.json``).
    ``database_url`` names an existing database (e.g. a second server on the
    same PostgreSQL); else one is made on ``DEFAULT_BACKEND``. ``flaw`` starts
    the server with one deliberate flaw (``tests/helpers/broken_central.py``)."""
    url = database_url or DEFAULT_BACKEND.new_database_url(tmp_path, db_name)
    _schema_on(url)
    if isinstance(master_data, dict):  # a dict is written next to the DB as JSON
        path = Path(tmp_path) / "master_data.json"
        path.write_text(json.dumps(master_data, ensure_ascii=False), encoding="utf-8")
        master_data = path
    port = free_port()
    handle = CentralHandle(database_url=url, port=port, log_path=Path(tmp_path) / f"central-{port}.log",
                           master_data=master_data, faults=dict(faults), flaw=flaw)
    for dev in devices:
        handle.add_device(dev)
    handle.start()
    try:
        yield handle
    finally:
        handle.stop()

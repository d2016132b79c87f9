"""A throwaway PostgreSQL server for tests and benchmarks (real, local, on 127.0.0.1).

``initdb`` and ``pg_ctl`` from the machine's PostgreSQL (Debian keeps them in
/usr/lib/postgresql/*/bin) into a temporary directory, on a free port, TCP on
127.0.0.1 only, trust authentication (nobody else can reach it). PostgreSQL
refuses to run as root, so under root (CI) the server runs as the ``postgres``
user (``runuser``). One server per test session; each test gets a fresh
database in it (``create_database``), which takes a few milliseconds.

``fsync=False`` (tests) trades durability for speed; the benchmark keeps the
defaults so it compares like with like (SQLite runs with synchronous=FULL).
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.helpers.ports import free_port

USER = "opd"
_names = itertools.count(1)


def pg_bin_dir() -> Path | None:
    """Where initdb and pg_ctl are, or None when PostgreSQL is not installed."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).resolve().parent
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(d) / "pg_ctl").exists() and (Path(d) / "initdb").exists():
            return Path(d)
    return None


def why_unavailable() -> str | None:
    """None when a throwaway server can be started here, else the reason in one sentence."""
    if pg_bin_dir() is None:
        return "PostgreSQL is not installed (apt-get install postgresql; .ci/run does it)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no postgres user to run PostgreSQL as"
        if not shutil.which("runuser"):
            return "running as root and runuser is missing"
    return None


def _free_port() -> int:
    return free_port()


class PostgresServer:
    def __init__(self, root: Path, *, fsync: bool = False) -> None:
        self.root = root
        self.data = root / "data"
        self.log = root / "server.log"
        self.port = _free_port()
        self.fsync = fsync
        self.bin = pg_bin_dir()
        if self.bin is None:
            raise RuntimeError(why_unavailable() or "PostgreSQL is not installed")
        self._as: list[str] = []
        if os.geteuid() == 0:
            self._as = ["runuser", "-u", "postgres", "--"]
            pw = pwd.getpwnam("postgres")
            os.chown(root, pw.pw_uid, pw.pw_gid)

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as, *args], check=True, capture_output=True, timeout=120, cwd=str(self.root))

    def start(self) -> None:
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", USER, "--auth=trust",
                  "--encoding=UTF8", "--locale=C", "--no-sync")
        opts = [f"-p {self.port}", "-c listen_addresses=127.0.0.1", "-c unix_socket_directories=''",
                "-c max_connections=300", "-c shared_buffers=128MB"]
        if not self.fsync:
            opts += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                      "-o", " ".join(opts), "start")
        except subprocess.CalledProcessError as exc:
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            raise RuntimeError(f"PostgreSQL did not start: {exc.stderr!r}\n{log}") from None

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            subprocess.run([*self._as, str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                            "-w", "stop"], capture_output=True, timeout=60, check=False)

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql+psycopg://{USER}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, prefix: str = "central") -> str:
        """A new empty database; returns its URL."""
        import psycopg

        name = f"{prefix}_{os.getpid()}_{next(_names)}"
        with psycopg.connect(f"postgresql://{USER}@127.0.0.1:{self.port}/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@contextmanager
def running_postgres(*, fsync: bool = False) -> Iterator[PostgresServer]:
    root = Path(tempfile.mkdtemp(prefix="opd-pg-"))
    server = PostgresServer(root, fsync=fsync)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)

"""Servers for tests started by forking a process that has already imported them.

Starting the reference central server as ``python -m opd_fallback.central serve``
costs ~1.5 s of CPU, nearly all of it imports (FastAPI, SQLAlchemy, pydantic, the
apply handlers), and the hub ~0.8 s; the default test run starts dozens of them.
So each test process (an xdist worker) starts one fork server, lazily, that
imports those modules once and then forks a fresh process per server start. The
forked process runs the very ``python -m MODULE ARGS`` code on the test's
stdin/stdout/stderr, environment and working directory; the test holds a real
``subprocess.Popen`` of a tiny stand-in (tests/helpers/forkshim.py) that passes
signals on and exits as the server does. What differs from a fresh interpreter
is only which modules are already imported and the command line ``ps`` shows.

Only the helpers' reference servers go through it (tests/helpers/central.py,
hub.py). Processes that are themselves under test (the counter CLI, start-up
import checks) start fresh as before. ``OPD_TEST_FRESH_SERVERS=1`` starts the
servers fresh too (to compare, or to rule the fork server out).
"""

from __future__ import annotations

import array
import atexit
import importlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, BinaryIO

ROOT = Path(__file__).resolve().parents[2]
SHIM = Path(__file__).with_name("forkshim.py")
PRELOAD = (
    "opd_fallback.central", "opd_fallback.central.commands", "opd_fallback.central.app", "opd_fallback.central.db",
    "opd_fallback.central.settings", "opd_fallback.central.master", "opd_fallback.hub.commands", "opd_fallback.hub.app",
    "uvicorn", "uvicorn.config", "uvicorn.server", "uvicorn.protocols.http.h11_impl", "uvicorn.lifespan.on",
    "uvicorn.loops.asyncio", "alembic.command", "alembic.config", "alembic.runtime.migration", "psycopg",
)

_server: dict[str, Any] = {}  # this test process's fork server: {"proc": Popen, "sock": path}


# ---------------------------------------------------------------- test side
def popen(module: str, args: list[str], *, env: dict[str, str], cwd: str | Path, stdout: BinaryIO | int | None,
          stderr: BinaryIO | int | None) -> subprocess.Popen[bytes]:
    """``subprocess.Popen([sys.executable, "-m", module, *args], ...)``, forked from the fork server."""
    sock = None if os.environ.get("OPD_TEST_FRESH_SERVERS") else _ensure_server()
    if sock is None:
        return subprocess.Popen([sys.executable, "-m", module, *args], stdout=stdout, stderr=stderr, env=env,
                                cwd=str(cwd), stdin=subprocess.DEVNULL)
    fd, pid_file = tempfile.mkstemp(prefix="opd-forked-", suffix=".pid")
    os.close(fd)
    proc = subprocess.Popen([sys.executable, "-I", "-S", str(SHIM), sock, pid_file, module, *args], stdout=stdout,
                            stderr=stderr, env=env, cwd=str(cwd), stdin=subprocess.DEVNULL)
    proc.forked_pid_file = pid_file  # type: ignore[attr-defined]
    return proc


def wait_gone(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """After ``proc`` ended: wait until the forked server it stood for is gone too (a
    SIGKILLed stand-in leaves it a few milliseconds, holding its port)."""
    pid_file = getattr(proc, "forked_pid_file", None)
    if pid_file is None:
        return
    try:
        pid = int(Path(pid_file).read_text() or 0)
    except (OSError, ValueError):
        return
    finally:
        Path(pid_file).unlink(missing_ok=True)
    deadline = time.monotonic() + timeout
    while pid and time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.005)
    raise RuntimeError(f"forked server {pid} still alive {timeout} s after its stand-in ended")


def _ensure_server() -> str | None:
    proc = _server.get("proc")
    if proc is not None and proc.poll() is None:
        return str(_server["sock"])
    sock = os.path.join(tempfile.mkdtemp(prefix="opd-forkserver-"), "sock")
    log = open(Path(sock).with_name("log"), "ab")  # noqa: SIM115 - the fork server's own words, if any
    proc = subprocess.Popen([sys.executable, "-m", "tests.helpers.forkserver", sock], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=log, cwd=str(ROOT))
    log.close()
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 60.0)
    if not ready or proc.stdout.readline() != b"ready\n":
        proc.kill()
        raise RuntimeError(f"the test fork server did not start: {Path(sock).with_name('log').read_text()}")
    _server.update(proc=proc, sock=sock)
    atexit.register(_stop_server, proc)
    return sock


def _stop_server(proc: subprocess.Popen[bytes]) -> None:
    if proc.stdin is not None:
        proc.stdin.close()  # its cue to go
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()


# ---------------------------------------------------------------- server side
def _serve(sock_path: str) -> None:
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    if threading.active_count() != 1:  # forking a process with threads may copy a held lock
        raise SystemExit(f"fork server: an import started a thread: {threading.enumerate()}")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(sock_path)
    listener.listen(64)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    minders: set[int] = set()
    while True:
        # the minders are waited for (not left to the kernel) so that the servers' CPU time adds up
        # to this process's children's, and to the test run's (e.g. /usr/bin/time)
        readable, _, _ = select.select([listener, sys.stdin], [], [], 0.2)
        for pid in list(minders):
            if os.waitpid(pid, os.WNOHANG)[0]:
                minders.discard(pid)
        if sys.stdin in readable and not os.read(sys.stdin.fileno(), 1):
            os.unlink(sock_path)
            for pid in minders:  # their servers were stopped by the helpers, or die with their stand-ins
                os.waitpid(pid, 0)
            os._exit(0)
        if listener in readable:
            conn, _ = listener.accept()
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                listener.close()
                _mind(conn)  # returns only in the forked server, to run it
                return
            minders.add(pid)
            conn.close()


def _mind(conn: socket.socket) -> None:
    """One start: fork the server, tell the stand-in its pid, then its wait status."""
    got = array.array("i")
    head, ancillary, _flags, _addr = conn.recvmsg(8, socket.CMSG_SPACE(4 * got.itemsize))
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            got.frombytes(data[: len(data) - len(data) % got.itemsize])
    size = int.from_bytes(head, "big")
    body = b""
    while len(body) < size:
        chunk = conn.recv(size - len(body))
        if not chunk:
            os._exit(1)
        body += chunk
    request = json.loads(body)
    pid = os.fork()
    if pid == 0:
        conn.close()
        _become(request, list(got))
        return
    for fd in got:
        os.close(fd)
    conn.sendall(f"{pid}\n".encode())
    _, status = os.waitpid(pid, 0)
    conn.sendall(f"{status}\n".encode())
    os._exit(0)


def _become(request: dict[str, Any], fds: list[int]) -> None:
    """Turn this forked process into ``python -m MODULE ARGS`` on the stand-in's files."""
    stdin, stdout, stderr, life = fds
    for src, dst in ((stdin, 0), (stdout, 1), (stderr, 2)):
        os.dup2(src, dst)
    for fd in (stdin, stdout, stderr):
        if fd > 2:
            os.close(fd)
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    for sig, how in ((signal.SIGINT, signal.default_int_handler), (signal.SIGTERM, signal.SIG_DFL),
                     (signal.SIGHUP, signal.SIG_DFL), (signal.SIGQUIT, signal.SIG_DFL),
                     (signal.SIGUSR1, signal.SIG_DFL), (signal.SIGUSR2, signal.SIG_DFL)):
        signal.signal(sig, how)
    sys.stdin = open(0, closefd=False)  # noqa: SIM115
    unbuffered = bool(request["env"].get("PYTHONUNBUFFERED"))
    sys.stdout.reconfigure(line_buffering=True, write_through=unbuffered)  # type: ignore[union-attr]
    sys.stderr.reconfigure(line_buffering=True, write_through=True)  # type: ignore[union-attr]

    def stand_in_gone() -> None:
        while os.read(life, 64):
            pass
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=stand_in_gone, name="stand-in-gone", daemon=True).start()
    sys.argv = [request["module"], *request["args"]]
    import runpy

    runpy.run_module(request["module"], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    _serve(sys.argv[1])

"""The counter's background sync and LAN share run in a child process, the
sidecar, so their CPU work never holds the UI process's GIL (issue 21 item 4:
F10 to commit p99 below 50 ms while a sync runs).

Measured (benchmarks/f10_commit.py, 300,000 patients in the index, a sync with
work looping beside the clerk): with ``sync_once`` in a thread of the UI's
process, F10 to commit was p50 68.6 ms, p99 295 ms, the duplicate check alone
p99 213 ms: an indexed read of a few rows waiting for the GIL while the sync
built, signed and booked its batches. SQLite's own waits were the smaller part.
In a process of its own the sync competes for a core, not for the interpreter.
(Resting an idle sync round would not help here: "while a sync runs" is a sync
with work.)

What stays as it was:

* the same engine and lease: the child calls ``sync.engine.sync_once`` (its
  own store on the same file, its own connection), so a running CLI sync makes
  it wait its turn, and a sidecar killed mid-round leaves a lease any sync on
  this host takes over at once (its pid is gone);
* the app's workers: ``tui/wiring.py``'s ``sync_runner`` and ``share_runner``
  are still what the status worker starts, in a thread worker each; they now
  ask the sidecar (:meth:`Sidecar.sync`, :meth:`Sidecar.share`) and wait on
  the pipe (no GIL held), handing the progress and the result back as before,
  so the status bar's progress and results are the same;
* the wake-on-save of the hub share stays in the UI process, where the saves
  are: the share worker waits for a save (or the interval) and then asks.

The pipe is the child's stdin and stdout, one JSON object a line: the settings
and the UI's database file first (the tokens among them: through the pipe,
never on the command line),
then one ``{"job": "sync" | "share"}`` per request; the child answers
``progress`` (at most every 0.1 s), then ``done`` with the result or
``failed`` with one sentence (a storage failure in the words of
``store/failures.py``). The child writes nothing else on that channel (its
stdout is pointed at /dev/null once the channel is taken, its stderr goes to
``sidecar.log`` in the data folder, never over the clerk's screen).

Lifetime: started on the first request (after the login screen, once the store
is open), stopped by :meth:`Sidecar.close` when the app unmounts (and at exit).
The child watches its parent through the pipe: when its stdin ends (the UI quit
or crashed, even by SIGKILL) it lets a running job finish for a few seconds and
exits. A sidecar that died is started again at the next request; the request
it was running fails with :data:`STOPPED`, which the status bar shows as the
sync's result, and :attr:`Sidecar.restarts` counts the restarts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING

from opd_fallback.domain.exits import ExitCode, OpdError

if TYPE_CHECKING:
    from opd_fallback.config import Settings

JOBS = ("sync", "share")
STOPPED = "sync process stopped; restarted"  # the status bar shows "failed: " and 40 characters
PARENT_GONE_GRACE_S = 5.0  # how long a running job may go on once the parent is gone
PROGRESS_EVERY_S = 0.1


class SidecarFailed(OpdError):
    """A job of the sidecar failed or the sidecar stopped; the message is one sentence."""

    exit_code = ExitCode.UNREACHABLE


class Sidecar:
    """The UI process's end: starts the child, sends requests, reads answers."""

    def __init__(self, settings: Callable[[], Settings], db_path: Path, *, python: str | None = None) -> None:
        self._settings = settings
        self._db_path = db_path
        self._python = python or sys.executable
        self._lock = threading.Lock()  # starting and writing
        self._job_locks = {job: threading.Lock() for job in JOBS}  # one request of each kind at a time
        self._proc: subprocess.Popen[bytes] | None = None
        self._answers: dict[str, queue.Queue[dict[str, object]]] = {}
        self._closed = False
        self.started = 0  # processes started (the first and every restart)

    @property
    def restarts(self) -> int:
        return max(0, self.started - 1)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def _ensure(self) -> tuple[subprocess.Popen[bytes], dict[str, queue.Queue[dict[str, object]]]]:
        with self._lock:
            if self._closed:
                raise SidecarFailed("the counter is closing")
            if self._proc is None or self._proc.poll() is not None:
                self._start()
            assert self._proc is not None
            return self._proc, self._answers

    def _start(self) -> None:
        s = self._settings()
        log = _log_file(s.data_dir)
        try:
            proc = subprocess.Popen([self._python, "-m", "opd_fallback.application.sidecar"],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                    close_fds=True)
        finally:
            if log is not subprocess.DEVNULL:
                log.close()  # type: ignore[union-attr]
        answers: dict[str, queue.Queue[dict[str, object]]] = {job: queue.Queue() for job in JOBS}
        assert proc.stdin is not None and proc.stdout is not None
        first = {"settings": json.loads(s.model_dump_json()), "db_path": str(self._db_path)}
        proc.stdin.write(json.dumps(first).encode() + b"\n")
        proc.stdin.flush()
        threading.Thread(target=_read_answers, args=(proc.stdout, answers), name="sidecar-answers",
                         daemon=True).start()
        self._proc, self._answers = proc, answers
        self.started += 1

    def _ask(self, job: str, progress: Callable[[int, int], None] | None) -> dict[str, object]:
        with self._job_locks[job]:
            proc, answers = self._ensure()
            try:
                with self._lock:
                    assert proc.stdin is not None
                    proc.stdin.write(json.dumps({"job": job}).encode() + b"\n")
                    proc.stdin.flush()
            except OSError:
                raise SidecarFailed(STOPPED) from None
            while True:
                msg = answers[job].get()
                event = msg.get("event")
                if event == "progress" and progress is not None:
                    done, total = msg.get("done"), msg.get("total")
                    progress(int(done) if isinstance(done, int) else 0, int(total) if isinstance(total, int) else 0)
                elif event == "done":
                    result = msg.get("result")
                    return result if isinstance(result, dict) else {}
                elif event == "failed":
                    raise SidecarFailed(str(msg.get("error") or "failed"))
                elif event == "stopped":
                    raise SidecarFailed(STOPPED)

    def sync(self, progress: Callable[[int, int], None] | None = None) -> dict[str, object]:
        """One ``sync_once`` in the child (blocks this thread: call it from a worker)."""
        return self._ask("sync", progress)

    def share(self) -> dict[str, object]:
        """One ``share_once`` with the LAN hub in the child; its ``ShareResult`` as a dict."""
        return self._ask("share", None)

    def close(self, timeout_s: float = PARENT_GONE_GRACE_S + 2) -> None:
        """Stop the child: its stdin ends (it finishes or drops its job and exits), killed if it lingers."""
        with self._lock:
            self._closed = True
            proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError):
            assert proc.stdin is not None
            proc.stdin.close()
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()


def _log_file(data_dir: Path) -> IO[bytes] | int:
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(data_dir / "sidecar.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        return os.fdopen(fd, "ab")
    except OSError:
        return subprocess.DEVNULL


def _read_answers(out: IO[bytes], answers: dict[str, queue.Queue[dict[str, object]]]) -> None:
    """The parent's reader thread: each answer to its job's queue; at the end of the pipe, "stopped" to all."""
    try:
        for line in out:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if isinstance(msg, dict) and msg.get("job") in answers:
                answers[str(msg["job"])].put(msg)
    except (OSError, ValueError):
        pass
    for q in answers.values():
        q.put({"event": "stopped"})


# ------------------------------------------------------------------ the child


class _Channel:
    def __init__(self, out: IO[bytes]) -> None:
        self._out = out
        self._lock = threading.Lock()

    def send(self, job: str, event: str, **fields: object) -> None:
        line = json.dumps({"job": job, "event": event, **fields}, default=str).encode() + b"\n"
        with self._lock:
            try:
                self._out.write(line)
                self._out.flush()
            except (OSError, ValueError):
                pass  # the parent is gone: the stdin watch ends this process


def _sentence(exc: BaseException, db_path: Path) -> str:
    from opd_fallback.store.failures import explain

    problem = explain(exc, db_path, where="counter")
    return str(problem) if problem is not None else f"{exc.__class__.__name__}: {exc}"


def _child(settings: Settings, db_path: Path, channel: _Channel, jobs: queue.Queue[str | None]) -> None:
    """Run each requested job in order of its kind (sync and share each in a thread of their own)."""
    from opd_fallback.store.engine import Store, open_store

    stores: list[Store] = []  # opened by the first job (a failure to open is that job's sentence)
    hub: list[object] = []
    opening = threading.Lock()

    def the_store() -> Store:
        with opening:
            if not stores:
                stores.append(open_store(db_path, migrate=False))
            return stores[0]

    def run_sync() -> dict[str, object]:
        from opd_fallback.sync.client import CentralClient
        from opd_fallback.sync.engine import sync_once

        last = [0.0]

        def progress(done: int, total: int) -> None:
            now = time.monotonic()
            if done >= total or now - last[0] >= PROGRESS_EVERY_S:
                last[0] = now
                channel.send("sync", "progress", done=done, total=total)

        with CentralClient.from_settings(settings) as client:
            return _as_dict(sync_once(the_store(), client, settings, progress))

    def run_share() -> dict[str, object]:
        from opd_fallback.application.share import share_once
        from opd_fallback.sync.hub_client import HubClient

        if not hub:
            hub.append(HubClient.from_settings(settings))
        return _as_dict(share_once(the_store(), hub[0], settings.device_id))  # type: ignore[arg-type]

    runners = {"sync": run_sync, "share": run_share}
    lanes: dict[str, queue.Queue[str | None]] = {job: queue.Queue() for job in JOBS}

    def lane(job: str) -> None:
        while lanes[job].get() is not None:
            try:
                result = runners[job]()
            except Exception as exc:  # said in one sentence; the next request tries again
                channel.send(job, "failed", error=_sentence(exc, db_path))
            else:
                channel.send(job, "done", result=result)

    threads = [threading.Thread(target=lane, args=(job,), name=f"sidecar-{job}", daemon=True) for job in JOBS]
    for t in threads:
        t.start()
    while (job := jobs.get()) is not None:
        if job in lanes:
            lanes[job].put(job)
    for q in lanes.values():
        q.put(None)
    deadline = time.monotonic() + PARENT_GONE_GRACE_S
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    if stores and all(not t.is_alive() for t in threads):
        stores[0].close()


def _as_dict(result: object) -> dict[str, object]:
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        return {k: v for k, v in dataclasses.asdict(result).items() if isinstance(v, (str, int, bool, type(None)))}
    return {}


def main() -> int:
    """The child: settings on the first line of stdin, then requests until stdin ends."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the counter decides when this stops (its stdin ends)
    stdin = sys.stdin.buffer
    channel = _Channel(os.fdopen(os.dup(1), "wb"))
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # a stray print cannot break the channel
    os.close(devnull)
    first = stdin.readline()
    if not first:
        return 0
    from opd_fallback.config import Settings

    given = json.loads(first)
    settings = Settings.model_validate(given["settings"])
    jobs: queue.Queue[str | None] = queue.Queue()

    def watch() -> None:  # the parent's end of the pipe: its requests, and its death (EOF)
        for line in stdin:
            with contextlib.suppress(ValueError, AttributeError):
                jobs.put(str(json.loads(line).get("job")))
        jobs.put(None)

    threading.Thread(target=watch, name="sidecar-stdin", daemon=True).start()
    _child(settings, Path(given["db_path"]), channel, jobs)
    return 0


if __name__ == "__main__":
    os._exit(main())  # daemon threads still in a job past the grace are dropped (each transaction is atomic)

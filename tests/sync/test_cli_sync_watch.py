"""``opd-fallback sync --watch`` as a real process: how it stops, and that it ends.

The watch stops on Ctrl-C (SIGINT) and a service manager's SIGTERM by its own
handler (``cli/common.stop_on_signals``, shared with ``share --watch``), after
the exchange under way, with its last words and the last round's exit status;
also when the parent passed SIGINT on ignored (a job started with ``&``: Python
then raises no KeyboardInterrupt, and the watch ran on). Each round has the
``--give-up-after`` deadline, so a central that answers its health check but
nothing else does not hold a round (and the sync lease) for ever.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import orjson
import pytest

from opd_fallback.config import load_settings, write_config, write_token
from opd_fallback.store import open_store
from tests.helpers.central import CentralHandle, run_central

from .daygen import make_day
from .scripted import Answer, Scripted, js


@pytest.fixture(scope="module")
def central(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CentralHandle]:
    """One central for the module's tests (each its own counter): starting one takes seconds."""
    with run_central(tmp_path_factory.mktemp("central"), devices=("C07", "C08")) as handle:
        yield handle


def _counter(data: Path, url: str, token: str, device: str = "C07") -> int:
    """A counter with a few ops queued; returns how many."""
    store = open_store(data / "counter.db")
    try:
        ops = make_day(store, device, 2, seed=int(device[1:])).ops  # its own patients
    finally:
        store.close()
    s = load_settings(data)
    write_config(s, {"device_id": device, "hospital": "KGMU", "central_url": url})
    write_token(s, token)
    return ops


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class _Watch:
    """``sync --watch`` running; its stdout and stderr lines read as they come (threads)."""

    def __init__(self, data: Path, *args: str, sigint_ignored: bool = False) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPD_")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "opd_fallback", "--data-dir", str(data), "sync", "--watch", "--interval", "0.2",
             *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=_ignore_sigint if sigint_ignored else None)
        self.out: list[str] = []
        self.err: list[str] = []
        self._readers = [threading.Thread(target=self._read, args=(pipe, into), daemon=True)
                         for pipe, into in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))]
        for r in self._readers:
            r.start()

    @staticmethod
    def _read(pipe: IO[str], into: list[str]) -> None:
        for line in pipe:
            into.append(line.rstrip("\n"))

    def wait_for(self, lines: list[str], part: str, timeout_s: float) -> str:
        """The first line of ``lines`` (self.out or self.err) holding ``part``, waiting up to ``timeout_s``."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            hit = next((x for x in list(lines) if part in x), None)
            if hit is not None:
                return hit
            if self.proc.poll() is not None and not any(r.is_alive() for r in self._readers):
                break
            time.sleep(0.05)
        pytest.fail(f"no line with {part!r} within {timeout_s} s: {self.out[-10:]} {self.err[-10:]}")

    def stop(self, sig: signal.Signals) -> float:
        """Send ``sig``; how long the process took to end (it fails the test after 10 s)."""
        t0 = time.monotonic()
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"sync --watch was still running 10 s after {sig.name}: {self.err[-10:]}")
        took = time.monotonic() - t0
        for r in self._readers:
            r.join(timeout=5)
        return took


@contextmanager
def _refusing_port() -> Iterator[int]:
    """A port bound but not listening for the test's length: a connection to it is refused."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


@pytest.mark.parametrize("stop_with", ["SIGINT, inherited ignored", "SIGTERM"])
def test_sync_watch_stops_on_signal_with_its_summary(tmp_path: Path, central: CentralHandle, stop_with: str) -> None:
    sig = signal.SIGTERM if stop_with == "SIGTERM" else signal.SIGINT
    device = "C07" if sig == signal.SIGTERM else "C08"
    data = tmp_path / "counter"
    ops = _counter(data, central.url, central.tokens[device], device)
    watch = _Watch(data, sigint_ignored=sig == signal.SIGINT)
    try:
        done = watch.wait_for(watch.out, "all synced", 10.0)  # the round's summary: its ops are synced
    finally:
        took = watch.stop(sig)
    assert "sync: all synced" in done and f"applied {ops}," in "\n".join(watch.out), watch.out
    assert watch.proc.returncode == 0, watch.err
    assert watch.err[-1] == "sync: stopped watching; nothing waits in the queue", watch.err
    assert took < 3, took


def test_sync_watch_ends_when_central_stays_down(tmp_path: Path) -> None:
    """Nobody listening: the watch probes, and SIGTERM ends it at once, with exit 3 and what waits."""
    with _refusing_port() as port:
        data = tmp_path / "counter"
        ops = _counter(data, f"http://127.0.0.1:{port}", "t" * 32)
        watch = _Watch(data)
        try:
            watch.wait_for(watch.err, "central not answering", 10.0)
        finally:
            took = watch.stop(signal.SIGTERM)
    assert watch.proc.returncode == 3, watch.err
    assert watch.err[-1] == (f"sync: stopped watching; central never answered; {ops} ops wait in the queue, "
                             "nothing is lost: run sync again to send them"), watch.err
    assert took < 3, took


def _health_only(method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
    if path.endswith("/health"):
        return js(200, {"status": "ok"})
    return js(503, {"error": {"code": "unavailable", "message": "starting up"}}, **{"Retry-After": "1"})


def test_sync_watch_round_gives_up_when_central_answers_only_its_health(tmp_path: Path) -> None:
    """Health answers, every other call fails (503, like a half-started central behind a proxy): each
    round ends at --give-up-after with its summary (before, a watch's round had no deadline and never
    ended, holding the sync lease), and the watch goes on."""
    with Scripted(_health_only) as server:
        data = tmp_path / "counter"
        ops = _counter(data, server.url, "t" * 32)
        watch = _Watch(data, "--json", "--give-up-after", "1")
        try:
            first = orjson.loads(watch.wait_for(watch.out, '"outcome"', 10.0))  # the first round's summary
        finally:
            took = watch.stop(signal.SIGTERM)
    assert first["outcome"] == "unreachable" and first["still_waiting"] == ops, (first, watch.err)
    assert "no useful answer for 1 s" in first["message"]
    assert watch.proc.returncode == 3, watch.err
    assert took < 3, took  # at most the round under way, itself bounded by --give-up-after

"""Backoff with full jitter, Retry-After honoured, and the circuit breaker."""

from __future__ import annotations

import threading
import time

import pytest

from opd_fallback.sync.client import Overloaded, TransientError, Unauthorized, Unavailable, Unreachable
from opd_fallback.sync.retry import CircuitBreaker, ServerDown, call_with_retries, full_jitter


def test_full_jitter_is_bounded_by_the_cap() -> None:
    draws = [full_jitter(n, 0.5, 4.0) for n in range(20) for _ in range(20)]
    assert all(0 <= d <= 4.0 for d in draws) and max(draws) > 2.0 and min(draws) < 0.5


def test_retry_after_is_waited_at_least() -> None:
    calls: list[float] = []

    def fn() -> str:
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise Overloaded("busy", retry_after=0.4, status=429)
        return "ok"

    breaker = CircuitBreaker(lambda: None)
    assert call_with_retries(fn, breaker, base_s=0.001) == "ok"
    assert calls[1] - calls[0] >= 0.4


def test_transient_errors_are_resent_and_permanent_ones_are_not() -> None:
    n = {"i": 0}

    def flaky() -> int:
        n["i"] += 1
        if n["i"] < 4:
            raise TransientError("reset")
        return n["i"]

    assert call_with_retries(flaky, CircuitBreaker(lambda: None, threshold=10), base_s=0.001) == 4

    def refused() -> None:
        n["i"] += 1
        raise Unauthorized("401")

    n["i"] = 0
    with pytest.raises(Unauthorized):
        call_with_retries(refused, CircuitBreaker(lambda: None), base_s=0.001)
    assert n["i"] == 1


def test_open_breaker_sends_one_probe_at_a_time_instead_of_batches() -> None:
    up = threading.Event()
    probes: list[int] = []
    batches = {"n": 0}
    lock = threading.Lock()
    active = {"n": 0, "max": 0}

    def probe() -> None:
        with lock:
            active["n"] += 1
            active["max"] = max(active["max"], active["n"])
        time.sleep(0.01)
        probes.append(1)
        with lock:
            active["n"] -= 1
        if not up.is_set():
            raise Unavailable("maintenance", retry_after=None)

    breaker = CircuitBreaker(probe, base_s=0.02, cap_s=0.05)

    def batch() -> str:
        batches["n"] += 1
        if not up.is_set():
            raise Unreachable("refused")
        return "sent"

    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(call_with_retries(batch, breaker, base_s=0.001)))
               for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    storm = batches["n"]
    threading.Timer(0.1, up.set).start()
    for t in threads:
        t.join(5)
    assert results == ["sent"] * 4
    assert storm <= 4 + 1  # each lane tried once, then waited on the breaker
    assert len(probes) >= 3 and active["max"] == 1


def test_breaker_gives_up_after_its_limit() -> None:
    def probe() -> None:
        raise Unreachable("refused")

    breaker = CircuitBreaker(probe, base_s=0.01, cap_s=0.02, give_up_after_s=0.2)

    def batch() -> None:
        raise Unreachable("refused")

    t0 = time.monotonic()
    with pytest.raises(ServerDown):
        call_with_retries(batch, breaker, base_s=0.001)
    assert time.monotonic() - t0 < 3

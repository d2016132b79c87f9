"""Gentle retries: exponential backoff with full jitter, Retry-After honoured,
and a circuit breaker so a down server gets one cheap health probe at a time
instead of a storm of batches from every counter.

What is retried: :class:`Unavailable`/:class:`Overloaded` (nothing applied) and
:class:`TransientError` (outcome unknown; resending is safe because the server
is idempotent by op_id). :class:`Unauthorized`, :class:`PayloadTooLarge` and
:class:`RequestRefused` are not: retrying cannot help.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_delay
from tenacity.stop import stop_base
from tenacity.wait import wait_base, wait_random_exponential

from opd_fallback.sync.client import SyncError, TransientError, Unavailable, Unreachable

T = TypeVar("T")
RETRYABLE = (TransientError, Unavailable)


class ServerDown(SyncError):
    """The server stayed unreachable (or unavailable) longer than the run allows."""

    def __init__(self, message: str, *, last_error: BaseException | None = None) -> None:
        super().__init__(message)
        self.last_error = last_error


class Stopped(SyncError):
    """The run was asked to stop (``stop`` event, lost lease)."""


class wait_jitter_retry_after(wait_base):
    """Full-jitter exponential backoff, but never less than the server's Retry-After
    (plus a little jitter so a fleet of counters does not come back in step)."""

    def __init__(self, base_s: float = 0.25, cap_s: float = 30.0) -> None:
        self.jitter = wait_random_exponential(multiplier=base_s, max=cap_s)

    def __call__(self, retry_state: RetryCallState) -> float:
        delay = float(self.jitter(retry_state))
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        after = getattr(exc, "retry_after", None)
        if after:
            delay = max(delay, float(after) + random.uniform(0, min(1.0, float(after) / 2)))
        return delay


def full_jitter(attempt: int, base_s: float, cap_s: float) -> float:
    """AWS 'full jitter': uniform(0, min(cap, base * 2**attempt))."""
    return random.uniform(0, min(cap_s, base_s * (2 ** min(attempt, 30))))


class CircuitBreaker:
    """Closed while requests succeed. Opens on a connect failure, a 503, or
    ``threshold`` failures in a row; while open every caller waits and a single
    thread probes ``probe`` (GET /health) with backoff until it answers.

    ``give_up_after_s`` (None = never) bounds how long the breaker may stay open
    before callers get :class:`ServerDown`.
    """

    def __init__(
        self,
        probe: Callable[[], Any],
        *,
        threshold: int = 3,
        base_s: float = 0.5,
        cap_s: float = 30.0,
        give_up_after_s: float | None = 120.0,
        stop: threading.Event | None = None,
        on_state: Callable[[str, str], None] | None = None,
    ) -> None:
        self.probe = probe
        self.threshold = threshold
        self.base_s = base_s
        self.cap_s = cap_s
        self.give_up_after_s = give_up_after_s
        self.stop = stop or threading.Event()
        self.on_state = on_state
        self._cond = threading.Condition()
        self._failures = 0
        self._open_since: float | None = None
        self._probing = False
        self.last_error: BaseException | None = None
        self.probes = 0
        self.gave_up = False

    def sleep(self, seconds: float) -> None:
        """Wait between tries, waking at once when the run is stopped."""
        self.stop.wait(seconds)

    @property
    def is_open(self) -> bool:
        return self._open_since is not None

    def record_success(self) -> None:
        with self._cond:
            self._failures = 0

    def record_failure(self, exc: BaseException) -> None:
        with self._cond:
            self.last_error = exc
            self._failures += 1
            hard = isinstance(exc, Unreachable) or (isinstance(exc, Unavailable) and exc.status == 503)
            if self._open_since is None and (hard or self._failures >= self.threshold):
                self._open_since = time.monotonic()
                if self.on_state:
                    self.on_state("open", str(exc))

    def _close(self) -> None:
        self._open_since = None
        self._failures = 0
        if self.on_state:
            self.on_state("closed", "")
        self._cond.notify_all()

    def wait_closed(self) -> None:
        """Return when the breaker is closed; probe the server meanwhile."""
        while True:
            if self.stop.is_set():
                raise Stopped("sync stopped")
            with self._cond:
                if self._open_since is None:
                    return
                if self.gave_up:
                    raise ServerDown(self._down_message(), last_error=self.last_error)
                if self._probing:
                    self._cond.wait(timeout=0.5)
                    continue
                self._probing = True
            try:
                self._probe_until_up()
            finally:
                with self._cond:
                    self._probing = False
                    self._cond.notify_all()

    def _down_message(self) -> str:
        return f"the central server is not reachable ({self.last_error})"

    def _probe_until_up(self) -> None:
        attempt = 0
        while True:
            assert self._open_since is not None
            if self.give_up_after_s is not None and time.monotonic() - self._open_since > self.give_up_after_s:
                with self._cond:
                    self.gave_up = True
                    self._cond.notify_all()
                raise ServerDown(self._down_message(), last_error=self.last_error)
            delay = full_jitter(attempt, self.base_s, self.cap_s)
            after = getattr(self.last_error, "retry_after", None)
            if after:
                delay = max(delay, float(after))
            if self.stop.wait(delay):
                raise Stopped("sync stopped")
            attempt += 1
            self.probes += 1
            try:
                self.probe()
            except Exception as exc:  # any failure keeps it open
                self.last_error = exc
                continue
            with self._cond:
                self._close()
            return


class _stop_on_event(stop_base):
    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self.event.is_set()


def call_with_retries(
    fn: Callable[[], T],
    breaker: CircuitBreaker,
    *,
    max_elapsed_s: float | None = 300.0,
    base_s: float = 0.25,
    cap_s: float = 30.0,
    on_retry: Callable[[BaseException, int], None] | None = None,
) -> T:
    """Call ``fn`` until it succeeds or fails for good: retryable errors back off
    (full jitter, Retry-After) and feed the breaker; others propagate at once."""

    def attempt() -> T:
        breaker.wait_closed()
        try:
            result = fn()
        except RETRYABLE as exc:
            breaker.record_failure(exc)
            raise
        breaker.record_success()
        return result

    stop: stop_base = _stop_on_event(breaker.stop)
    if max_elapsed_s is not None:
        stop = stop | stop_after_delay(max_elapsed_s)

    def before_sleep(state: RetryCallState) -> None:
        if on_retry and state.outcome is not None:
            exc = state.outcome.exception()
            if exc is not None:
                on_retry(exc, state.attempt_number)

    retrying = Retrying(
        retry=retry_if_exception_type(RETRYABLE),
        wait=wait_jitter_retry_after(base_s, cap_s),
        stop=stop,
        reraise=True,
        before_sleep=before_sleep,
        sleep=breaker.sleep,
    )
    return retrying(attempt)

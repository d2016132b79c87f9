"""Gentle retries: exponential backoff with full jitter, Retry-After honoured,
and a circuit breaker so a down server gets one cheap health probe at a time
instead of a storm of batches from every counter.

What is retried: :class:`Unavailable`/:class:`Overloaded` (nothing applied) and
:class:`TransientError` (outcome unknown; resending is safe because the server
is idempotent by op_id). :class:`Unauthorized`, :class:`PayloadTooLarge` and
:class:`RequestRefused` are not: retrying cannot help.

How long to keep trying is one :class:`Patience` per run: the run gives up
once central has not answered usefully for ``give_up_after_s`` seconds. Every
request (its total deadline is capped by the time left), every backoff sleep
and every Retry-After wait counts against it, so ``sync --give-up-after 20``
ends about 20 s after central's last useful answer, whatever the network does.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_delay
from tenacity.stop import stop_base
from tenacity.wait import wait_base, wait_random_exponential

from opd_fallback.domain.exits import ExitCode
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

    exit_code = ExitCode.REFUSED


class Patience:
    """How long a run keeps trying: ``give_up_after_s`` seconds after the last
    useful answer from central (or the start). None means for ever (``--watch``)."""

    def __init__(self, give_up_after_s: float | None) -> None:
        self.limit = give_up_after_s
        self._last = time.monotonic()
        self._lock = threading.Lock()

    def progress(self) -> None:
        """Central answered usefully: the clock starts again."""
        with self._lock:
            self._last = time.monotonic()

    def deadline(self) -> float | None:
        """When the run gives up (``time.monotonic()`` seconds), or None."""
        return None if self.limit is None else self._last + self.limit

    def left(self) -> float | None:
        end = self.deadline()
        return None if end is None else end - time.monotonic()

    def expired(self) -> bool:
        left = self.left()
        return left is not None and left <= 0

    def gave_up(self, last_error: BaseException | None) -> ServerDown:
        return ServerDown(f"the central server is not reachable: no useful answer for {self.limit or 0:g} s, "
                          f"so this run gave up (last problem: {last_error})", last_error=last_error)


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

    ``patience`` (the run's) bounds how long callers wait before they get
    :class:`ServerDown`; without it, ``give_up_after_s`` (None = never) bounds how
    long the breaker may stay open.
    """

    def __init__(
        self,
        probe: Callable[[], object],
        *,
        threshold: int = 3,
        base_s: float = 0.5,
        cap_s: float = 30.0,
        give_up_after_s: float | None = 120.0,
        stop: threading.Event | None = None,
        on_state: Callable[[str, str], None] | None = None,
        patience: Patience | None = None,
    ) -> None:
        self.probe = probe
        self._own_patience = patience is None
        self.patience = patience or Patience(give_up_after_s)
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
        self.patience.progress()
        with self._cond:
            self._failures = 0

    def _note(self, exc: BaseException) -> None:
        """Keep what went wrong for the words of a give-up: a try cut short by the
        run's own deadline says less than the answer before it (a proxy's page, a
        503), so it does not replace one."""
        if self.last_error is None or "total deadline passed" not in str(exc):
            self.last_error = exc

    def record_failure(self, exc: BaseException) -> None:
        with self._cond:
            self._note(exc)
            self._failures += 1
            hard = isinstance(exc, Unreachable) or (isinstance(exc, Unavailable) and exc.status == 503)
            if self._open_since is None and (hard or self._failures >= self.threshold):
                self._open_since = time.monotonic()
                if self._own_patience:
                    self.patience.progress()  # measured from the opening
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
        if self._own_patience:
            return f"the central server is not reachable ({self.last_error})"
        return str(self.patience.gave_up(self.last_error))

    def _give_up(self) -> ServerDown:
        with self._cond:
            self.gave_up = True
            self._cond.notify_all()
        return ServerDown(self._down_message(), last_error=self.last_error)

    def _probe_until_up(self) -> None:
        attempt = 0
        while True:
            assert self._open_since is not None
            left = self.patience.left()
            if left is not None and left <= 0:
                raise self._give_up()
            delay = full_jitter(attempt, self.base_s, self.cap_s)
            after = getattr(self.last_error, "retry_after", None)
            if after:
                delay = max(delay, float(after))
            if left is not None and delay >= left:  # never sleep past the run's limit
                if self.stop.wait(max(0.0, left)):
                    raise Stopped("sync stopped")
                raise self._give_up()
            if self.stop.wait(delay):
                raise Stopped("sync stopped")
            attempt += 1
            self.probes += 1
            try:
                self.probe()
            except Exception as exc:  # any failure keeps it open
                self._note(exc)
                continue
            self.patience.progress()
            with self._cond:
                self._close()
            return


class _stop_on_event(stop_base):
    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self.event.is_set()


class _stop_when_out_of_patience(stop_base):
    """Stop when the next sleep would end past the run's limit."""

    def __init__(self, patience: Patience) -> None:
        self.patience = patience
        self.fired = False

    def __call__(self, retry_state: RetryCallState) -> bool:
        left = self.patience.left()
        if left is not None and retry_state.upcoming_sleep >= left:
            self.fired = True
        return self.fired


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
    (full jitter, Retry-After) and feed the breaker; others propagate at once.
    Gives up (:class:`ServerDown`) when the breaker's patience runs out, or
    after ``max_elapsed_s`` when the breaker has no limit of its own."""

    def attempt() -> T:
        breaker.wait_closed()
        try:
            result = fn()
        except RETRYABLE as exc:
            breaker.record_failure(exc)
            raise
        breaker.record_success()
        return result

    out_of_patience = _stop_when_out_of_patience(breaker.patience)
    stop: stop_base = _stop_on_event(breaker.stop) | out_of_patience
    if max_elapsed_s is not None and breaker.patience.limit is None:
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
    try:
        return retrying(attempt)
    except RETRYABLE as exc:
        if out_of_patience.fired and not breaker.stop.is_set():
            raise breaker.patience.gave_up(exc) from exc
        raise

"""A total deadline for one HTTP request, enforced at the socket.

httpx's timeouts are per phase and per socket operation: a server that sends
one byte every 5 s never trips a 30 s read timeout, so a request could last
for ever (a sync once hung 900 s that way, holding the sync lease). This
module wraps httpcore's network backend so that every connect (name lookup
included), TLS handshake, read and write is given at most the time left until
the request's deadline, and fails with httpcore's own timeout errors once it
has passed; httpx then maps them to ``httpx.ConnectTimeout`` /
``httpx.ReadTimeout`` / ``httpx.WriteTimeout`` as usual.

The deadline is per thread (httpx's sync client does all I/O of a request in
the calling thread): :func:`request_deadline` sets it around one request.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
import typing
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import httpcore
from httpcore._backends.base import SOCKET_OPTION

from opd_fallback.domain.exits import ExitCode, OpdError

# what socket.getaddrinfo gives for one name
_AddrInfos = Sequence[tuple[object, object, object, object, tuple[object, ...]]]

_local = threading.local()


class DeadlinePassed(OpdError):
    """Marker: the request's total deadline passed (carried as the cause of the timeout)."""

    exit_code = ExitCode.UNREACHABLE


class RequestState:
    """One request's deadline and how many bytes it has received so far."""

    def __init__(self, end: float | None) -> None:
        self.end = end
        self.received = 0

    @property
    def passed(self) -> bool:
        return self.end is not None and time.monotonic() >= self.end - 0.05


@contextmanager
def request_deadline(end: float | None) -> Iterator[RequestState]:
    """Run the block with ``end`` (``time.monotonic()`` seconds) as this thread's request deadline."""
    before = getattr(_local, "state", None)
    state = RequestState(end)
    _local.state = state
    try:
        yield state
    finally:
        _local.state = before


def time_left() -> float | None:
    state = getattr(_local, "state", None)
    return None if state is None or state.end is None else state.end - time.monotonic()


def _cap(timeout: float | None, exc: type[Exception]) -> float | None:
    """``timeout`` capped by the time left; raises ``exc`` when none is left."""
    left = time_left()
    if left is None:
        return timeout
    if left <= 0:
        raise exc("the request's total deadline passed") from DeadlinePassed()
    return left if timeout is None else min(timeout, left)


class DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        data = self._inner.read(max_bytes, _cap(timeout, httpcore.ReadTimeout))
        state = getattr(_local, "state", None)
        if state is not None:
            state.received += len(data)
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _cap(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        return DeadlineStream(self._inner.start_tls(ssl_context, server_hostname,
                                                    _cap(timeout, httpcore.ConnectTimeout)))

    def get_extra_info(self, info: str) -> object:
        return self._inner.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's backend with every operation bounded by the thread's request deadline."""

    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: typing.Iterable[SOCKET_OPTION] | None = None) -> httpcore.NetworkStream:
        timeout = _cap(timeout, httpcore.ConnectTimeout)
        if time_left() is None:
            return DeadlineStream(self._inner.connect_tcp(host, port, timeout, local_address, socket_options))
        last: Exception | None = None
        for address in self._resolve(host, port, timeout):  # as socket.create_connection: each address in turn
            try:
                return DeadlineStream(self._inner.connect_tcp(
                    address, port, _cap(timeout, httpcore.ConnectTimeout), local_address, socket_options))
            except httpcore.ConnectError as exc:
                last = exc
        raise last or httpcore.ConnectError(f"cannot connect to {host}")

    @staticmethod
    def _resolve(host: str, port: int, timeout: float | None) -> list[str]:
        """The addresses of ``host``, waiting no longer than ``timeout`` for the name lookup
        (getaddrinfo cannot be interrupted: it runs in a daemon thread, which never holds up an exit)."""
        done = threading.Event()
        result: list[_AddrInfos | OSError] = []

        def lookup() -> None:
            try:
                result.append(socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM))
            except OSError as exc:
                result.append(exc)
            finally:
                done.set()

        threading.Thread(target=lookup, name="opd-dns", daemon=True).start()
        if not done.wait(timeout):
            raise httpcore.ConnectTimeout(f"looking up the name {host} took too long") from DeadlinePassed()
        infos = result[0]
        if isinstance(infos, OSError):
            raise httpcore.ConnectError(f"cannot find the name {host}: {infos}") from infos
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if not addresses:
            raise httpcore.ConnectError(f"cannot find the name {host}")
        return addresses

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: typing.Iterable[SOCKET_OPTION] | None = None) -> httpcore.NetworkStream:
        return DeadlineStream(self._inner.connect_unix_socket(path, _cap(timeout, httpcore.ConnectTimeout),
                                                              socket_options))

    def sleep(self, seconds: float) -> None:
        left = time_left()
        self._inner.sleep(seconds if left is None else max(0.0, min(seconds, left)))


def install(transport: object) -> bool:
    """Put :class:`DeadlineBackend` under an httpx transport's connection pool.
    Returns False when the transport has no httpcore pool (a test transport)."""
    pool = getattr(transport, "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    if backend is None:
        return False
    if not isinstance(backend, DeadlineBackend):
        pool._network_backend = DeadlineBackend(backend)  # type: ignore[union-attr]
    return True

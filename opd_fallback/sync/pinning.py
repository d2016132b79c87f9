"""Certificate pinning for the LAN hub: the counter trusts the hub's certificate by its fingerprint.

The hub makes its own self-signed certificate (hub/tls.py) and ``hub
add-device`` prints its SHA-256 fingerprint in the pairing line the counter
stores. Here the check is made inside the TLS handshake's step of httpcore's
network backend, right after ``start_tls`` and before a single byte of the
request (with the counter's hub token) is written: a PC that answers on the
hub's address with another certificate never sees the token. The CA and name
checks are off for a pinned hub (a fingerprint is stricter than both); they
stay on for a hub without a pin (the hospital's own CA, ``--ca-bundle``).
"""

from __future__ import annotations

import hashlib
import ssl
import typing

import httpcore
from httpcore._backends.base import SOCKET_OPTION

from opd_fallback.domain.exits import ExitCode, OpdError


class PinMismatch(OpdError):
    """The hub presented a certificate whose fingerprint is not the paired one."""

    exit_code = ExitCode.UNREACHABLE

    def __init__(self, expected: str, got: str) -> None:
        super().__init__(f"the hub's certificate is not the one this counter was paired with (expected {expected}, "
                         f"got {got}): another PC may be answering on the hub's address, or the hub made a new "
                         "certificate; check with the IT cell, then pair again ('opd-fallback hub add-device ID' on "
                         "the hub PC, 'opd-fallback init ... --hub-pairing-stdin' here)")
        self.expected, self.got = expected, got


def fingerprint(der: bytes) -> str:
    return "sha256:" + hashlib.sha256(der).hexdigest()


def pinned_context() -> ssl.SSLContext:
    """TLS 1.2+, no CA or name check: the fingerprint is the check."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


class _PinnedStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream, expected: str) -> None:
        self._inner, self._expected = inner, expected

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, timeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        tls = self._inner.start_tls(ssl_context, server_hostname, timeout)
        obj = tls.get_extra_info("ssl_object")
        der = obj.getpeercert(True) if obj is not None else None
        got = fingerprint(der) if der else "(no certificate)"
        if got != self._expected:
            tls.close()
            raise PinMismatch(self._expected, got)
        return tls

    def get_extra_info(self, info: str) -> object:
        return self._inner.get_extra_info(info)


class PinnedBackend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend, expected: str) -> None:
        self._inner, self._expected = inner, expected

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: typing.Iterable[SOCKET_OPTION] | None = None) -> httpcore.NetworkStream:
        return _PinnedStream(self._inner.connect_tcp(host, port, timeout, local_address, socket_options),
                             self._expected)

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: typing.Iterable[SOCKET_OPTION] | None = None) -> httpcore.NetworkStream:
        return _PinnedStream(self._inner.connect_unix_socket(path, timeout, socket_options), self._expected)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def install(transport: object, expected: str) -> bool:
    """Check every TLS connection of an httpx transport against ``expected`` (``sha256:<hex>``)."""
    pool = getattr(transport, "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    if backend is None:
        return False
    pool._network_backend = PinnedBackend(backend, expected.lower())  # type: ignore[union-attr]
    return True

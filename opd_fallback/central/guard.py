"""ASGI middleware in front of every request: Date header, load cap,
maintenance switch and fault injection.

Pure ASGI (not BaseHTTPMiddleware) so it can do what the drills need: answer
before the app runs (429/503), or hand the client a response start and then
drop the connection, either before applying (reset) or after the app has
committed (lost response). Faults spare ``/health`` so a harness can still
tell the server is up; they are drawn from one seeded RNG so a run repeats.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from email.utils import formatdate

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from opd_fallback.central.inflight import InFlight, LocalInFlight
from opd_fallback.central.settings import CentralSettings
from opd_fallback.domain.contract import API_PREFIX


def _dated(send: Send) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            if not any(k.lower() == b"date" for k, _ in headers):
                headers.append((b"date", formatdate(usegmt=True).encode()))
            message = {**message, "headers": headers}
        await send(message)

    return wrapped


async def send_error(send: Send, status: int, code: str, message: str, retry_after: int | None = None) -> None:
    body = orjson.dumps({"error": {"code": code, "message": message}})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _drop(send: Send) -> None:
    """Start a response that promises a body, then end without it: the server
    closes the connection and the client sees a protocol error."""
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")]})


def _losing(send: Send) -> Send:
    """Pass the response start, swallow the body: the answer is lost after commit."""

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            await send(message)

    return wrapped


class Guard:
    """Wraps the FastAPI app; ``is_maintenance`` reads the flag from the DB; ``in_flight``
    counts requests across the server's worker processes (see :mod:`.inflight`)."""

    def __init__(self, app: ASGIApp, settings: CentralSettings, is_maintenance: Callable[[], bool],
                 in_flight: InFlight | None = None) -> None:
        self.app = app
        self.s = settings
        self.is_maintenance = is_maintenance
        self.rng = random.Random(settings.seed)
        self.in_flight = in_flight or LocalInFlight()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = _dated(send)
        s = self.s
        if not self.in_flight.try_enter(s.max_in_flight):
            await send_error(send, 429, "overloaded",
                             "too many requests in flight; try again later", s.retry_after_s)
            return
        try:
            if self.is_maintenance():
                await send_error(send, 503, "maintenance",
                                 "the central server is down for maintenance", s.retry_after_s)
                return
            path: str = scope.get("path", "")
            if s.faults_on and path.startswith(API_PREFIX) and path != API_PREFIX + "/health":
                if s.latency_ms:
                    await asyncio.sleep(s.latency_ms / 1000)
                if s.fail_rate and self.rng.random() < s.fail_rate:
                    await send_error(send, 503, "injected_failure",
                                     "injected failure (fault drill); nothing was applied", 1)
                    return
                if s.reset_rate and self.rng.random() < s.reset_rate:
                    await _drop(send)
                    return
                if s.lost_response_rate and self.rng.random() < s.lost_response_rate:
                    send = _losing(send)
            await self.app(scope, receive, send)
        finally:
            self.in_flight.leave()

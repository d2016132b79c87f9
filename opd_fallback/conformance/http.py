"""HTTP for the conformance kit: every call has a deadline, every call is kept.

Each request is given at most the time left in the run (and at most
``per_request`` seconds); the body is read in pieces and the read stops once
that time has passed, so a server that sends one byte every few seconds
cannot hold the run. The last exchange (what was sent, what came back) is
kept, so a failed rule can show both.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypedDict, Unpack

import httpx
import orjson

from opd_fallback.conformance.jsontypes import UncheckedJSON
from opd_fallback.domain.exits import OpdError

API = "/api/v1"
_SHOWN = 600  # characters of a body shown in a rule's line


class OutOfTime(OpdError):
    """The run's deadline passed (the rule is skipped, saying so)."""


Verify = ssl.SSLContext | str | bool  # httpx's verify: a context, a CA bundle's path, or on / off
Params = Mapping[str, str | int]  # a query's parameters


class ExchangeDict(TypedDict):
    """An exchange as the report's JSON has it."""

    method: str
    path: str
    sent: UncheckedJSON
    status: int | None
    body: UncheckedJSON
    error: str | None


class CallOptions(TypedDict, total=False):
    """What ``Api.get`` and ``Api.post`` pass on to ``Api.call``."""

    json: UncheckedJSON
    content: bytes | None
    headers: dict[str, str] | None
    params: Params | None
    shown: UncheckedJSON


@dataclass
class Exchange:
    """One request and its answer, as a rule's failure shows them."""

    method: str
    path: str
    sent: UncheckedJSON = None  # the JSON sent (or what stands for it: ``shown``)
    status: int | None = None
    body: UncheckedJSON = None  # the JSON answer, or the start of a body that is not JSON
    headers: dict[str, str] = field(default_factory=dict)
    error: str | None = None

    def json(self) -> UncheckedJSON:
        return self.body

    def brief(self) -> str:
        sent = "" if self.sent is None else " " + _short(self.sent)
        got = self.error or f"{self.status} {_short(self.body)}"
        return f"sent {self.method} {self.path}{sent}; got {got}"

    def as_dict(self) -> ExchangeDict:
        return {"method": self.method, "path": self.path, "sent": self.sent, "status": self.status,
                "body": self.body, "error": self.error}


def _short(value: UncheckedJSON) -> str:
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return text if len(text) <= _SHOWN else text[:_SHOWN] + f"... ({len(text)} characters)"


class Clock:
    """The run's total deadline (``time.monotonic()`` seconds)."""

    def __init__(self, total_s: float) -> None:
        self.end = time.monotonic() + total_s

    def left(self) -> float:
        return self.end - time.monotonic()


class Api:
    """One device's view of the server (its token), with deadlines."""

    def __init__(self, base_url: str, token: str | None, clock: Clock, *, per_request: float = 15.0,
                 verify: Verify = True) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        self.http = httpx.Client(base_url=base_url.rstrip("/") + API, headers=headers, verify=verify,
                                 follow_redirects=False)
        self.clock = clock
        self.per_request = per_request
        self.last: Exchange | None = None
        self.log: list[Exchange] = []

    def close(self) -> None:
        self.http.close()

    def call(self, method: str, path: str, *, json: UncheckedJSON = None, content: bytes | None = None,
             headers: dict[str, str] | None = None, params: Params | None = None,
             shown: UncheckedJSON = None) -> Exchange:
        """One request; network failures end up in ``Exchange.error`` (never raised),
        the run's deadline passing raises :class:`OutOfTime`."""
        left = self.clock.left()
        if left <= 0.5:
            raise OutOfTime("the run's deadline passed")
        budget = min(self.per_request, left)
        end = time.monotonic() + budget
        ex = Exchange(method, path + (("?" + "&".join(f"{k}={v}" for k, v in params.items())) if params else ""),
                      shown if shown is not None else json)
        self.last = ex
        self.log.append(ex)
        body = content if content is not None else (None if json is None else orjson.dumps(json))
        hdrs = dict(headers or {})
        if body is not None:
            hdrs.setdefault("content-type", "application/json")
        try:
            with self.http.stream(method, path, content=body, headers=hdrs, params=params,
                                  timeout=httpx.Timeout(budget)) as r:
                chunks = bytearray()
                for chunk in r.iter_bytes():
                    chunks += chunk
                    if time.monotonic() > end:
                        raise httpx.ReadTimeout(f"the answer took longer than {budget:.0f} s")
                ex.status = r.status_code
                ex.headers = {k.lower(): v for k, v in r.headers.items()}
        except httpx.HTTPError as exc:
            ex.error = f"no answer ({type(exc).__name__}: {exc})"
            return ex
        try:
            ex.body = orjson.loads(chunks) if chunks else None
        except orjson.JSONDecodeError:
            ex.body = bytes(chunks[:_SHOWN]).decode("utf-8", "replace")
        return ex

    def get(self, path: str, **kw: Unpack[CallOptions]) -> Exchange:
        return self.call("GET", path, **kw)

    def post(self, path: str, **kw: Unpack[CallOptions]) -> Exchange:
        return self.call("POST", path, **kw)

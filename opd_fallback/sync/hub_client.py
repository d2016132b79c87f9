"""HTTP client of the LAN hub (httpx), with a total deadline on every call.

The hub is optional and on the LAN, so every call is short: a call that has
not got its whole answer within ``deadline_s`` (connect, send, wait, read
together) is abandoned and reported as ``HubUnreachable``; nothing here ever
waits without end. A 401 is ``HubRefused`` (the hub does not know this
counter's token). See docs/hub-api.md for the API.
"""

from __future__ import annotations

import email.utils
import ssl
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import orjson

from opd_fallback.domain.exits import ExitCode, OpdError
from opd_fallback.sync import deadline as deadlines
from opd_fallback.sync import pinning

HUB_PREFIX = "/hub/v1"


class HubError(OpdError):
    """The hub could not be used for this exchange (exit 3)."""

    exit_code = ExitCode.UNREACHABLE


class HubUnreachable(HubError):
    """No (complete) answer in time, a dropped connection, or a hub error (5xx)."""


class HubRefused(HubError):
    """The hub refused this counter's hub token (401)."""


class HubNotPaired(HubError):
    """The PC answering on the hub's address showed another certificate than the paired one."""


def hub_base(url: str) -> str:
    url = url.rstrip("/")
    return url if url.endswith(HUB_PREFIX) else url + HUB_PREFIX


class HubClient:
    def __init__(
        self, url: str, token: str, *, deadline_s: float = 15.0, connect_timeout_s: float = 3.0,
        verify: bool = True, ca_bundle: str | Path | None = None, transport: httpx.BaseTransport | None = None,
        fingerprint: str | None = None,
    ) -> None:
        if not token:
            raise ValueError("a hub token is required (opd-fallback init --hub URL --hub-token-stdin)")
        self.base_url = hub_base(url)
        self.deadline_s = deadline_s
        self.connect_timeout_s = min(connect_timeout_s, deadline_s)
        verify_arg: Any = verify
        if verify and ca_bundle:
            verify_arg = ssl.create_default_context(cafile=str(ca_bundle))
        self.clock_skew_s: float | None = None  # the hub's clock minus this PC's, at the last answer
        self.fingerprint = (fingerprint or "").strip().lower() or None
        if self.fingerprint and self.base_url.startswith("https:"):
            verify_arg = pinning.pinned_context()  # the paired fingerprint is the check (sync/pinning.py)
        self._http = httpx.Client(
            base_url=self.base_url, verify=verify_arg, transport=transport,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        )
        # the total deadline is enforced at the socket, as for central (see opd_fallback.sync.deadline):
        # a hub that trickles one byte at a time cannot stretch a call
        for t in [self._http._transport, *self._http._mounts.values()]:
            deadlines.install(t)
            if self.fingerprint and self.base_url.startswith("https:"):
                pinning.install(t, self.fingerprint)

    @classmethod
    def from_settings(cls, settings: Any, **kw: Any) -> HubClient:
        if not settings.hub_url:
            raise ValueError("no hub configured (opd-fallback init --hub URL, or OPD_HUB_URL)")
        return cls(settings.hub_url, settings.hub_token or "", deadline_s=settings.hub_deadline_s,
                   verify=settings.verify_tls, ca_bundle=settings.ca_bundle,
                   fingerprint=getattr(settings, "hub_fingerprint", None), **kw)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> HubClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, *, body: Any = None, params: dict[str, Any] | None = None) -> Any:
        """One request; the whole answer within ``deadline_s`` or ``HubUnreachable``."""
        start = time.monotonic()
        deadline = start + self.deadline_s
        timeout = httpx.Timeout(self.deadline_s, connect=self.connect_timeout_s)
        content = None if body is None else orjson.dumps(body)
        headers = {"Content-Type": "application/json"} if content is not None else None
        try:
            with deadlines.request_deadline(deadline), self._http.stream(
                    method, path, content=content, params=params, headers=headers, timeout=timeout) as response:
                chunks: list[bytes] = []
                for chunk in response.iter_bytes():
                    chunks.append(chunk)
                    if time.monotonic() > deadline:
                        raise HubUnreachable(f"the hub at {self.base_url} did not answer within {self.deadline_s:.0f}s")
                status = response.status_code
                self._check_clock(response.headers.get("date"), start, time.monotonic(), time.time())
        except pinning.PinMismatch as exc:
            raise HubNotPaired(str(exc)) from None
        except httpx.HTTPError as exc:
            raise HubUnreachable(f"cannot reach the hub at {self.base_url}: {type(exc).__name__}") from exc
        if time.monotonic() > deadline:
            raise HubUnreachable(f"the hub at {self.base_url} did not answer within {self.deadline_s:.0f}s")
        if status == 401:
            raise HubRefused("the hub refused this counter's hub token (401): ask for a new one "
                             "('opd-fallback hub add-device ID' on the hub PC)")
        if status != 200:
            raise HubUnreachable(f"the hub answered {status} to {method} {path}")
        try:
            return orjson.loads(b"".join(chunks))
        except orjson.JSONDecodeError as exc:
            raise HubUnreachable("unreadable answer from the hub") from exc

    def _check_clock(self, date: str | None, started: float, ended: float, wall: float) -> None:
        """The hub is the LAN's clock (application/clock.py): its ``Date`` minus this PC's, at the midpoint."""
        if not date:
            return
        try:
            server = email.utils.parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError):
            return
        self.clock_skew_s = server - (wall - (ended - started) / 2)

    # ---------------------------------------------------------------- calls
    def health(self) -> dict[str, Any]:
        return dict(self._call("GET", "/health"))

    def me(self) -> dict[str, Any]:
        return dict(self._call("GET", "/devices/me"))

    def push(self, ops: Sequence[dict[str, Any]], central_ids: Sequence[dict[str, Any]] = (),
             withdrawn: Sequence[str] = ()) -> dict[str, Any]:
        answer = self._call("POST", "/ops:push", body={"ops": list(ops), "central_ids": list(central_ids),
                                                       "withdrawn": list(withdrawn)})
        results = answer.get("results") if isinstance(answer, dict) else None
        if not isinstance(results, list) or len(results) != len(ops):
            raise HubUnreachable("the hub's push answer does not answer each op")
        return dict(answer)

    def changes(self, cursor: int, *, limit: int = 500, include_own: bool = False) -> dict[str, Any]:
        params: dict[str, Any] = {"cursor": cursor, "limit": limit}
        if include_own:
            params["include_own"] = "true"
        answer = self._call("GET", "/changes", params=params)
        if not isinstance(answer, dict) or not isinstance(answer.get("next_cursor"), int):
            raise HubUnreachable("the hub's changes answer has no next_cursor")
        if answer["next_cursor"] < cursor:
            raise HubUnreachable("the hub's cursor went backwards (was the hub's database replaced?)")
        return dict(answer)

    def index(self, q: str, *, kind: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"q": q, "limit": limit}
        if kind:
            params["kind"] = kind
        return list(self._call("GET", "/index", params=params).get("records") or [])

    # ------------------------------------------------ the counter's keep (hub/keep.py)
    def keep_put(self, body: dict[str, Any]) -> dict[str, Any]:
        """Share this counter's op facts, operators, audit log, master data and numbers."""
        answer = self._call("POST", "/counter/keep", body=body)
        if not isinstance(answer, dict) or not isinstance(answer.get("new"), dict):
            raise HubUnreachable("the hub's keep answer is not one")
        return dict(answer)

    def keep_get(self) -> dict[str, Any]:
        answer = self._call("GET", "/counter/keep")
        if not isinstance(answer, dict) or "seq_high" not in answer:
            raise HubUnreachable("the hub's keep answer is not one")
        return dict(answer)

    def keep_facts(self, after_seq: int, *, limit: int = 2000) -> dict[str, Any]:
        return dict(self._call("GET", "/counter/facts", params={"after_seq": after_seq, "limit": limit}))

    def keep_audit(self, after_id: int, *, limit: int = 2000) -> dict[str, Any]:
        return dict(self._call("GET", "/counter/audit", params={"after_id": after_id, "limit": limit}))

"""HTTP client of the LAN hub (httpx), with a total deadline on every call.

The hub is optional and on the LAN, so every call is short: a call that has
not got its whole answer within ``deadline_s`` (connect, send, wait, read
together) is abandoned and reported as ``HubUnreachable``; nothing here ever
waits without end. A 401 is ``HubRefused`` (the hub does not know this
counter's token), a 507 ``HubDiskFull``, a 503 naming the hub's database
``HubDamaged``: four problems, four sentences (and four exit codes of
``share``). See docs/hub-api.md for the API.
"""

from __future__ import annotations

import email.utils
import ssl
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from opd_fallback.domain.exits import ExitCode, OpdError
from opd_fallback.sync import deadline as deadlines
from opd_fallback.sync import pinning

if TYPE_CHECKING:
    from opd_fallback.config import Settings

HUB_PREFIX = "/hub/v1"


class HubError(OpdError):
    """The hub could not be used for this exchange (exit 3)."""

    exit_code = ExitCode.UNREACHABLE


class HubUnreachable(HubError):
    """No (complete) answer in time, a dropped connection, or a hub error (5xx)."""


class HubRefused(HubError):
    """The hub refused this counter's hub token (401)."""

    exit_code = ExitCode.HUB_TOKEN


class HubNotPaired(HubError):
    """The PC answering on the hub's address showed another certificate than the paired one."""


class HubDiskFull(HubError):
    """The hub PC's disk is full (507): nothing was stored."""

    exit_code = ExitCode.DISK


class HubDamaged(HubError):
    """The hub's database is damaged, or was deleted or replaced under it (503 with its code)."""

    exit_code = ExitCode.DAMAGED


_HUB_DB_CODES = ("hub_db_damaged", "hub_db_replaced", "hub_storage_failed")


def _hub_error_of(chunks: list[bytes]) -> tuple[str, str]:
    try:
        body = orjson.loads(b"".join(chunks))
        err = body.get("error") if isinstance(body, dict) else None
        if isinstance(err, dict):
            return str(err.get("code") or ""), str(err.get("message") or "")
    except orjson.JSONDecodeError:
        pass
    return "", ""


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
        verify_arg: bool | ssl.SSLContext = verify
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
    def from_settings(cls, settings: Settings, **kw: Any) -> HubClient:
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

    def _call(self, method: str, path: str, *, body: object = None,
              params: dict[str, str | int] | None = None) -> Any:
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
        if status == 507:
            code, words = _hub_error_of(chunks)
            raise HubDiskFull(words or "the hub PC's disk is full: nothing was stored; free space on the hub PC")
        if status == 503:
            code, words = _hub_error_of(chunks)
            if code in _HUB_DB_CODES:
                raise HubDamaged(words)
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

    def push(self, ops: Sequence[Mapping[str, object]], central_ids: Sequence[Mapping[str, object]] = (),
             withdrawn: Sequence[str] = ()) -> dict[str, Any]:
        answer = self._call("POST", "/ops:push", body={"ops": list(ops), "central_ids": list(central_ids),
                                                       "withdrawn": list(withdrawn)})
        results = answer.get("results") if isinstance(answer, dict) else None
        if not isinstance(results, list) or len(results) != len(ops):
            raise HubUnreachable("the hub's push answer does not answer each op")
        return dict(answer)

    def exchange(self, known: Mapping[str, str | int | None], *, want_held: bool = False,
                 ops: Sequence[Mapping[str, object]] = (), pull: Mapping[str, object] | None = None) -> dict[str, Any]:
        """An exchange: what the hub holds; with ``ops`` (this counter's after ``known.acked_seq``) the
        hub stores them in the same request when ``known`` is of its history (``pushed``, else null); with
        ``pull`` (``{"vector", "limit"}``) the first page of the others' ops (``pulled``). An older hub
        (api_version 2) answers neither: the caller pushes and pulls as before. docs/hub-api.md."""
        body: dict[str, object] = {"known": known, "want_held": want_held}
        if ops:
            body["ops"] = list(ops)
        if pull is not None:
            body["pull"] = pull
        answer = self._call("POST", "/exchange", body=body)
        if not isinstance(answer, dict) or not isinstance(answer.get("max_seq"), int) or not answer.get("epoch"):
            raise HubUnreachable("the hub's exchange answer is not the hub API (an older hub? upgrade it)")
        pushed = answer.get("pushed")
        if pushed is not None and (not isinstance(pushed, dict) or not isinstance(pushed.get("results"), list)
                                   or len(pushed["results"]) != len(ops)):
            raise HubUnreachable("the hub's exchange answer does not answer each op")
        pulled = answer.get("pulled")
        if pulled is not None and (not isinstance(pulled, dict) or not isinstance(pulled.get("vector"), dict)
                                   or not isinstance(pulled.get("ops"), list)):
            raise HubUnreachable("the hub's exchange answer has a pull that is not the hub API")
        return dict(answer)

    def pull(self, vector: dict[str, int], *, limit: int = 1000, include_own: bool = False) -> dict[str, Any]:
        """Other counters' ops above this counter's vector of per-counter positions."""
        answer = self._call("POST", "/pull", body={"vector": vector, "limit": limit, "include_own": include_own})
        if not isinstance(answer, dict) or not isinstance(answer.get("vector"), dict) \
                or not isinstance(answer.get("ops"), list):
            raise HubUnreachable("the hub's pull answer is not the hub API")
        return dict(answer)

    def changes(self, cursor: int, *, limit: int = 500, include_own: bool = False,
                with_ops: bool = True) -> dict[str, Any]:
        params: dict[str, str | int] = {"cursor": cursor, "limit": limit}
        if include_own:
            params["include_own"] = "true"
        if not with_ops:
            params["ops"] = "false"
        answer = self._call("GET", "/changes", params=params)
        if not isinstance(answer, dict) or not isinstance(answer.get("next_cursor"), int):
            raise HubUnreachable("the hub's changes answer has no next_cursor")
        if answer["next_cursor"] < cursor:
            raise HubUnreachable("the hub's cursor went backwards (was the hub's database replaced?)")
        return dict(answer)

    def index(self, q: str, *, kind: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        params: dict[str, str | int] = {"q": q, "limit": limit}
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

    def keep_slips(self, after_id: int, *, limit: int = 2000) -> dict[str, object]:
        return dict(self._call("GET", "/counter/slips", params={"after_id": after_id, "limit": limit}))

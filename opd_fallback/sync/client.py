"""HTTP client for the central sync API, version 1.1 (``docs/central-api.md``).

It speaks the contract and nothing more, so it works against any server that
implements it. Transport and status problems become typed exceptions the
retry layer and the CLI can act on:

* :class:`Unauthorized` (401): the token is wrong or revoked; retrying is useless.
* :class:`Overloaded` (429) / :class:`Unavailable` (503): nothing in the
  request was applied; wait at least ``retry_after`` seconds.
* :class:`TransientError`: other 5xx, timeouts, resets, protocol errors; the
  outcome is unknown, resend the same ops (idempotency makes that safe).
  :class:`Unreachable` (a subclass) means the connection was never made.
* :class:`PayloadTooLarge` (413): split the batch.
* :class:`RequestRefused`: any other 4xx (a client bug or a server that does
  not speak the contract).

Every answer's ``Date`` header is compared with the local clock; a skew over
five minutes is kept in :attr:`CentralClient.clock_skew_s` and reported once
through ``on_warning`` so the operator can be told.
"""

from __future__ import annotations

import email.utils
import ssl
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import orjson
from pydantic import BaseModel, ValidationError

from opd_fallback.domain.contract import (
    API_PREFIX,
    DeviceInfo,
    Health,
    IdBlock,
    MasterData,
    OpResult,
    Reconciliation,
    ReconciliationOps,
)

CLOCK_SKEW_LIMIT_S = 300.0
M = TypeVar("M", bound=BaseModel)
USER_AGENT = "opd-fallback-sync/1"
_JSON_BODY = {"Content-Type": "application/json"}


# ---------------------------------------------------------------- exceptions
class SyncError(Exception):
    """Base of everything the client raises."""


class Unauthorized(SyncError):
    """401: the device token was refused."""


class Unavailable(SyncError):
    """503 (maintenance or overload): nothing was applied; wait ``retry_after``."""

    def __init__(self, message: str, *, retry_after: float | None = None, status: int = 503) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status


class Overloaded(Unavailable):
    """429: too many requests in flight; nothing was applied."""


class TransientError(SyncError):
    """Outcome unknown (other 5xx, timeout, reset, broken answer): resend."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class Unreachable(TransientError):
    """The connection could not be made at all (DNS, refused, TLS, connect timeout)."""


class PayloadTooLarge(SyncError):
    """413: the batch is over the server's size limit; send fewer ops."""


class RequestRefused(SyncError):
    """Another 4xx: the request itself is wrong for this server."""

    def __init__(self, message: str, *, status: int, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


# ---------------------------------------------------------------- helpers
def api_base(url: str) -> str:
    """``https://his.example/`` or ``.../api/v1`` -> ``https://his.example/api/v1``."""
    u = url.strip().rstrip("/")
    return u if u.endswith(API_PREFIX) else u + API_PREFIX


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds (a number or an HTTP date), None if absent/garbled."""
    if not value:
        return None
    v = value.strip()
    try:
        return max(0.0, float(v))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(v)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"


class CentralClient:
    """A keep-alive HTTP/1.1 connection pool to one central server for one device.

    Thread-safe (httpx's pool is), so several batches may be in flight from
    worker threads. Use as a context manager or call :meth:`close`.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        ca_bundle: str | Path | None = None,
        verify: bool = True,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        max_connections: int = 8,
        on_warning: Callable[[str], None] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not token:
            raise ValueError("a device token is required (opd-fallback init or --token)")
        self.base_url = api_base(base_url)
        verify_arg: Any = verify
        if verify and ca_bundle:  # a hospital's own CA: trust exactly that bundle
            verify_arg = ssl.create_default_context(cafile=str(ca_bundle))
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/json",
                "User-Agent": USER_AGENT,
            },
            verify=verify_arg,
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            transport=transport,
        )
        self.on_warning = on_warning
        self.clock_skew_s: float | None = None  # server minus local, last seen
        self.clock_warning: str | None = None
        self._warned_skew = False

    @classmethod
    def from_settings(cls, settings: Any, **kw: Any) -> CentralClient:
        """From :class:`opd_fallback.config.Settings` (url, token, TLS, timeouts)."""
        if not settings.central_url:
            raise ValueError("no central server configured (--server URL or OPD_CENTRAL_URL)")
        return cls(
            settings.central_url,
            settings.central_token or "",
            ca_bundle=settings.ca_bundle,
            verify=settings.verify_tls,
            connect_timeout=settings.connect_timeout_s,
            read_timeout=settings.read_timeout_s,
            max_connections=max(4, settings.batches_in_flight + 2),
            **kw,
        )

    # ------------------------------------------------------------ plumbing
    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> CentralClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_clock(self, response: httpx.Response, started: float, ended: float) -> None:
        date = response.headers.get("date")
        if not date:
            return
        try:
            server = email.utils.parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError):
            return
        # the Date header has 1 s resolution; compare with the request's midpoint
        skew = server - (started + ended) / 2
        self.clock_skew_s = skew
        if abs(skew) > CLOCK_SKEW_LIMIT_S:
            ahead = "behind" if skew > 0 else "ahead of"
            self.clock_warning = (
                f"this counter's clock is {abs(skew) / 60:.0f} minutes {ahead} the central server's; "
                "ask IT to correct the date and time"
            )
            if not self._warned_skew:
                self._warned_skew = True
                if self.on_warning:
                    self.on_warning(self.clock_warning)
        else:
            self.clock_warning = None
            self._warned_skew = False

    def _request(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        ok: Sequence[int] = (200,),
    ) -> httpx.Response:
        started = time.time()
        try:
            response = self._http.request(method, path, content=content, params=params, headers=headers)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.UnsupportedProtocol) as exc:
            raise Unreachable(f"cannot reach {self.base_url}: {_describe(exc)}") from exc
        except httpx.HTTPError as exc:  # read/write timeouts, resets, protocol errors
            raise TransientError(f"{method} {path}: {_describe(exc)}") from exc
        self._check_clock(response, started, time.time())
        status = response.status_code
        if status in ok:
            return response
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        if status == 401:
            raise Unauthorized("the central server refused this device's token (401)")
        if status == 429:
            raise Overloaded(f"{method} {path}: server busy (429)", retry_after=retry_after, status=429)
        if status == 503:
            raise Unavailable(f"{method} {path}: server unavailable (503)", retry_after=retry_after)
        if status == 413:
            raise PayloadTooLarge(f"{method} {path}: request too large (413)")
        if status >= 500:
            raise TransientError(f"{method} {path}: server error {status}", status=status)
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text[:500]
        raise RequestRefused(f"{method} {path}: refused with {status}", status=status, body=body)

    @staticmethod
    def _model(cls: type[M], data: Any) -> M:
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise TransientError(f"the server's answer is not what the contract says ({cls.__name__}): {exc}") from exc

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            # a truncated or garbled answer: we cannot know what happened
            raise TransientError(f"unreadable answer from the server: {exc}") from exc

    def _call(self, model: type[M], method: str, path: str, **kw: Any) -> M:
        """One request whose 200 answer is ``model``."""
        return self._model(model, self._json(self._request(method, path, **kw)))

    # ------------------------------------------------------------ endpoints
    def health(self) -> Health:
        """``GET /health``; raises :class:`Unavailable` during maintenance."""
        return self._call(Health, "GET", "/health")

    def push_batch_raw(self, ops: Sequence[dict[str, Any]] | bytes) -> list[dict[str, Any]]:
        """``POST /ops:batch`` with envelopes (or an already encoded body); the
        results as plain dicts, checked to answer each op in order."""
        if isinstance(ops, bytes):
            body = ops
            op_ids = None
        else:
            body = orjson.dumps({"ops": list(ops)})
            op_ids = [o["op_id"] for o in ops]
        data = self._json(self._request("POST", "/ops:batch", content=body, headers=_JSON_BODY))
        results = data.get("results") if isinstance(data, dict) else None
        if not isinstance(results, list):
            raise TransientError("the server's batch answer has no results list")
        if op_ids is not None:
            got = [r.get("op_id") if isinstance(r, dict) else None for r in results]
            if got != op_ids:
                raise TransientError(
                    f"the server answered {len(results)} results that do not match the {len(op_ids)} ops sent"
                )
        return results

    def get_op(self, op_id: str) -> OpResult | None:
        """``GET /ops/{op_id}``: the remembered final outcome, or None (404)."""
        r = self._request("GET", f"/ops/{op_id}", ok=(200, 404))
        return None if r.status_code == 404 else self._model(OpResult, self._json(r))

    def device_me(self) -> DeviceInfo:
        return self._call(DeviceInfo, "GET", "/devices/me")

    def master_data(self, etag: str | None = None) -> tuple[MasterData | None, str | None, bytes | None]:
        """``GET /master-data``; ``(None, etag, None)`` when unchanged (304),
        else the model, its ETag and the raw body to cache."""
        headers = {"If-None-Match": etag} if etag else None
        r = self._request("GET", "/master-data", headers=headers, ok=(200, 304))
        if r.status_code == 304:
            return None, etag, None
        return self._model(MasterData, self._json(r)), r.headers.get("etag"), r.content

    def patient_changes_raw(self, cursor: str | None = None, limit: int = 5000) -> dict[str, Any]:
        """``GET /patients/changes`` as a plain dict (fast path for millions of rows)."""
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        data = self._json(self._request("GET", "/patients/changes", params=params))
        if not isinstance(data, dict) or not isinstance(data.get("patients"), list) or "done" not in data:
            raise TransientError("the server's patient changes answer is malformed")
        return data

    def id_block(self, kind: str, count: int) -> IdBlock:
        """``POST /id-blocks``: ``count`` new ids of ``kind`` owned by this device."""
        body = orjson.dumps({"kind": kind, "count": count})
        return self._call(IdBlock, "POST", "/id-blocks", content=body, headers=_JSON_BODY)

    def reconciliation(self, date: str, device_id: str) -> Reconciliation:
        return self._call(Reconciliation, "GET", "/reconciliation", params={"date": date, "device_id": device_id})

    def reconciliation_ops(self, date: str, device_id: str, cursor: str | None = None) -> ReconciliationOps:
        params: dict[str, Any] = {"date": date, "device_id": device_id}
        if cursor:
            params["cursor"] = cursor
        return self._call(ReconciliationOps, "GET", "/reconciliation/ops", params=params)

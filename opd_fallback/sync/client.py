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
* :class:`NotTheApi` (an :class:`Unreachable`): something else answered: a web
  page instead of JSON (a captive portal or proxy), a redirect, ``403``/``407``
  from a proxy or firewall, or JSON of the wrong shape. Each says so in words.

Every request has a total deadline (``request_timeout`` seconds, and never
past :attr:`CentralClient.deadline` when a run sets one), enforced on every
socket operation by :mod:`opd_fallback.sync.deadline`: a server that trickles
one byte at a time cannot hold a request open past it.

Every answer's ``Date`` header is compared with the local clock; a skew over
five minutes is kept in :attr:`CentralClient.clock_skew_s` and reported once
through ``on_warning`` so the operator can be told.
"""

from __future__ import annotations

import email.utils
import socket
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar, cast

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
    RefInfo,
    UsedIds,
)
from opd_fallback.domain.exits import ExitCode, OpdError
from opd_fallback.sync import deadline as deadlines
from opd_fallback.sync.seam import Answer, Params, PatientChanges

if TYPE_CHECKING:
    from opd_fallback.config import Settings

CLOCK_SKEW_LIMIT_S = 300.0
M = TypeVar("M", bound=BaseModel)
USER_AGENT = "opd-fallback-sync/1"
_JSON_BODY = {"Content-Type": "application/json"}


# ---------------------------------------------------------------- exceptions
class SyncError(OpdError):
    """Base of everything the client raises: central could not be used (exit 3)."""

    exit_code = ExitCode.UNREACHABLE


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


class NotTheApi(Unreachable):
    """Something other than central's API answered (captive portal, proxy, firewall, another site)."""


class PayloadTooLarge(SyncError):
    """413: the batch is over the server's size limit; send fewer ops."""

    exit_code = ExitCode.REFUSED


class RequestRefused(SyncError):
    """Another 4xx: the request itself is wrong for this server."""

    exit_code = ExitCode.REFUSED

    def __init__(self, message: str, *, status: int, body: object = None) -> None:
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


def _causes(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    e: BaseException | None = exc
    while e is not None and e not in out and len(out) < 10:
        out.append(e)
        e = e.__cause__ or e.__context__
    return out


def network_words(exc: BaseException, where: str, waited_s: float, received: int = 0) -> str:
    """A transport failure in words a person can act on (``received``: bytes of the answer that came)."""
    chain = _causes(exc)
    if received and isinstance(exc, (httpx.ReadTimeout, httpx.WriteTimeout)):
        return (f"central at {where} was too slow: no complete answer within {waited_s:.0f} s "
                f"(only {received} bytes came: a very slow or stuck network, or a server trickling its answer)")
    if any(isinstance(e, socket.gaierror) for e in chain) or "cannot find the name" in str(exc):
        return (f"cannot reach central at {where}: its name cannot be found; check the server address and "
                "the network (DNS)")
    if any(isinstance(e, ConnectionRefusedError) for e in chain) or "refused" in str(exc).lower():
        return (f"cannot reach central at {where}: it refused the connection; is the server running, "
                "is the address right?")
    if isinstance(exc, httpx.ConnectTimeout):
        return f"cannot reach central at {where}: no connection within {waited_s:.0f} s; check the network"
    if isinstance(exc, httpx.ReadTimeout):
        return f"central at {where} accepted the connection but did not answer within {waited_s:.0f} s"
    if isinstance(exc, httpx.ConnectError) and any(isinstance(e, ssl.SSLError) for e in chain):
        return f"the secure connection to central at {where} failed: {exc}"
    if isinstance(exc, httpx.ConnectError):
        return f"cannot reach central at {where}: {exc}"
    return f"the connection to central at {where} broke: {_describe(exc)}"


_WEB_PAGE = ("central answered with a web page, not the API: a proxy or captive portal may be in the way "
             "(open a browser on this computer, or ask IT)")


def _looks_like_a_page(response: httpx.Response) -> bool:
    ctype = response.headers.get("content-type", "").lower()
    head = response.content[:200].lstrip().lower()
    return "html" in ctype or head.startswith((b"<!doctype", b"<html", b"<head", b"<body", b"<"))


def _validation_words(exc: ValidationError) -> str:
    """``missing device_id, max_seq; wrong type for seq`` (field names only, no values)."""
    missing: list[str] = []
    wrong: list[str] = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err.get("loc", ())) or "(the whole answer)"
        (missing if err.get("type") == "missing" else wrong).append(loc)
    parts = []
    if missing:
        parts.append("missing " + ", ".join(dict.fromkeys(missing[:6])))
    if wrong:
        parts.append("wrong value for " + ", ".join(dict.fromkeys(wrong[:6])))
    return "; ".join(parts)


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
        request_timeout: float = 60.0,
        max_connections: int = 8,
        on_warning: Callable[[str], None] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not token:
            raise ValueError("a device token is required (opd-fallback init or --token)")
        self.base_url = api_base(base_url)
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.request_timeout = request_timeout
        # the run's limit (``time.monotonic()`` seconds), set by a sync run: no request goes past it
        self.deadline: Callable[[], float | None] | None = None
        verify_arg: bool | ssl.SSLContext = verify
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
        # every request's total deadline is enforced at the socket (see opd_fallback.sync.deadline)
        for t in [self._http._transport, *self._http._mounts.values()]:
            deadlines.install(t)
        self.on_warning = on_warning
        self.clock_skew_s: float | None = None  # server minus local, last seen
        self.clock_warning: str | None = None
        self._warned_skew = False

    @classmethod
    def from_settings(cls, settings: Settings, *, on_warning: Callable[[str], None] | None = None) -> CentralClient:
        """From :class:`opd_fallback.config.Settings` (url, token, TLS, timeouts)."""
        if not settings.central_url:
            raise ValueError("no central server configured (--server URL or OPD_CENTRAL_URL)")
        return cls(
            settings.central_url, settings.central_token or "", ca_bundle=settings.ca_bundle, verify=settings.verify_tls,
            connect_timeout=settings.connect_timeout_s, read_timeout=settings.read_timeout_s,
            request_timeout=getattr(settings, "request_timeout_s", 60.0),
            max_connections=max(4, settings.batches_in_flight + 2),
            on_warning=on_warning,
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
        params: Params | None = None,
        headers: dict[str, str] | None = None,
        ok: Sequence[int] = (200,),
    ) -> httpx.Response:
        now = time.monotonic()
        end = now + self.request_timeout
        run_end = self.deadline() if self.deadline else None
        if run_end is not None:
            end = min(end, run_end)
        left = end - now
        if left <= 0:
            raise Unreachable(f"{method} {path}: no time left to ask central (the run's limit has passed)")
        timeout = httpx.Timeout(min(self.read_timeout, left), connect=min(self.connect_timeout, left),
                                write=min(self.read_timeout, left), pool=min(self.connect_timeout, left))
        started = time.time()
        try:
            with deadlines.request_deadline(end) as state:
                response = self._http.request(method, path, content=content, params=params, headers=headers,
                                              timeout=timeout)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.UnsupportedProtocol) as exc:
            raise Unreachable(network_words(exc, self.base_url, time.monotonic() - now)) from exc
        except httpx.HTTPError as exc:  # read/write timeouts, resets, protocol errors
            words = network_words(exc, self.base_url, time.monotonic() - now, state.received)
            raise TransientError(f"{method} {path}: {words}") from exc
        self._check_clock(response, started, time.time())
        status = response.status_code
        if status in ok:
            if _looks_like_a_page(response):
                raise NotTheApi(_WEB_PAGE, status=status)
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
        if 300 <= status < 400:
            where = response.headers.get("location") or "another address"
            raise NotTheApi(f"central's address answered with a redirect ({status} to {where[:120]}), not the API: "
                            "a proxy or captive portal may be in the way, or the server address is wrong",
                            status=status)
        if status == 407:
            raise NotTheApi("a proxy between this counter and central asks for a login (407): "
                            "ask IT to let this counter through", status=status)
        if status == 403:  # the contract never answers 403: a proxy or firewall did
            raise NotTheApi("a proxy or firewall refused the connection to central (403): "
                            "ask IT to allow this counter to reach the server", status=status)
        if _looks_like_a_page(response):
            raise NotTheApi(f"{_WEB_PAGE} (status {status})", status=status)
        try:
            body: object = response.json()
        except ValueError:
            body = response.text[:500]
        raise RequestRefused(f"{method} {path}: refused with {status}", status=status, body=body)

    @staticmethod
    def _model(cls: type[M], data: object, what: str = "") -> M:
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise NotTheApi(f"central's answer{' to ' + what if what else ''} is not what the API promises "
                            f"({_validation_words(exc)}): is the server address right?") from exc

    @staticmethod
    def _json(response: httpx.Response) -> object:
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            if not response.content.strip():
                raise TransientError("central sent an empty answer") from exc
            if _looks_like_a_page(response):
                raise NotTheApi(_WEB_PAGE) from exc
            ctype = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype and "json" not in ctype:
                raise NotTheApi(f"central answered with {ctype[:60]}, not the API's JSON: a proxy or captive "
                                "portal may be in the way, or the server address is wrong") from exc
            # a truncated or garbled answer: we cannot know what happened
            raise TransientError("central's answer is not readable JSON (cut short or garbled)") from exc

    def _call(self, model: type[M], method: str, path: str, *, content: bytes | None = None,
              params: Params | None = None, headers: dict[str, str] | None = None) -> M:
        """One request whose 200 answer is ``model``."""
        response = self._request(method, path, content=content, params=params, headers=headers)
        return self._model(model, self._json(response), f"{method} {path}")

    # ------------------------------------------------------------ endpoints
    def health(self) -> Health:
        """``GET /health``; raises :class:`Unavailable` during maintenance."""
        return self._call(Health, "GET", "/health")

    def push_batch_raw(self, ops: Sequence[Mapping[str, object]] | bytes) -> list[Answer]:
        """``POST /ops:batch`` with envelopes (or an already encoded body); the
        results as plain dicts, checked to answer each op in order."""
        body = ops if isinstance(ops, bytes) else orjson.dumps({"ops": list(ops)})
        op_ids = None if isinstance(ops, bytes) else [o["op_id"] for o in ops]
        data = self._json(self._request("POST", "/ops:batch", content=body, headers=_JSON_BODY))
        results = data.get("results") if isinstance(data, dict) else None
        if not isinstance(results, list):
            raise NotTheApi("central's answer to POST /ops:batch is not what the API promises (missing results): "
                            "is the server address right?")
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

    def patient_changes_raw(self, cursor: str | None = None, limit: int = 5000) -> PatientChanges:
        """``GET /patients/changes`` as a plain dict (fast path for millions of rows)."""
        params: Params = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        data = self._json(self._request("GET", "/patients/changes", params=params))
        if not isinstance(data, dict) or not isinstance(data.get("patients"), list) or "done" not in data:
            raise NotTheApi("central's answer to GET /patients/changes is not what the API promises "
                            "(missing patients or done): is the server address right?")
        return cast(PatientChanges, data)

    def id_block(self, kind: str, count: int) -> IdBlock:
        """``POST /id-blocks``: ``count`` new ids of ``kind`` owned by this device."""
        body = orjson.dumps({"kind": kind, "count": count})
        return self._call(IdBlock, "POST", "/id-blocks", content=body, headers=_JSON_BODY)

    def used_ids(self, kind: str, *, max_pages: int = 100) -> list[str] | None:
        """1.2 ``GET /id-blocks/used``: every reserved id of ``kind`` issued to this
        device that applied ops used, page by page; None from a server without it
        (404: a 1.1 server)."""
        ids: list[str] = []
        cursor: str | None = None
        for _ in range(max_pages):
            params: Params = {"kind": kind}
            if cursor:
                params["cursor"] = cursor
            r = self._request("GET", "/id-blocks/used", params=params, ok=(200, 404))
            if r.status_code == 404:
                return None
            page = self._model(UsedIds, self._json(r), "GET /id-blocks/used")
            ids += page.ids
            if page.done or not page.next_cursor or page.next_cursor == cursor:
                return ids
            cursor = page.next_cursor
        raise TransientError(f"GET /id-blocks/used: more than {max_pages} pages of {kind} ids; try again later")

    def ref(self, local_ref: str) -> RefInfo | None:
        """1.2 ``GET /refs/{local_ref}``: what central mapped an offline number to, or None (404)."""
        r = self._request("GET", f"/refs/{local_ref}", ok=(200, 404))
        return None if r.status_code == 404 else self._model(RefInfo, self._json(r), "GET /refs")

    def reconciliation(self, date: str, device_id: str) -> Reconciliation:
        return self._call(Reconciliation, "GET", "/reconciliation", params={"date": date, "device_id": device_id})

    def reconciliation_ops(self, date: str, device_id: str, cursor: str | None = None) -> ReconciliationOps:
        params: Params = {"date": date, "device_id": device_id}
        if cursor:
            params["cursor"] = cursor
        return self._call(ReconciliationOps, "GET", "/reconciliation/ops", params=params)

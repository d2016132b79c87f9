"""The hub's HTTP API (FastAPI), for the counters of one hospital LAN.

A mirror, not an authority: counters push their own ops here and pull every
other counter's, so a patient registered at one counter can be found, given a
lab order and billed at another while central is down. Each counter still
syncs its own ops to central with its own token. The API is the project's
own (``/hub/v1``), described in docs/hub-api.md; the full OpenAPI document is
served at ``/hub/v1/openapi.json`` to a counter with a valid hub token.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from opd_fallback.domain import registry
from opd_fallback.domain.clock import now_iso
from opd_fallback.domain.exits import OpdError
from opd_fallback.hub import identity, keep, mirror
from opd_fallback.hub.db import connect, create_schema, hash_token
from opd_fallback.hub.models import (
    Changes,
    DeviceInfo,
    ErrorBody,
    ExchangeRequest,
    Health,
    Holding,
    IndexAnswer,
    Pulled,
    PullRequest,
    PushRequest,
    PushResponse,
)

_RECORD_KIND = f"^({'|'.join(registry.RECORD_KINDS)})$"  # the record kinds of domain/registry.py

PREFIX = "/hub/v1"
log = logging.getLogger("opd_fallback.hub")
_SQLITE_FULL, _SQLITE_CORRUPT, _SQLITE_NOTADB = 13, 11, 26


class HubError(OpdError):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _json(data: object, status: int = 200) -> Response:
    return Response(data if isinstance(data, bytes) else orjson.dumps(data), status_code=status,
                    media_type="application/json")


class Hub:
    """One writer connection (serialised by a lock: SQLite has one writer anyway)
    and a reader connection per worker thread.

    At start the file is checked (``quick_check``) and compared with what this
    hub last served (hub/identity.py); while running, every call first checks
    that the path is still the file opened at start."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        identity.quick_check(db_path)
        create_schema(db_path)
        self.writer = connect(db_path)
        keep.create(self.writer)
        self.write_lock = threading.Lock()
        self._local = threading.local()
        why = identity.check_seen(db_path, self.writer)
        if why:
            log.warning("hub: %s; a new epoch began: the counters send it what it lacks", why)
        self.ident = identity.read(self.writer)
        self.file_key = identity.file_key(db_path)
        self.gone: str | None = None
        self._told: set[tuple[str, str]] = set()
        identity.write_seen(db_path, self.ident, identity.hub_seq(self.writer))

    def check_file(self) -> None:
        """503 unless the path is still the file opened at start, with the same db_id inside."""
        if self.gone is None:
            key = identity.file_key(self.db_path)
            if key != self.file_key:
                self.gone = identity.replaced_words(self.db_path)
            else:
                try:
                    row = self.reader().execute("SELECT value FROM hub_meta WHERE name='db_id'").fetchone()
                except sqlite3.DatabaseError:
                    row = None
                if row is None or row[0] != self.ident.db_id:
                    self.gone = identity.replaced_words(self.db_path)
            if self.gone is not None:
                log.error("hub: %s", self.gone)
        if self.gone is not None:
            raise HubError(503, "hub_db_replaced", self.gone)

    def exchange(self, device_id: str, req: ExchangeRequest) -> dict[str, Any]:
        """What the hub holds (decided before the ops below are stored), then those ops stored when the
        counter's memory is of this very history, then a page pulled by the counter's vector."""
        known, want_held = req.known.model_dump(), req.want_held
        answer = mirror.holding(self.reader(), device_id, want_held=want_held)
        why = mirror.went_back(answer, known)
        if why:
            with self.write_lock:
                epoch = identity.new_epoch(self.writer, why)
            log.warning("hub: %s; new epoch %s: the counters send it what it lacks", why, epoch)
            answer = mirror.holding(self.reader(), device_id, want_held=want_held)
            answer["went_back"] = True
            self.ident = identity.read(self.reader())
        elif (known.get("db_id") and (known.get("db_id"), known.get("epoch")) != (answer["db_id"], answer["epoch"])
              and (device_id, answer["epoch"]) not in self._told):
            self._told.add((device_id, answer["epoch"]))
            log.warning("hub: counter %s last exchanged with another history of this hub (%s, since %s); it "
                        "sends what the hub lacks (it held ops to seq %s, the hub holds %s)", device_id,
                        answer["epoch_reason"], answer["epoch_at"], known.get("acked_seq"), answer["max_seq"])
        if req.ops:
            same = (known.get("db_id"), known.get("epoch")) == (answer["db_id"], answer["epoch"])
            answer["pushed"] = None
            if same and not answer["went_back"]:
                out = self.push(device_id, req.ops, [], [])
                answer["pushed"] = {"results": out.results, "central_ids_new": out.central_ids_new,
                                    "central_ids_refused": out.central_ids_refused, "hub_seq": out.hub_seq}
        if req.pull is not None:
            vector = {str(k).upper(): int(v) for k, v in req.pull.vector.items()}
            answer["pulled"] = mirror.pull_page(self.reader(), device_id, vector, req.pull.limit,
                                                include_own=req.pull.include_own)
        return answer

    def served(self) -> None:
        identity.write_seen(self.db_path, self.ident, identity.hub_seq(self.reader()))

    def reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = connect(self.db_path)
        return conn

    def device_for(self, token: str) -> str | None:
        row = self.reader().execute("SELECT device_id FROM device WHERE token_hash=?",
                                    (hash_token(token),)).fetchone()
        return row[0] if row else None

    def push(self, device_id: str, ops: Sequence[object], ids: Sequence[object],
             withdrawn: Sequence[object]) -> mirror.PushOutcome:
        with self.write_lock:
            self.check_file()
            out = mirror.push(self.writer, device_id, ops, ids, withdrawn)
            identity.write_seen(self.db_path, self.ident, out.hub_seq)
            return out


def _storage_error(hub: Hub, exc: sqlite3.Error) -> HubError:
    """The hub's own storage failed: disk full and a damaged file are said as such (never 'unreachable')."""
    code = getattr(exc, "sqlite_errorcode", None)
    primary = None if code is None else code & 0xFF
    path = hub.db_path
    if primary is None and "full" in str(exc).lower():
        primary = _SQLITE_FULL
    if primary is None and ("malformed" in str(exc).lower() or "not a database" in str(exc).lower()):
        primary = _SQLITE_CORRUPT
    if primary == _SQLITE_FULL:
        log.error("hub: the disk holding %s is full; nothing was stored", path)
        return HubError(507, "hub_disk_full", f"the hub PC's disk is full (where {path} is): nothing was stored; "
                        "free space on the hub PC, then share again")
    if primary in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
        words = identity.damaged_words(path, str(exc))
        log.error("hub: %s", words)
        return HubError(503, "hub_db_damaged", words)
    log.error("hub: storage failed on %s (%s)", path, type(exc).__name__)
    return HubError(503, "hub_storage_failed", f"the hub could not use its database {path} ({exc}); "
                    "see the hub's log on the hub PC")


async def _device(request: Request) -> str:
    """The counter owning the bearer token, else 401."""
    hub: Hub = request.app.state.hub
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    dev = None
    if scheme.lower() == "bearer" and token.strip():
        dev = await run_in_threadpool(hub.device_for, token.strip())
    if dev is None:
        raise HubError(401, "unauthorized", "a valid hub token is required (Authorization: Bearer ...); "
                       "run 'opd-fallback hub add-device ID' on the hub PC")
    await run_in_threadpool(hub.check_file)
    return dev


Device = Annotated[str, Depends(_device)]


def create_app(db_path: Path | str) -> FastAPI:
    hub = Hub(Path(db_path))
    app = FastAPI(
        title="opd-fallback LAN hub",
        version="2",  # api_version 2 (the exchange by what the hub holds) under the same /hub/v1 paths
        description="Counters of one hospital share their records while central is down (docs/hub-api.md).",
        # the API description tells an attacker every route and field: served only to a counter
        # with a valid hub token (as central does without --dev-docs)
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.hub = hub
    unauthorized: dict[int | str, dict[str, object]] = {
        401: {"model": ErrorBody, "description": "No valid hub token for a counter"}}

    @app.exception_handler(HubError)
    async def _hub_error(request: Request, exc: HubError) -> Response:
        return _json({"error": {"code": exc.code, "message": exc.message}}, exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        words = []
        for err in exc.errors()[:3]:
            where = ".".join(str(x) for x in err.get("loc", ()) if x not in ("body", "query"))
            words.append(f"{where or 'body'}: {err.get('msg', 'is not valid')}")
        return _json({"error": {"code": "validation_failed", "message": "; ".join(words)}}, 422)

    async def _db_error(request: Request, exc: Exception) -> Response:
        err = _storage_error(hub, exc)  # type: ignore[arg-type]
        return _json({"error": {"code": err.code, "message": err.message}}, err.status)

    import sqlcipher3.dbapi2 as cipher_driver  # the hub's file is opened through SQLCipher (opd_fallback/cipher)

    for error_class in (sqlite3.Error, cipher_driver.Error):
        app.add_exception_handler(error_class, _db_error)


    @app.get(PREFIX + "/openapi.json", include_in_schema=False)
    def openapi_document(dev: Device) -> Response:
        return _json(app.openapi())

    @app.get(PREFIX + "/health", response_model=Health, summary="Liveness (no token needed)")
    def health() -> Response:
        try:
            hub.check_file()
        except HubError as exc:
            return _json({"error": {"code": exc.code, "message": exc.message}}, exc.status)
        return _json({"status": "ok", "server_time": now_iso(), "api_version": mirror.API_VERSION})

    @app.get(PREFIX + "/devices/me", response_model=DeviceInfo, responses=unauthorized,
             summary="The token's counter as the hub knows it")
    def devices_me(dev: Device) -> Response:
        return _json(mirror.device_info(hub.reader(), dev))

    too_big = HubError(413, "too_large", f"a push is at most {mirror.MAX_PUSH_OPS} ops and 1 MiB")

    async def read_body(request: Request, limit: int) -> object:
        """The JSON body, at most ``limit`` bytes (else 413) and 32 levels deep (else 422)."""
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            raise too_big
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise too_big
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise HubError(422, "validation_failed", "the body is not JSON (or nests too deep)") from None
        if mirror.too_deep(data):
            raise HubError(422, "validation_failed", f"the body nests deeper than {mirror.MAX_DEPTH} levels; "
                           "an op envelope is a few levels deep")
        return data

    @app.post(PREFIX + "/ops:push", response_model=PushResponse,
              responses={**unauthorized, 413: {"model": ErrorBody, "description": "Too many ops or bytes"},
                         422: {"model": ErrorBody, "description": "The body is not a push"}},
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": PushRequest.model_json_schema()}}}},
              summary="Store this counter's ops and learned central ids; answered after commit")
    async def push(request: Request, dev: Device) -> Response:
        data = await read_body(request, mirror.MAX_PUSH_BYTES)
        ops = data.get("ops", []) if isinstance(data, dict) else None
        ids = data.get("central_ids", []) if isinstance(data, dict) else None
        gone = data.get("withdrawn", []) if isinstance(data, dict) else None
        if not isinstance(ops, list) or not isinstance(ids, list) or not isinstance(gone, list):
            raise HubError(422, "validation_failed", "the body must be {\"ops\": [...], \"central_ids\": [...]}")
        if len(ops) > mirror.MAX_PUSH_OPS or len(ids) > 5000 or len(gone) > 5000:
            raise too_big
        out = await run_in_threadpool(hub.push, dev, ops, ids, gone)
        return _json({"results": out.results, "central_ids_new": out.central_ids_new,
                      "central_ids_refused": out.central_ids_refused, "hub_seq": out.hub_seq})

    @app.post(PREFIX + "/exchange", response_model=Holding,
              responses={**unauthorized, 413: {"model": ErrorBody, "description": "Too many ops or bytes"}},
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": ExchangeRequest.model_json_schema()}}}},
              summary="An exchange: what the hub holds; with ops, store them; with pull, a page of the others'")
    async def exchange(request: Request, dev: Device) -> Response:
        data = await read_body(request, mirror.MAX_PUSH_BYTES + 64 * 1024)  # the ops and a vector
        try:
            body = ExchangeRequest.model_validate(data)
        except ValidationError as exc:
            raise RequestValidationError(exc.errors()) from None
        return _json(await run_in_threadpool(hub.exchange, dev, body))

    @app.post(PREFIX + "/pull", response_model=Pulled, responses=unauthorized,
              summary="Every other counter's ops above the caller's vector of per-counter positions")
    def pull(body: PullRequest, dev: Device) -> Response:
        vector = {str(k).upper(): int(v) for k, v in body.vector.items()}
        return _json(mirror.pull(hub.reader(), dev, vector, body.limit, include_own=body.include_own))

    @app.get(PREFIX + "/changes", response_model=Changes, responses=unauthorized,
             summary="Every other counter's ops and all learned central ids after the cursor, in hub order")
    def changes(
        dev: Device,
        cursor: Annotated[int, Query(ge=0, le=mirror.MAX_SAFE_INT)] = 0,
        limit: Annotated[int, Query(ge=1, le=mirror.MAX_PAGE)] = 500,
        include_own: Annotated[bool, Query(description="Also this counter's own ops (restore)")] = False,
        ops: Annotated[bool, Query(description="false: only central ids and withdrawals (ops come by /pull)")] = True,
    ) -> Response:
        return _json(mirror.changes(hub.reader(), dev, cursor, limit, include_own=include_own, with_ops=ops))

    @app.get(PREFIX + "/index", response_model=IndexAnswer, responses=unauthorized,
             summary="Search the merged index: offline number, central id, mobile, or start of a name")
    def index(
        dev: Device,
        q: Annotated[str, Query(min_length=1, max_length=100)],
        kind: Annotated[str | None, Query(pattern=_RECORD_KIND)] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 20,
    ) -> Response:
        return _json({"records": mirror.search(hub.reader(), q, kind=kind, limit=limit)})

    # ---- the counter's own keep, read back by its restore (hub/keep.py) ----------------
    @app.post(PREFIX + "/counter/keep", responses=unauthorized, include_in_schema=True,
              summary="Keep this counter's op facts, operators (PIN hashes), audit log, master data, numbers")
    async def keep_put(request: Request, dev: Device) -> Response:
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > 4 * mirror.MAX_PUSH_BYTES:
                raise HubError(413, "too_large", "a keep call is at most 4 MiB")
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise HubError(422, "validation_failed", "the body is not JSON") from None

        def put() -> dict[str, int]:
            with hub.write_lock:
                return keep.put(hub.writer, dev, data)
        try:
            new = await run_in_threadpool(put)
        except keep.KeepRefused as exc:
            raise HubError(422, "validation_failed", str(exc)) from None
        return _json({"new": new})

    @app.get(PREFIX + "/counter/keep", responses=unauthorized,
             summary="What this counter kept here (operators, numbers) and the newest master data")
    def keep_get(dev: Device) -> Response:
        return _json(keep.get(hub.reader(), dev))

    @app.get(PREFIX + "/counter/facts", responses=unauthorized, summary="This counter's op facts after a seq")
    def keep_facts(dev: Device, after_seq: Annotated[int, Query(ge=0, le=2**53 - 1)] = 0,
                   limit: Annotated[int, Query(ge=1, le=keep.MAX_PAGE)] = 2000) -> Response:
        return _json(keep.facts_page(hub.reader(), dev, after_seq, limit))

    @app.get(PREFIX + "/counter/audit", responses=unauthorized, summary="This counter's audit log after an id")
    def keep_audit(dev: Device, after_id: Annotated[int, Query(ge=0, le=2**53 - 1)] = 0,
                   limit: Annotated[int, Query(ge=1, le=keep.MAX_PAGE)] = 2000) -> Response:
        return _json(keep.audit_page(hub.reader(), dev, after_id, limit))

    @app.get(PREFIX + "/counter/slips", responses=unauthorized,
             summary="This counter's back-entered slips (backentry_slip rows) after a row id")
    def keep_slips(dev: Device, after_id: Annotated[int, Query(ge=0, le=2**53 - 1)] = 0,
                   limit: Annotated[int, Query(ge=1, le=keep.MAX_PAGE)] = 2000) -> Response:
        return _json(keep.slips_page(hub.reader(), dev, after_id, limit))

    return app

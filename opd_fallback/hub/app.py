"""The hub's HTTP API (FastAPI), for the counters of one hospital LAN.

A mirror, not an authority: counters push their own ops here and pull every
other counter's, so a patient registered at one counter can be found, given a
lab order and billed at another while central is down. Each counter still
syncs its own ops to central with its own token. The API is the project's
own (``/hub/v1``), described in docs/hub-api.md; the full OpenAPI document is
served at ``/hub/v1/openapi.json`` to a counter with a valid hub token.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from opd_fallback.domain import registry
from opd_fallback.domain.clock import now_iso
from opd_fallback.domain.exits import OpdError
from opd_fallback.hub import keep, mirror
from opd_fallback.hub.db import connect, create_schema, hash_token

_RECORD_KIND = f"^({'|'.join(registry.RECORD_KINDS)})$"  # the record kinds of domain/registry.py

PREFIX = "/hub/v1"


class HubError(OpdError):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


# --- documented shapes (the answers are written with orjson directly) ---------------
class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


class CentralIdIn(BaseModel):
    local_ref: str = Field(description="The offline number of the record (e.g. C03-261130-000042)")
    kind: str = Field(description="patient | visit | lab_order | payment")
    central_id: str = Field(description="The id central gave it (uhid, visit_id, order_id, receipt_id)")


class PushRequest(BaseModel):
    ops: list[dict[str, Any]] = Field(default_factory=list, max_length=mirror.MAX_PUSH_OPS,
                                      description="Op envelopes of the token's own counter, as sent to central")
    central_ids: list[CentralIdIn] = Field(default_factory=list, max_length=5000,
                                           description="Central ids this counter has learned")
    withdrawn: list[str] = Field(default_factory=list, max_length=5000,
                                 description="op_ids of this counter's ops a supervisor cancelled (never sent)")


class PushResult(BaseModel):
    op_id: str
    status: str = Field(description="stored | duplicate | rejected")
    error: ErrorDetail | None = None


class PushResponse(BaseModel):
    results: list[PushResult]
    central_ids_new: int
    hub_seq: int = Field(description="The hub's sequence after this push was committed")


class PulledOp(BaseModel):
    hub_seq: int
    received_at: str
    op: dict[str, Any] = Field(description="The envelope exactly as its counter pushed it")


class PulledCentralId(BaseModel):
    hub_seq: int
    local_ref: str
    kind: str
    central_id: str
    reported_by: str
    reported_at: str


class PulledWithdrawn(BaseModel):
    hub_seq: int
    op_id: str
    device_id: str


class Changes(BaseModel):
    ops: list[PulledOp]
    central_ids: list[PulledCentralId]
    withdrawn: list[PulledWithdrawn]
    next_cursor: int = Field(description="Pass as cursor next time (even when this page is empty)")
    done: bool


class DeviceInfo(BaseModel):
    device_id: str
    max_seq: int = Field(description="Highest seq of this counter's ops on the hub (0: none)")
    ops: int
    last_recorded_at: str | None
    last_push_at: str | None
    hub_seq: int


class Health(BaseModel):
    status: str
    server_time: str


class IndexRecord(BaseModel):
    local_ref: str
    kind: str
    device_id: str
    op_id: str
    recorded_at: str
    patient_ref: str | None
    visit_ref: str | None
    lab_order_ref: str | None
    name: str | None
    mobile: str | None
    uhid: str | None
    voided: bool
    central_id: str | None
    detail: dict[str, Any]


class IndexAnswer(BaseModel):
    records: list[IndexRecord]


def _json(data: Any, status: int = 200) -> Response:
    return Response(data if isinstance(data, bytes) else orjson.dumps(data), status_code=status,
                    media_type="application/json")


class Hub:
    """One writer connection (serialised by a lock: SQLite has one writer anyway)
    and a reader connection per worker thread."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        create_schema(db_path)
        self.writer = connect(db_path)
        keep.create(self.writer)
        self.write_lock = threading.Lock()
        self._local = threading.local()

    def reader(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = connect(self.db_path)
        return conn

    def device_for(self, token: str) -> str | None:
        row = self.reader().execute("SELECT device_id FROM device WHERE token_hash=?",
                                    (hash_token(token),)).fetchone()
        return row[0] if row else None

    def push(self, device_id: str, ops: list[Any], ids: list[Any], withdrawn: list[Any]) -> mirror.PushOutcome:
        with self.write_lock:
            return mirror.push(self.writer, device_id, ops, ids, withdrawn)


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
    return dev


Device = Annotated[str, Depends(_device)]


def create_app(db_path: Path | str) -> FastAPI:
    hub = Hub(Path(db_path))
    app = FastAPI(
        title="opd-fallback LAN hub",
        version="1",
        description="Counters of one hospital share their records while central is down (docs/hub-api.md).",
        # the API description tells an attacker every route and field: served only to a counter
        # with a valid hub token (as central does without --dev-docs)
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.hub = hub
    unauthorized: dict[int | str, dict[str, Any]] = {
        401: {"model": ErrorBody, "description": "No valid hub token for a counter"}}

    @app.exception_handler(HubError)
    async def _hub_error(request: Request, exc: HubError) -> Response:
        return _json({"error": {"code": exc.code, "message": exc.message}}, exc.status)


    @app.get(PREFIX + "/openapi.json", include_in_schema=False)
    def openapi_document(dev: Device) -> Response:
        return _json(app.openapi())

    @app.get(PREFIX + "/health", response_model=Health, summary="Liveness (no token needed)")
    def health() -> Response:
        return _json({"status": "ok", "server_time": now_iso()})

    @app.get(PREFIX + "/devices/me", response_model=DeviceInfo, responses=unauthorized,
             summary="The token's counter as the hub knows it")
    def devices_me(dev: Device) -> Response:
        return _json(mirror.device_info(hub.reader(), dev))

    too_big = HubError(413, "too_large", f"a push is at most {mirror.MAX_PUSH_OPS} ops and 1 MiB")

    @app.post(PREFIX + "/ops:push", response_model=PushResponse,
              responses={**unauthorized, 413: {"model": ErrorBody, "description": "Too many ops or bytes"},
                         422: {"model": ErrorBody, "description": "The body is not a push"}},
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": PushRequest.model_json_schema()}}}},
              summary="Store this counter's ops and learned central ids; answered after commit")
    async def push(request: Request, dev: Device) -> Response:
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > mirror.MAX_PUSH_BYTES:
            raise too_big
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > mirror.MAX_PUSH_BYTES:
                raise too_big
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise HubError(422, "validation_failed", "the body is not JSON") from None
        ops = data.get("ops", []) if isinstance(data, dict) else None
        ids = data.get("central_ids", []) if isinstance(data, dict) else None
        gone = data.get("withdrawn", []) if isinstance(data, dict) else None
        if not isinstance(ops, list) or not isinstance(ids, list) or not isinstance(gone, list):
            raise HubError(422, "validation_failed", "the body must be {\"ops\": [...], \"central_ids\": [...]}")
        if len(ops) > mirror.MAX_PUSH_OPS or len(ids) > 5000 or len(gone) > 5000:
            raise too_big
        out = await run_in_threadpool(hub.push, dev, ops, ids, gone)
        return _json({"results": out.results, "central_ids_new": out.central_ids_new, "hub_seq": out.hub_seq})

    @app.get(PREFIX + "/changes", response_model=Changes, responses=unauthorized,
             summary="Every other counter's ops and all learned central ids after the cursor, in hub order")
    def changes(
        dev: Device,
        cursor: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=mirror.MAX_PAGE)] = 500,
        include_own: Annotated[bool, Query(description="Also this counter's own ops (restore)")] = False,
    ) -> Response:
        return _json(mirror.changes(hub.reader(), dev, cursor, limit, include_own=include_own))

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

    return app

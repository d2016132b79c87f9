"""The FastAPI app of the reference central server (contract v1, /api/v1).

Routes are thin: authentication, body limits and shape, then the applier or
a read query. Responses are serialised with orjson directly; each route still
declares its ``response_model`` so the OpenAPI document describes what is
really sent (the schemathesis run in the tests holds us to it).
"""

from __future__ import annotations

import threading
from datetime import date
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from opd_fallback.central import reads
from opd_fallback.central.apply import Applier
from opd_fallback.central.db import connect, create_schema, hash_token, is_maintenance
from opd_fallback.central.guard import Guard
from opd_fallback.central.master import MasterIndex, etag_matches, load_master
from opd_fallback.central.settings import CentralSettings
from opd_fallback.domain.clock import now_iso
from opd_fallback.domain.contract import (
    API_PREFIX,
    MAX_BATCH_BYTES,
    MAX_BATCH_OPS,
    BatchResponse,
    DeviceInfo,
    Health,
    IdBlock,
    IdBlockRequest,
    MasterData,
    OpResult,
    PatientChanges,
    Reconciliation,
    ReconciliationOps,
)


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    """Body of every non-2xx answer made by the server itself."""

    error: ErrorDetail


class InvalidBody(BaseModel):
    """422: FastAPI's ``detail`` list plus the contract-style ``error`` with ``fields``."""

    detail: list[dict[str, Any]]
    error: dict[str, Any]


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json", headers=headers)


def _doc(status: int, text: str) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorBody, "description": text}}


COMMON: dict[int | str, dict[str, Any]] = {
    **_doc(401, "No valid device token"),
    **_doc(429, "Too many requests in flight; nothing applied; see Retry-After"),
    **_doc(503, "Down for maintenance (or an injected fault); nothing applied; see Retry-After"),
}
# The batch body as documented. No maxItems: more than 500 ops is answered 413
# (the contract's choice), not 422, so the limit is stated in words.
BATCH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["ops"],
    "properties": {"ops": {
        "type": "array", "minItems": 1, "items": {"type": "object"},
        "description": f"1 to {MAX_BATCH_OPS} op envelopes, at most 1 MiB in all (more: 413)",
    }},
}
DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"


class Central:
    """Holds the applier, reader connections and master data of one app."""

    def __init__(self, settings: CentralSettings) -> None:
        self.settings = settings
        create_schema(settings.db)
        self.master: MasterIndex = load_master(settings.master_data)
        self.applier = Applier(connect(settings.db), self.master)
        self._local = threading.local()
        self._flag_conn = connect(settings.db)

    def reader(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = connect(self.settings.db)
        return conn

    def maintenance(self) -> bool:
        """Called by the Guard on the event loop thread only (its own connection)."""
        return is_maintenance(self._flag_conn)

    def device_for(self, token: str) -> str | None:
        row = self.reader().execute(
            "SELECT device_id FROM device WHERE token_hash=?", (hash_token(token),)
        ).fetchone()
        return row[0] if row else None


def _device(request: Request) -> str:
    """The device owning the bearer token, else 401."""
    central: Central = request.app.state.central
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    dev = central.device_for(token.strip()) if scheme.lower() == "bearer" and token.strip() else None
    if dev is None:
        raise ApiError(401, "unauthorized", "a valid device token is required (Authorization: Bearer ...)",
                       {"WWW-Authenticate": "Bearer"})
    return dev


Device = Annotated[str, Depends(_device)]


def create_app(settings: CentralSettings) -> FastAPI:
    """The reference central server over ``settings.db``."""
    central = Central(settings)
    app = FastAPI(
        title="opd-fallback reference central server",
        version="1.1",
        description="Implements the central sync API, version 1.1 (docs/central-api.md).",
        # The API description tells an attacker every route and field: without
        # --dev-docs it is served only to a device with a valid token.
        openapi_url="/openapi.json" if settings.dev_docs else None,
        docs_url="/docs" if settings.dev_docs else None,
        redoc_url=None,
    )
    app.state.central = central
    app.add_middleware(Guard, settings=settings, is_maintenance=central.maintenance)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        return _json({"error": {"code": exc.code, "message": exc.message}}, exc.status, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 400:  # a body FastAPI could not parse: same answer as any invalid body
            return await _invalid(request, RequestValidationError(
                [{"loc": ("body",), "msg": str(exc.detail), "type": "json_invalid"}]))
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _json({"error": {"code": code, "message": str(exc.detail)}}, exc.status_code,
                     dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        detail = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
            for e in exc.errors()
        ]
        fields = [{"field": ".".join(str(p) for p in d["loc"][1:]) or str(d["loc"][0] if d["loc"] else ""),
                   "code": d["type"], "message": d["msg"]} for d in detail]
        message = "; ".join(f"{f['field']}: {f['message']}" for f in fields) or "the request is not valid"
        return JSONResponse(
            {"detail": detail, "error": {"code": "validation_failed", "message": message, "fields": fields}},
            status_code=422,
        )

    def bad_body(message: str) -> RequestValidationError:
        return RequestValidationError([{"loc": ("body", "ops"), "msg": message, "type": "value_error"}])

    @app.post(
        API_PREFIX + "/ops:batch",
        response_model=BatchResponse,
        responses={**COMMON, **_doc(413, "More than 500 ops or more than 1 MiB"),
                   422: {"model": InvalidBody, "description": "The body is not {\"ops\": [objects...]}"}},
        openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": BATCH_SCHEMA}}}},
        summary="Push a batch of ops",
    )
    async def push_ops(request: Request, dev: Device) -> Response:
        length = request.headers.get("content-length", "")
        too_big = ApiError(413, "too_large", f"a batch is at most {MAX_BATCH_OPS} ops and 1 MiB")
        if length.isdigit() and int(length) > MAX_BATCH_BYTES:
            raise too_big
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BATCH_BYTES:
                raise too_big
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise bad_body("the body is not JSON") from None
        ops = data.get("ops") if isinstance(data, dict) else None
        if not isinstance(ops, list) or not all(isinstance(o, dict) for o in ops):
            raise bad_body("the body must be an object whose ops is a list of objects")
        if not ops:
            raise bad_body("give at least one op")
        if len(ops) > MAX_BATCH_OPS:
            raise too_big
        results = await run_in_threadpool(central.applier.apply_batch, dev, ops)
        return _json({"results": results})

    if not settings.dev_docs:
        @app.get("/openapi.json", include_in_schema=False)
        def openapi_document(dev: Device) -> Response:
            return _json(app.openapi())

    @app.get(API_PREFIX + "/health", response_model=Health, responses=COMMON, summary="Liveness")
    def health(dev: Device) -> Response:
        return _json({"status": "ok", "server_time": now_iso()})

    @app.get(API_PREFIX + "/ops/{op_id}", response_model=OpResult,
             responses={**COMMON, **_doc(404, "No remembered outcome for this op of this device")})
    def get_op(op_id: str, dev: Device) -> Response:
        out = reads.outcome(central.reader(), op_id, dev)
        if out is None:
            raise ApiError(404, "not_found", "no remembered outcome for this op_id")
        return _json(out)

    @app.get(API_PREFIX + "/devices/me", response_model=DeviceInfo, responses=COMMON)
    def devices_me(dev: Device) -> Response:
        return _json(reads.device_info(central.reader(), dev))

    @app.get(
        API_PREFIX + "/master-data",
        response_model=MasterData,
        responses={**COMMON, 304: {"description": "Not modified (If-None-Match matched the ETag)"}},
    )
    def master_data(request: Request, dev: Device) -> Response:
        m = central.master
        headers = {"ETag": m.etag, "Cache-Control": "no-cache"}
        if etag_matches(request.headers.get("if-none-match"), m.etag):
            return Response(status_code=304, headers=headers)
        return Response(m.body, media_type="application/json", headers=headers)

    @app.get(API_PREFIX + "/patients/changes", response_model=PatientChanges, responses=COMMON)
    def patient_changes(
        dev: Device,
        cursor: Annotated[str | None, Query(pattern=r"^\d{1,18}$")] = None,
        limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
    ) -> Response:
        return _json(reads.patient_changes(central.reader(), int(cursor or 0), limit))

    @app.post(API_PREFIX + "/id-blocks", response_model=IdBlock, responses=COMMON)
    async def id_blocks(req: IdBlockRequest, dev: Device) -> Response:
        ids = await run_in_threadpool(central.applier.issue_ids, dev, req.kind, req.count)
        return _json({"kind": req.kind, "ids": ids})

    def day(value: str) -> str:
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError:
            raise RequestValidationError(
                [{"loc": ("query", "date"), "msg": "must be a real date written YYYY-MM-DD", "type": "value_error"}]
            ) from None

    @app.get(API_PREFIX + "/reconciliation", response_model=Reconciliation, responses=COMMON)
    def reconciliation(
        dev: Device,
        date: Annotated[str, Query(pattern=DATE_PATTERN)],
        device_id: Annotated[str, Query(min_length=1, max_length=32)],
    ) -> Response:
        return _json(reads.reconciliation(central.reader(), day(date), device_id))

    @app.get(API_PREFIX + "/reconciliation/ops", response_model=ReconciliationOps, responses=COMMON)
    def reconciliation_ops(
        dev: Device,
        date: Annotated[str, Query(pattern=DATE_PATTERN)],
        device_id: Annotated[str, Query(min_length=1, max_length=32)],
        cursor: Annotated[str | None, Query(max_length=64)] = None,
        limit: Annotated[int, Query(ge=1, le=5000)] = reads.RECON_PAGE,
    ) -> Response:
        return _json(reads.reconciliation_ops(central.reader(), day(date), device_id, cursor, limit))

    return app

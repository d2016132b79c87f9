"""What a device asks about itself and the hospital: ``/health``, ``/devices/me``,
``/master-data``, and (without ``--dev-docs``) the API description ``/openapi.json``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from opd_fallback.central import reads
from opd_fallback.central.deps import CentralDep, Device
from opd_fallback.central.errors import COMMON, json_response
from opd_fallback.central.master import etag_matches
from opd_fallback.domain.clock import now_iso
from opd_fallback.domain.contract import API_PREFIX, DeviceInfo, Health, MasterData

router = APIRouter(prefix=API_PREFIX)
openapi_behind_token = APIRouter()


@router.get("/health", response_model=Health, responses=COMMON, summary="Liveness")
def health(dev: Device) -> Response:
    return json_response({"status": "ok", "server_time": now_iso()})


@router.get("/devices/me", response_model=DeviceInfo, responses=COMMON)
def devices_me(dev: Device, central: CentralDep) -> Response:
    with central.reader() as conn:
        return json_response(reads.device_info(conn, dev))


@router.get(
    "/master-data",
    response_model=MasterData,
    responses={**COMMON, 304: {"description": "Not modified (If-None-Match matched the ETag)"}},
)
def master_data(request: Request, dev: Device, central: CentralDep) -> Response:
    m = central.master
    headers = {"ETag": m.etag, "Cache-Control": "no-cache"}
    if etag_matches(request.headers.get("if-none-match"), m.etag):
        return Response(status_code=304, headers=headers)
    return Response(m.body, media_type="application/json", headers=headers)


@openapi_behind_token.get("/openapi.json", include_in_schema=False)
def openapi_document(request: Request, dev: Device) -> Response:
    """The API description tells an attacker every route and field: without
    ``--dev-docs`` it is served only to a device with a valid token."""
    return json_response(request.app.openapi())

"""The write side: ``POST /ops:batch``, ``GET /ops/{op_id}``, ``POST /id-blocks``,
and (1.2) what became of them: ``GET /id-blocks/used``, ``GET /refs/{local_ref}``.

Thin on purpose: body limits and shape here, everything else in the applier
(run in a worker thread, so the event loop never waits for the database).
"""

from __future__ import annotations

from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from opd_fallback.central import reads
from opd_fallback.central.deps import CentralDep, Device
from opd_fallback.central.errors import COMMON, ApiError, InvalidBody, doc, invalid, json_response
from opd_fallback.central.jsontypes import JSONObject
from opd_fallback.domain.contract import (
    API_PREFIX,
    MAX_BATCH_BYTES,
    MAX_BATCH_OPS,
    BatchResponse,
    IdBlock,
    IdBlockRequest,
    OpResult,
    RefInfo,
    UsedIds,
)

router = APIRouter(prefix=API_PREFIX)

# The batch body as documented. No maxItems: more than 500 ops is answered 413
# (the contract's choice), not 422, so the limit is stated in words.
BATCH_SCHEMA: JSONObject = {
    "type": "object",
    "required": ["ops"],
    "properties": {"ops": {
        "type": "array", "minItems": 1, "items": {"type": "object"},
        "description": f"1 to {MAX_BATCH_OPS} op envelopes, at most 1 MiB in all (more: 413)",
    }},
}


def _bad_body(message: str) -> Exception:
    return invalid(("body", "ops"), message)


@router.post(
    "/ops:batch",
    response_model=BatchResponse,
    responses={**COMMON, **doc(413, "More than 500 ops or more than 1 MiB"),
               422: {"model": InvalidBody, "description": "The body is not {\"ops\": [objects...]}"}},
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": BATCH_SCHEMA}}}},
    summary="Push a batch of ops",
)
async def push_ops(request: Request, dev: Device, central: CentralDep) -> Response:
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
        raise _bad_body("the body is not JSON") from None
    ops = data.get("ops") if isinstance(data, dict) else None
    if not isinstance(ops, list) or not all(isinstance(o, dict) for o in ops):
        raise _bad_body("the body must be an object whose ops is a list of objects")
    if not ops:
        raise _bad_body("give at least one op")
    if len(ops) > MAX_BATCH_OPS:
        raise too_big
    results = await run_in_threadpool(central.apply_batch, dev, ops)
    return json_response({"results": results})


@router.get("/ops/{op_id}", response_model=OpResult,
            responses={**COMMON, **doc(404, "No remembered outcome for this op of this device")})
def get_op(op_id: str, dev: Device, central: CentralDep) -> Response:
    with central.reader() as conn:
        out = reads.outcome(conn, op_id, dev)
    if out is None:
        raise ApiError(404, "not_found", "no remembered outcome for this op_id")
    return json_response(out)


@router.post("/id-blocks", response_model=IdBlock, responses=COMMON)
async def id_blocks(req: IdBlockRequest, dev: Device, central: CentralDep) -> Response:
    ids = await run_in_threadpool(central.issue_ids, dev, req.kind, req.count)
    return json_response({"kind": req.kind, "ids": ids})


@router.get("/id-blocks/used", response_model=UsedIds, responses=COMMON,
            summary="Reserved ids of this device that applied ops used (1.2)")
def id_blocks_used(
    dev: Device,
    central: CentralDep,
    kind: Annotated[Literal["uhid", "receipt", "sample"], Query()],
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = reads.USED_PAGE,
) -> Response:
    if cursor is not None and "\x00" in cursor:  # PostgreSQL text cannot hold it: a 422, never its 500
        raise ApiError(422, "validation_failed",
                       "cursor: contains a NUL byte; send the next_cursor of the previous page as it came")
    with central.reader() as conn:
        return json_response(reads.used_ids(conn, dev, kind, cursor, limit))


@router.get("/refs/{local_ref}", response_model=RefInfo,
            responses={**COMMON, **doc(404, "No applied op made or linked this local_ref yet")},
            summary="What a local_ref maps to (1.2)")
def get_ref(local_ref: str, dev: Device, central: CentralDep) -> Response:
    with central.reader() as conn:  # no op made a ref with a NUL byte (PostgreSQL text cannot hold one)
        out = None if "\x00" in local_ref else reads.ref_info(conn, local_ref)
    if out is None:
        raise ApiError(404, "not_found", "no applied op made or linked this local_ref yet")
    return json_response(out)

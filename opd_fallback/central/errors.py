"""How the central server says no: the error bodies, their OpenAPI docs, and the handlers.

Every non-2xx answer the server makes itself has the body
``{"error": {"code", "message"}}``; a 422 also carries FastAPI's ``detail`` list
and the contract-style ``error.fields``. Kept apart from the routes so every
router documents and raises errors the same way.
"""

from __future__ import annotations

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from opd_fallback.domain.exits import OpdError


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    """Body of every non-2xx answer made by the server itself."""

    error: ErrorDetail


class InvalidBody(BaseModel):
    """422: FastAPI's ``detail`` list plus the contract-style ``error`` with ``fields``."""

    detail: list[dict[str, object]]  # {loc, msg, type} each
    error: dict[str, object]  # {code, message, fields}


class ApiError(OpdError):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def json_response(data: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """Serialise with orjson directly (the route's ``response_model`` only documents it)."""
    return Response(orjson.dumps(data), status_code=status, media_type="application/json", headers=headers)


# FastAPI's ``responses``: status -> {"model": ..., "description": ...}
Responses = dict[int | str, dict[str, object]]


def doc(status: int, text: str) -> Responses:
    return {status: {"model": ErrorBody, "description": text}}


COMMON: Responses = {
    **doc(401, "No valid device token"),
    **doc(429, "Too many requests in flight; nothing applied; see Retry-After"),
    **doc(503, "Down for maintenance (or an injected fault); nothing applied; see Retry-After"),
}


def invalid(loc: tuple[str, ...], message: str) -> RequestValidationError:
    """A 422 naming one place of the request (answered like FastAPI's own validation errors)."""
    return RequestValidationError([{"loc": loc, "msg": message, "type": "value_error"}])


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return json_response({"error": {"code": exc.code, "message": exc.message}}, exc.status, exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:  # a body FastAPI could not parse: same answer as any invalid body
        return await _invalid(request, RequestValidationError(
            [{"loc": ("body",), "msg": str(exc.detail), "type": "json_invalid"}]))
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return json_response({"error": {"code": code, "message": str(exc.detail)}}, exc.status_code,
                         dict(exc.headers or {}))


async def _invalid(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
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


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid)

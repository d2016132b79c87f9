"""The FastAPI app of the reference central server (contract v1, /api/v1).

``create_app`` only assembles: the app's database resources
(:class:`~opd_fallback.central.deps.Central`), the Guard middleware (Date,
in-flight cap, maintenance, faults), the error handlers
(:mod:`~opd_fallback.central.errors`) and one router per concern
(:mod:`~opd_fallback.central.routes`). Routes are thin: authentication, body
limits and shape, then the applier or a read query. Responses are serialised
with orjson directly; each route still declares its ``response_model`` so the
OpenAPI document describes what is really sent (the schemathesis run in the
tests holds us to it).
"""

from __future__ import annotations

from fastapi import FastAPI

from opd_fallback.central.deps import Central
from opd_fallback.central.errors import install_error_handlers
from opd_fallback.central.guard import Guard
from opd_fallback.central.inflight import in_flight_counter
from opd_fallback.central.routes import device, ops, reading
from opd_fallback.central.settings import CentralSettings
from opd_fallback.domain.contract import CONTRACT_VERSION


def create_app(settings: CentralSettings) -> FastAPI:
    """The reference central server over ``settings``' database (its schema must be current)."""
    central = Central(settings)
    app = FastAPI(
        title="opd-fallback reference central server",
        version=CONTRACT_VERSION,
        description=f"Implements the central sync API, version {CONTRACT_VERSION} (docs/central-api.md).",
        # The API description tells an attacker every route and field: without
        # --dev-docs it is served only to a device with a valid token.
        openapi_url="/openapi.json" if settings.dev_docs else None,
        docs_url="/docs" if settings.dev_docs else None,
        redoc_url=None,
    )
    app.state.central = central
    app.add_middleware(Guard, settings=settings, is_maintenance=central.maintenance,
                       in_flight=in_flight_counter(settings))
    install_error_handlers(app)
    for router in (ops.router, device.router, reading.router):
        app.include_router(router)
    if not settings.dev_docs:
        app.include_router(device.openapi_behind_token)
    return app


def app_from_environment() -> FastAPI:
    """The app factory each uvicorn worker calls (``serve --workers N``): the parent
    process put the settings in the environment and migrated the database."""
    return create_app(CentralSettings())

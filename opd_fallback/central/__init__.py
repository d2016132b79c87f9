"""Reference central server implementing the sync contract, version 1.2 (docs/central-api.md).

Public API: ``create_app(settings)`` for an ASGI app, ``serve(settings)`` to run
it with uvicorn, and the DB helpers ``add_device``, ``set_maintenance``, ``stats``
(in :mod:`opd_fallback.central.db`). Names are loaded lazily so the admin
commands and ``db`` helpers do not pay for importing FastAPI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict

if TYPE_CHECKING:
    from opd_fallback.central.app import create_app
    from opd_fallback.central.db import add_device, set_maintenance, stats
    from opd_fallback.central.settings import CentralSettings

__all__ = ["CentralSettings", "add_device", "create_app", "serve", "set_maintenance", "stats"]

_LAZY = {
    "create_app": "opd_fallback.central.app",
    "add_device": "opd_fallback.central.db",
    "set_maintenance": "opd_fallback.central.db",
    "stats": "opd_fallback.central.db",
    "CentralSettings": "opd_fallback.central.settings",
}


def __getattr__(name: str) -> object:  # mypy sees the names imported above
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(name)


class _UvicornOptions(TypedDict):
    """What ``serve`` gives ``uvicorn.run`` whatever the number of workers."""

    host: str
    port: int
    log_level: str
    access_log: bool
    date_header: bool
    server_header: bool
    timeout_graceful_shutdown: int
    http: str
    ssl_certfile: str | None
    ssl_keyfile: str | None


def serve(settings: CentralSettings, *, migrate: bool = True) -> None:
    """Bring the schema to the newest revision (unless the caller just did), then run the
    server in the foreground with ``settings.workers`` uvicorn processes (uvicorn adds no
    Date of its own: the app does)."""
    import os
    import tempfile
    from pathlib import Path

    import uvicorn

    from opd_fallback.central.db import create_schema
    from opd_fallback.central.inflight import create_shared_file

    if migrate:
        create_schema(settings.database())  # once, before any worker starts
    options = _UvicornOptions(
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,  # no patient data in logs; op_ids are not logged either
        date_header=False,
        server_header=False,
        timeout_graceful_shutdown=5,
        http=settings.http_impl,
        ssl_certfile=str(settings.ssl_certfile) if settings.ssl_certfile else None,
        ssl_keyfile=str(settings.ssl_keyfile) if settings.ssl_keyfile else None,
    )
    if settings.workers == 1:
        from opd_fallback.central.app import create_app

        uvicorn.run(create_app(settings), **options)
        return
    # Several workers: each builds its app from the environment; they share the in-flight count.
    with tempfile.TemporaryDirectory(prefix="opd-central-") as tmp:
        shared = Path(tmp) / "in-flight"
        create_shared_file(shared)
        given = settings.model_copy(update={"in_flight_file": shared})
        for name, value in given.model_dump().items():
            key = "OPD_CENTRAL_" + name.upper()
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = str(value)
        uvicorn.run("opd_fallback.central.app:app_from_environment", factory=True,
                    workers=settings.workers, **options)

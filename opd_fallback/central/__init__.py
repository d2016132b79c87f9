"""Reference central server implementing the sync contract, version 1.1 (docs/central-api.md).

Public API: ``create_app(settings)`` for an ASGI app, ``serve(settings)`` to run
it with uvicorn, and the DB helpers ``add_device``, ``set_maintenance``, ``stats``
(in :mod:`opd_fallback.central.db`). Names are loaded lazily so the admin
commands and ``db`` helpers do not pay for importing FastAPI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(name)


def serve(settings: CentralSettings) -> None:
    """Run the server in the foreground (uvicorn adds no Date of its own: the app does)."""
    import uvicorn

    from opd_fallback.central.app import create_app

    app = create_app(settings)
    uvicorn.run(
        app,
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

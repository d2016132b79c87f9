"""Reference central server implementing the sync contract (shared/contract/central-api.md).

Public API: ``create_app(settings)`` for an ASGI app, ``serve(settings)`` to run
it with uvicorn, and the DB helpers ``add_device``, ``set_maintenance``, ``stats``.
"""

from __future__ import annotations

from opd_fallback.central.app import create_app
from opd_fallback.central.db import add_device, set_maintenance, stats
from opd_fallback.central.settings import CentralSettings

__all__ = ["CentralSettings", "add_device", "create_app", "serve", "set_maintenance", "stats"]


def serve(settings: CentralSettings) -> None:
    """Run the server in the foreground (uvicorn adds no Date of its own: the app does)."""
    import uvicorn

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
    )

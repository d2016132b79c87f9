"""The LAN hub: one PC on the hospital LAN mirrors every counter's ops so the
counters can find and build on each other's records while central is down.

It imports only the domain (like the reference central server): it never
reads a counter's database and never talks to central. ``create_app`` (in
:mod:`opd_fallback.hub.app`) builds the ASGI app; ``serve`` runs it.
"""

from __future__ import annotations

from pathlib import Path


def serve(db: Path, *, host: str = "0.0.0.0", port: int = 8710,  # noqa: S104 - the hub serves the LAN
          ssl_certfile: Path | None = None, ssl_keyfile: Path | None = None) -> None:
    """Run the hub in the foreground."""
    import logging

    import uvicorn

    from opd_fallback.hub.app import create_app

    # the hub's own log (epochs, a file replaced, disk full): words, never patient data
    hub_log = logging.getLogger("opd_fallback.hub")
    if not hub_log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        hub_log.addHandler(handler)
        hub_log.setLevel(logging.INFO)
        hub_log.propagate = False
    app = create_app(db)  # checks the file first (HubDatabaseProblem: the caller says it in one sentence)
    uvicorn.run(
        app, host=host, port=port, log_level="warning",
        access_log=False,  # no patient data (nor op ids) in logs
        server_header=False,
        # 1 s: uvicorn waits this long for kept-alive TLS connections to close (a push cut short is safe:
        # it commits whole or not at all and the counter sends it again)
        timeout_graceful_shutdown=1,
        ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
        ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None,
    )

"""``opd-fallback hub serve|add-device``: run the LAN hub and give counters their tokens.

Also runnable without the counter CLI as ``python -m opd_fallback.hub ...``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from opd_fallback.domain.exits import ExitCode

hub_app = typer.Typer(help="The LAN hub: counters of one hospital share records while central is down.",
                      no_args_is_help=True)

DbOpt = Annotated[Path, typer.Option("--db", help="The hub's database file (created 0600 if missing)")]


@hub_app.command()
def serve(
    db: DbOpt = Path("hub.db"),
    port: Annotated[int, typer.Option("--port", help="Port to listen on")] = 8710,
    host: Annotated[str, typer.Option("--host", help="Address to listen on (default: all of this PC's)")] = "0.0.0.0",  # noqa: S104
    ssl_certfile: Annotated[Path | None, typer.Option(help="TLS certificate (PEM) to serve HTTPS")] = None,
    ssl_keyfile: Annotated[Path | None, typer.Option(help="TLS private key (PEM)")] = None,
) -> None:
    """Serve the hub API on HOST:PORT (counters: opd-fallback init --hub URL --hub-token-stdin)."""
    from opd_fallback.hub import serve as run

    if (ssl_certfile is None) != (ssl_keyfile is None):
        typer.echo("error: give both --ssl-certfile and --ssl-keyfile, or neither", err=True)
        raise typer.Exit(ExitCode.UNUSABLE)
    scheme = "https" if ssl_certfile else "http"
    typer.echo(f"hub on {scheme}://{host}:{port}/hub/v1 (db {db})", err=True)
    run(db, host=host, port=port, ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile)


@hub_app.command("add-device")
def add_device(
    device_id: Annotated[str, typer.Argument(help="Counter id, e.g. C07")],
    db: DbOpt = Path("hub.db"),
) -> None:
    """Let a counter use the hub; prints its hub token once (only a hash is kept)."""
    from opd_fallback.hub.db import add_device as add

    try:
        token = add(db, device_id)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(ExitCode.UNUSABLE) from None
    typer.echo(token)
    typer.echo(f"counter {device_id.upper()} may use this hub; the token is shown only once: on that counter run\n"
               f"  opd-fallback init --device {device_id.upper()} --hospital ... --hub URL --hub-token-stdin",
               err=True)

"""``opd-fallback hub serve|add-device|remove-device|backup|restore``: run the LAN hub,
give counters their tokens (and take them back), back its database up and put one back.

A put-back hub starts a new epoch (hub/identity.py), so every counter sends it
what it lacks at its next exchange and pulls what it lacks: nothing shared is
lost by going back to an older copy.

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
    """Serve the hub API on HOST:PORT (counters: opd-fallback init --hub URL --hub-token-stdin).
    The database is checked first; a damaged one is refused (exit 1)."""
    from opd_fallback.hub import serve as run

    if (ssl_certfile is None) != (ssl_keyfile is None):
        typer.echo("error: give both --ssl-certfile and --ssl-keyfile, or neither", err=True)
        raise typer.Exit(ExitCode.UNUSABLE)
    from opd_fallback.hub.identity import HubDatabaseProblem

    scheme = "https" if ssl_certfile else "http"
    typer.echo(f"hub on {scheme}://{host}:{port}/hub/v1 (db {db})", err=True)
    try:
        run(db, host=host, port=port, ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile)
    except HubDatabaseProblem as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(ExitCode.REFUSED) from None


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


@hub_app.command("remove-device")
def remove_device(
    device_id: Annotated[str, typer.Argument(help="Counter id, e.g. C07")],
    db: DbOpt = Path("hub.db"),
) -> None:
    """Revoke a counter's hub token at once (its ops stay on the hub for the other counters)."""
    from opd_fallback.hub.db import remove_device as remove

    if not db.exists():
        typer.echo(f"error: no hub database at {db}", err=True)
        raise typer.Exit(ExitCode.UNUSABLE)
    if not remove(db, device_id):
        typer.echo(f"error: counter {device_id.upper()} is not registered with this hub", err=True)
        raise typer.Exit(ExitCode.UNUSABLE)
    typer.echo(f"counter {device_id.upper()} can no longer use this hub (its token is refused from now on); "
               "its records stay for the other counters", err=True)


@hub_app.command()
def backup(
    out: Annotated[Path, typer.Argument(help="The backup file to write (0600)")],
    db: DbOpt = Path("hub.db"),
) -> None:
    """Copy the hub's database while it runs (SQLite's online backup), then check the copy."""
    from opd_fallback.hub.backup import BackupProblem
    from opd_fallback.hub.backup import backup as take

    try:
        info = take(db, out)
    except BackupProblem as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(ExitCode.REFUSED) from None
    typer.echo(f"backed up {db} to {out}: {info.ops} ops of {info.devices} counters, checked", err=True)


@hub_app.command()
def restore(
    backup_file: Annotated[Path, typer.Argument(help="A file written by 'hub backup'")],
    db: DbOpt = Path("hub.db"),
) -> None:
    """Put the hub's database back to a backup (stop the hub first); a new epoch begins,
    so the counters send it everything it lacks at their next exchange."""
    from opd_fallback.hub.backup import BackupProblem
    from opd_fallback.hub.backup import restore as put_back

    try:
        info = put_back(backup_file, db)
    except BackupProblem as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(ExitCode.REFUSED) from None
    typer.echo(f"restored {db} from {backup_file} ({info.ops} ops of {info.devices} counters; the file it "
               f"replaced is kept as {info.kept_as}); start the hub: the counters send it what it lacks",
               err=True)

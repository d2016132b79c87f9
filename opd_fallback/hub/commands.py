"""``opd-fallback hub serve|add-device|remove-device|backup|restore``: run the LAN hub,
give counters their tokens (and take them back), back its database up and put one back.

A put-back hub starts a new epoch (hub/identity.py), so every counter sends it
what it lacks at its next exchange and pulls what it lacks: nothing shared is
lost by going back to an older copy.

Also runnable without the counter CLI as ``python -m opd_fallback.hub ...``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from opd_fallback.domain.exits import ExitCode

hub_app = typer.Typer(help="The LAN hub: counters of one hospital share records while central is down.",
                      no_args_is_help=True)

DbOpt = Annotated[Path, typer.Option("--db", help="The hub's database file (created 0600 if missing)")]
KeyFileOpt = Annotated[Path | None, typer.Option(
    "--key-file", help="The file holding the hub database's key (made 0600 on the first start; default: in this "
                       "user's config folder, named beside the database)")]


CertOpt = Annotated[Path | None, typer.Option(
    help="The hospital's own TLS certificate (PEM); default: one the hub makes beside --db on first start")]
KeyOpt = Annotated[Path | None, typer.Option(help="Its private key (PEM), with --ssl-certfile")]
InsecureOpt = Annotated[bool, typer.Option(
    "--insecure-http", help="Serve plain HTTP (patient records readable on the LAN): a test bench only")]
INSECURE_WARNING = ("WARNING: the hub is serving plain HTTP (--insecure-http): patient records and hub tokens "
                    "cross the LAN readable by anyone on it. Serve HTTPS (the default) in a hospital.")


def _certificate(db: Path, ssl_certfile: Path | None, ssl_keyfile: Path | None, host: str) -> tuple[Path, Path]:
    """The certificate to serve: the hospital's own, or the one the hub made (made now if missing)."""
    from opd_fallback.hub import tls

    if (ssl_certfile is None) != (ssl_keyfile is None):
        typer.echo("error: give both --ssl-certfile and --ssl-keyfile, or neither (the hub then makes its own)",
                   err=True)
        raise typer.Exit(ExitCode.UNUSABLE)
    if ssl_certfile is not None and ssl_keyfile is not None:
        for f in (ssl_certfile, ssl_keyfile):
            if not f.is_file():
                typer.echo(f"error: {f} does not exist or is not a file: give the hospital's certificate and key "
                           "as PEM files", err=True)
                raise typer.Exit(ExitCode.UNUSABLE)
        return ssl_certfile, ssl_keyfile
    cert, key = tls.default_paths(db)
    if tls.ensure_certificate(cert, key, hosts=[host] if host not in ("0.0.0.0", "::") else None):  # noqa: S104
        typer.echo(f"made the hub's TLS certificate {cert} (key {key}, 0600); counters pin its fingerprint",
                   err=True)
    return cert, key


@hub_app.command()
def serve(
    db: DbOpt = Path("hub.db"),
    port: Annotated[int, typer.Option("--port", help="Port to listen on")] = 8710,
    host: Annotated[str, typer.Option("--host", help="Address to listen on: the hub PC's LAN address (see "
                                      "docs/hub-api.md, 'Where the hub listens'); default all of this PC's")
                    ] = "0.0.0.0",  # noqa: S104
    ssl_certfile: CertOpt = None,
    ssl_keyfile: KeyOpt = None,
    insecure_http: InsecureOpt = False,
    key_file: KeyFileOpt = None,
) -> None:
    """Serve the hub API over HTTPS on HOST:PORT (counters: opd-fallback init --hub URL --hub-pairing-stdin)."""
    from opd_fallback.hub import serve as run
    from opd_fallback.hub import tls
    from opd_fallback.hub.db import use_key_file

    use_key_file(db, key_file)
    if insecure_http:
        if ssl_certfile or ssl_keyfile:
            typer.echo("error: --insecure-http serves no certificate; leave out --ssl-certfile/--ssl-keyfile", err=True)
            raise typer.Exit(ExitCode.UNUSABLE)
        typer.echo(INSECURE_WARNING, err=True)
        typer.echo(f"hub on http://{host}:{port}/hub/v1 (db {db})", err=True)
        _run(run, db, host=host, port=port)
        return
    cert, key = _certificate(db, ssl_certfile, ssl_keyfile, host)
    typer.echo(f"hub on https://{host}:{port}/hub/v1 (db {db}); certificate fingerprint {tls.fingerprint(cert)}",
               err=True)
    _run(run, db, host=host, port=port, ssl_certfile=cert, ssl_keyfile=key)


@hub_app.command("add-device")
def add_device(
    device_id: Annotated[str, typer.Argument(help="Counter id, e.g. C07")],
    db: DbOpt = Path("hub.db"),
    key_file: KeyFileOpt = None,
    ssl_certfile: Annotated[Path | None, typer.Option(
        help="The certificate the hub serves, when it is the hospital's own (--ssl-certfile of serve)")] = None,
    insecure_http: Annotated[bool, typer.Option(
        "--insecure-http", help="The hub serves plain HTTP: the pairing line then has no fingerprint")] = False,
) -> None:
    """Let a counter use the hub; prints its pairing line once (token and certificate fingerprint)."""
    from opd_fallback.hub import tls
    from opd_fallback.hub.db import add_device as add
    from opd_fallback.hub.db import use_key_file

    use_key_file(db, key_file)

    fp: str | None = None
    if not insecure_http:
        cert = ssl_certfile
        if cert is None:
            cert, key = tls.default_paths(db)
            tls.ensure_certificate(cert, key)  # the same one serve makes on its first start
        if not cert.is_file():
            typer.echo(f"error: {cert} does not exist: give the certificate the hub serves", err=True)
            raise typer.Exit(ExitCode.UNUSABLE)
        fp = tls.fingerprint(cert)
    else:
        typer.echo(INSECURE_WARNING, err=True)
    try:
        token = add(db, device_id)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(ExitCode.UNUSABLE) from None
    dev = device_id.strip().upper()
    typer.echo(tls.Pairing(dev, token, fp).line())
    typer.echo(f"counter {dev} may use this hub; this pairing line (its hub token and the hub's certificate "
               f"fingerprint) is shown only once. On counter {dev} run\n"
               f"  opd-fallback init --device {dev} --hospital ... --hub https://THIS-PC:8710 --hub-pairing-stdin\n"
               "and paste the line when asked.", err=True)


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


def _run(run: Any, db: Path, **kw: Any) -> None:
    """Serve; a damaged database is refused in one sentence (hub/identity.py), never a traceback."""
    from opd_fallback.hub.identity import HubDatabaseProblem

    try:
        run(db, **kw)
    except HubDatabaseProblem as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(ExitCode.REFUSED) from None

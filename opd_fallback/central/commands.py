"""The `central` commands (typer): run and administer the reference central server.

Mounted as ``opd-fallback central ...`` by opd_fallback/cli/central.py and runnable
without the counter CLI as ``python -m opd_fallback.central ...``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from opd_fallback.domain.exits import ExitCode

if TYPE_CHECKING:
    from opd_fallback.central.settings import CentralSettings

central_app = typer.Typer(help="The reference central server (for tests, drills and IT cells).", no_args_is_help=True)

DbOpt = Annotated[Path | None, typer.Option("--db", help="Central SQLite file (env OPD_CENTRAL_DB; default central.db)")]
UrlOpt = Annotated[str | None, typer.Option(
    "--database-url",
    help="sqlite:///FILE or postgresql+psycopg://USER@HOST:PORT/DB (env OPD_CENTRAL_DATABASE_URL); "
         "keep the password in ~/.pgpass or PGPASSWORD")]


# ``given`` stays untyped: BaseSettings' __init__ also takes _env_file and the like, typed otherwise
def _settings(database_url: str | None = None, **given: Any) -> CentralSettings:
    """Settings from the options given, then the environment; a bad database URL ends
    the command with one sentence."""
    from opd_fallback.central.db import database
    from opd_fallback.central.settings import CentralSettings

    s = CentralSettings(**{k: v for k, v in given.items() if v is not None})
    if database_url is not None:
        s.database_url = database_url
    try:
        db = database(s.database())
    except ValueError as exc:
        typer.echo(f"--database-url: {exc}", err=True)
        raise typer.Exit(ExitCode.UNUSABLE) from None
    if database_url is not None and db.has_password:
        typer.echo("--database-url: do not put a password on the command line (other users can read it); "
                   "use ~/.pgpass, PGPASSWORD or OPD_CENTRAL_DATABASE_URL", err=True)
        raise typer.Exit(ExitCode.UNUSABLE)
    return s


def _migrated(s: CentralSettings) -> None:
    """Create or upgrade the schema, or end with one sentence saying why it cannot be reached."""
    from sqlalchemy.exc import OperationalError

    from opd_fallback.central.db import create_schema, database

    try:
        create_schema(s.database())
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "cannot connect"
        typer.echo(f"database {database(s.database()).safe()} cannot be used: {reason}", err=True)
        raise typer.Exit(ExitCode.REFUSED) from None


@central_app.command()
def serve(
    db: DbOpt = None,
    database_url: UrlOpt = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes (several need PostgreSQL to write "
                                                    "side by side; on SQLite they take turns)")] = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8700)")] = None,
    master_data: Annotated[Path | None, typer.Option(help="Master data file, JSON or TOML (default: demo)")] = None,
    max_in_flight: Annotated[int | None, typer.Option(help="Requests in flight before answering 429")] = None,
    fail_rate: Annotated[float | None, typer.Option(help="Fault: share of requests answered 503 before applying")] = None,
    lost_response_rate: Annotated[
        float | None, typer.Option(help="Fault: share of requests applied and committed, then the answer dropped")
    ] = None,
    reset_rate: Annotated[float | None, typer.Option(help="Fault: share of connections dropped before applying")] = None,
    latency_ms: Annotated[int | None, typer.Option(help="Fault: added latency per request (ms)")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for the fault dice, so a run repeats")] = None,
    ssl_certfile: Annotated[Path | None, typer.Option(help="TLS certificate (PEM) to serve HTTPS")] = None,
    ssl_keyfile: Annotated[Path | None, typer.Option(help="TLS private key (PEM)")] = None,
    dev_docs: Annotated[bool, typer.Option(
        "--dev-docs", help="Serve /openapi.json and /docs without a token (development only)")] = False,
) -> None:
    """Serve the central sync API on HOST:PORT."""
    from opd_fallback.central import serve as run
    from opd_fallback.central.db import database

    s = _settings(database_url, db=db, host=host, port=port, master_data=master_data, max_in_flight=max_in_flight,
                  fail_rate=fail_rate, lost_response_rate=lost_response_rate, reset_rate=reset_rate,
                  latency_ms=latency_ms, seed=seed, ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile,
                  dev_docs=dev_docs or None, workers=workers)
    _check_master_data(s.master_data)
    _migrated(s)
    scheme = "https" if s.ssl_certfile else "http"
    typer.echo(f"central server on {scheme}://{s.host}:{s.port}/api/v1 "
               f"(db {database(s.database()).safe()}, {s.workers} worker(s))", err=True)
    run(s, migrate=False)


@central_app.command()
def migrate(db: DbOpt = None, database_url: UrlOpt = None) -> None:
    """Create the database's tables or bring them to the newest schema (serve does it too)."""
    from opd_fallback.central.db import database

    s = _settings(database_url, db=db)
    _migrated(s)
    typer.echo(f"database {database(s.database()).safe()} is at the newest schema")


def _check_master_data(path: Path | None) -> None:
    """Refuse to start on a bad master data file, naming what is wrong in it."""
    from pydantic import ValidationError

    from opd_fallback.central.master import load_master
    from opd_fallback.domain.errors import explain

    try:
        load_master(path)
    except ValidationError as exc:
        typer.echo(f"master data {path} is not valid:", err=True)
        for problem in explain(exc):
            typer.echo(f"  {problem.field or '(file)'}: {problem.message}", err=True)
        raise typer.Exit(ExitCode.UNUSABLE) from None
    except (OSError, ValueError) as exc:  # unreadable, not JSON / TOML
        typer.echo(f"master data {path} cannot be read: {exc}", err=True)
        raise typer.Exit(ExitCode.UNUSABLE) from None


@central_app.command("add-device")
def add_device(device_id: Annotated[str, typer.Argument(help="Counter id, e.g. C07")], db: DbOpt = None,
               database_url: UrlOpt = None) -> None:
    """Register a counter and print its token once (only its hash is kept)."""
    from opd_fallback.central.db import add_device as add

    s = _settings(database_url, db=db)
    _migrated(s)
    token = add(s.database(), device_id)
    typer.echo(token)
    typer.echo(f"device {device_id} registered; this token is shown only once", err=True)


@central_app.command()
def maintenance(
    state: Annotated[str, typer.Argument(help="on or off")],
    db: DbOpt = None,
    database_url: UrlOpt = None,
) -> None:
    """Switch maintenance mode (every request answers 503 with Retry-After)."""
    from opd_fallback.central.db import set_maintenance

    if state not in ("on", "off"):
        raise typer.BadParameter("must be on or off", param_hint="STATE")
    s = _settings(database_url, db=db)
    _migrated(s)
    set_maintenance(s.database(), state == "on")
    typer.echo(f"maintenance {state}")


@central_app.command()
def stats(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    db: DbOpt = None,
    database_url: UrlOpt = None,
) -> None:
    """Counts by kind, payments by mode, ops remembered."""
    from opd_fallback.central.db import stats as read
    from opd_fallback.domain.rules import format_paise

    s = _settings(database_url, db=db)
    _migrated(s)
    data = read(s.database())
    if as_json:
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    typer.echo(f"ops remembered: {data['ops_remembered']}  {data['ops_by_status']}")
    for kind, n in data["applied_by_kind"].items():
        typer.echo(f"  {kind:<18} {n}")
    typer.echo("records: " + ", ".join(f"{k} {v}" for k, v in data["records"].items()))
    for mode, m in data["payments_by_mode"].items():
        typer.echo(f"  {mode:<8} {m['count']:>7} payments  {format_paise(m['total_paise'])}")
    typer.echo(f"maintenance: {'on' if data['maintenance'] else 'off'}")

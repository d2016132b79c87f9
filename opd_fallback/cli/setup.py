"""``init`` and ``operator add|list|disable``: setting a counter up.

The device token goes to its own 0600 file, never into config.toml; PINs are
read without echo (twice) or from stdin for scripts, and stored only as an
argon2id hash (store/operators.py); supervisors need at least 6 digits.
"""

from __future__ import annotations

import getpass
import json
import sys
from pathlib import Path
from typing import Annotated
from urllib.parse import urlparse

import typer

from opd_fallback.cli.common import (
    DataDirOpt,
    TokenOpt,
    TokenStdinOpt,
    counter_store,
    domain_errors,
    fail,
    read_token,
    settings,
    use_data_dir,
)

operator_app = typer.Typer(help="Counter operators and their PINs.", no_args_is_help=True)


@operator_app.callback()
def _operators(data_dir: DataDirOpt = None) -> None:
    """Counter operators and their PINs."""
    use_data_dir(data_dir)

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _check_server(url: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        fail(f"--server must be a URL like https://his.example.org (got {url!r})")
    if parsed.scheme == "http" and parsed.hostname not in _LOOPBACK:
        typer.echo("warning: the server URL is plain http; use https outside a test bench", err=True)
    return url.rstrip("/")


def init(
    device: Annotated[str, typer.Option("--device", help="This counter's id, e.g. C07")],
    hospital: Annotated[str, typer.Option("--hospital", help="Hospital code, e.g. KGMU")],
    server: Annotated[
        str | None, typer.Option("--server", help="Central server URL (env OPD_CENTRAL_URL)")
    ] = None,
    token: TokenOpt = None,
    token_stdin: TokenStdinOpt = False,
    ca_bundle: Annotated[Path | None, typer.Option(
        "--ca-bundle", help="PEM file of the hospital's own TLS CA, kept in config.toml [env OPD_CA_BUNDLE]")] = None,
    hub: Annotated[
        str | None, typer.Option("--hub", help="LAN hub URL, e.g. http://10.0.0.5:8710 (env OPD_HUB_URL)")
    ] = None,
    hub_token_stdin: Annotated[bool, typer.Option(
        "--hub-token-stdin",
        help="Read this counter's hub token from stdin (one line; the line after the device token's with "
             "--token-stdin) [env OPD_HUB_TOKEN]")] = False,
    hub_pairing_stdin: Annotated[bool, typer.Option(
        "--hub-pairing-stdin",
        help="Read the pairing line 'hub add-device' printed from stdin (this counter's hub token and the hub "
             "certificate's fingerprint, checked on every connection); the line after the device token's with "
             "--token-stdin")] = False,
    data_dir: DataDirOpt = None,
    district: Annotated[
        str | None, typer.Option("--district", help="The hospital's district: the registration form's default")
    ] = None,
    state: Annotated[
        str | None, typer.Option("--state", help="The hospital's state: the registration form's default")
    ] = None,
    desk: Annotated[
        str | None, typer.Option("--desk", help="registration, billing, collection or all (the default): the "
                                 "counter's home screen and the keys shown first; every screen stays reachable "
                                 "[env OPD_DESK]")
    ] = None,
) -> None:
    """Create this counter's configuration and database in the data directory."""
    from opd_fallback.config import (
        check_ca_bundle,
        load_settings,
        private_dir,
        write_config,
        write_hub_token,
        write_token,
    )
    from opd_fallback.store import open_store

    use_data_dir(data_dir)
    token = read_token(token, token_stdin)
    if hub_token_stdin and hub_pairing_stdin:
        fail("give --hub-pairing-stdin or --hub-token-stdin, not both (the pairing line holds the token)")
    hub_tok = sys.stdin.readline().strip() if hub_token_stdin else None
    if hub_token_stdin and not hub_tok:
        fail("--hub-token-stdin: no hub token on stdin (the line 'opd-fallback hub add-device' printed)")
    device_id = device.strip().upper()
    hub_fp: str | None = None
    if hub_pairing_stdin:
        from opd_fallback.hub.tls import parse_pairing

        try:
            pairing = parse_pairing(sys.stdin.readline())
        except ValueError as exc:
            fail(f"--hub-pairing-stdin: {exc}")
        if pairing.device_id != device_id:
            fail(f"--hub-pairing-stdin: this pairing line is for counter {pairing.device_id}, not {device_id}: "
                 f"on the hub PC run 'opd-fallback hub add-device {device_id}' and paste its line")
        hub_tok, hub_fp = pairing.token, pairing.fingerprint
        if hub and hub_fp and not hub.lower().startswith("https://"):
            fail(f"--hub: the hub serves HTTPS (the pairing line has its certificate's fingerprint): use "
                 f"https://{hub.split('://', 1)[-1]}")
    base = settings()
    try:
        type(base)(data_dir=base.data_dir, device_id=device_id)
    except ValueError:
        fail("--device must be 1-16 letters or digits, e.g. C07")
    if not hospital.strip():
        fail("--hospital is required, e.g. KGMU")
    if base.config_path.exists() and base.device_id and base.device_id != device_id:
        fail(
            f"{base.data_dir} already belongs to counter {base.device_id}; its numbers and queue are "
            "tied to that id. Use another --data-dir for a new counter."
        )
    # patient data lives here: only this user may enter (0700), also in a folder that existed
    private_dir(base.data_dir, tighten=True)
    url = server or base.central_url
    values: dict[str, object] = {"device_id": device_id, "hospital": hospital.strip().upper()}
    if url:
        values["central_url"] = _check_server(url)
    if ca_bundle is not None:
        ca_path = ca_bundle.expanduser().resolve()
        if why := check_ca_bundle(ca_path):
            fail(f"{why}; give a PEM file of your hospital's CA")
        values["ca_bundle"] = str(ca_path)
    if hub:
        values["hub_url"] = _check_hub(hub)
    if hub_fp:
        values["hub_fingerprint"] = hub_fp
    if district and district.strip():
        values["hospital_district"] = district.strip()
    if state and state.strip():
        values["hospital_state"] = state.strip()
    if desk is not None:
        from opd_fallback.tui.desks import DESKS  # no Textual: only the names

        if desk.strip().lower() not in DESKS:
            fail(f"--desk must be one of {', '.join(DESKS)} (got {desk!r})")
        values["desk"] = desk.strip().lower()
    write_config(base, values)
    tok = token or base.central_token
    if tok:
        write_token(base, tok)
    if hub_tok:
        write_hub_token(base, hub_tok)
    store = open_store(base.db_path)  # encrypted from the first byte (a plain one is encrypted now)
    store.close()
    final = load_settings()
    typer.echo(f"counter {final.device_id} of {final.hospital} set up in {final.data_dir}")
    typer.echo(f"  database: {final.db_path}")
    typer.echo(f"  central:  {final.central_url or '(not set: counter works offline only)'}")
    typer.echo(f"  desk:     {final.desk}")
    if final.ca_bundle:
        typer.echo(f"  TLS CA:   {final.ca_bundle}")
    typer.echo(f"  token:    {'stored (' + str(final.token_path) + ', mode 0600)' if tok else '(not set)'}")
    if final.hub_url or final.hub_token:
        typer.echo(f"  hub:      {final.hub_url or '(no URL)'}; token "
                   f"{'stored (' + str(final.hub_token_path) + ', mode 0600)' if final.hub_token else '(not set)'}")
        if final.hub_fingerprint:
            typer.echo(f"  hub certificate pinned: {final.hub_fingerprint} (in {final.config_path}, mode 0600)")
    _show_recovery_code_once(final.db_path)


def _show_recovery_code_once(db_path: Path) -> None:
    from opd_fallback.cipher import custody, keys
    from opd_fallback.cli.keys import show_code

    key = custody.key_for(db_path)
    typer.echo(f"  key:      {key.source} (mode 0600, outside the data folder; key id {key.key_id})")
    if key.source is not None and not keys.code_shown(key.source):
        keys.mark_shown(key.source)
        show_code(key.recovery_code, why="the counter's database is encrypted")


def _check_hub(url: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        fail(f"--hub must be a URL like https://10.0.0.5:8710 (got {url!r})")
    if parsed.scheme == "http" and parsed.hostname not in _LOOPBACK:
        typer.echo("warning: the hub URL is plain http, so patient data crosses the LAN unencrypted; the hub "
                   "serves HTTPS unless started with --insecure-http: use https:// and --hub-pairing-stdin", err=True)
    return url.rstrip("/")


def _read_pin(pin_stdin: bool, role: str = "operator") -> str:
    from opd_fallback.store import operators as ops

    if pin_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    low = ops.MIN_PIN_DIGITS.get(role, 4)
    first = getpass.getpass(f"PIN ({low}-{ops.MAX_PIN_DIGITS} digits): ")
    second = getpass.getpass("PIN again: ")
    if first != second:
        fail("the two PINs differ; nothing saved")
    return first


@operator_app.command("add")
def operator_add(
    operator_id: Annotated[str, typer.Argument(help="Login id, e.g. op-114")],
    name: Annotated[str, typer.Option("--name", help="Full name")],
    role: Annotated[
        str, typer.Option("--role", help="operator (PIN of 4-8 digits) or supervisor (PIN of 6-8 digits)")
    ] = "operator",
    pin_stdin: Annotated[bool, typer.Option("--pin-stdin", help="Read the PIN from stdin (one line)")] = False,
) -> None:
    """Add an operator; the PIN is asked twice without echo (or read from stdin)."""
    from opd_fallback.store import operators as ops

    if role not in ops.ROLES:
        fail(f"--role must be one of {', '.join(ops.ROLES)}")
    with counter_store() as (_s, store), domain_errors():
        pin = _read_pin(pin_stdin, role)
        ops.add_operator(store, operator_id, name, pin, role=role)
    typer.echo(f"operator {operator_id} ({role}) added")


@operator_app.command("list")
def operator_list(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """List operators (never their PINs)."""
    from opd_fallback.store import operators as ops

    with counter_store() as (_s, store):
        rows = ops.list_operators(store)
    if as_json:
        typer.echo(json.dumps([
            {"id": o.id, "name": o.name, "role": o.role, "active": o.active, "created_at": o.created_at}
            for o in rows
        ], ensure_ascii=False))
        return
    if not rows:
        typer.echo("no operators yet: opd-fallback operator add ID --name NAME")
        return
    for o in rows:
        typer.echo(f"{o.id:<16} {o.role:<10} {'active' if o.active else 'disabled':<8} {o.name}")


@operator_app.command("disable")
def operator_disable(operator_id: Annotated[str, typer.Argument(help="Login id")]) -> None:
    """Stop an operator from logging in (their records stay)."""
    from opd_fallback.store import operators as ops

    with counter_store() as (_s, store), domain_errors():
        ops.disable_operator(store, operator_id)
    typer.echo(f"operator {operator_id} disabled")


@operator_app.command("unlock")
def operator_unlock(
    operator_id: Annotated[str, typer.Argument(help="Login id locked by wrong PINs")],
    supervisor: Annotated[str, typer.Option("--supervisor", help="Supervisor lifting the lock (PIN asked)")],
    pin_stdin: Annotated[bool, typer.Option("--pin-stdin", help="Read the supervisor's PIN from stdin")] = False,
) -> None:
    """Lift a PIN lockout before it runs out (a supervisor's PIN; audited)."""
    from opd_fallback.store import operators as ops

    with counter_store() as (_s, store), domain_errors():
        pin = sys.stdin.readline().strip() if pin_stdin else str(typer.prompt("Supervisor PIN", hide_input=True))
        sup = ops.verify_operator(store, supervisor, pin, role="supervisor", purpose="unlock")
        had = ops.unlock_operator(store, operator_id, actor=sup.id)
    typer.echo(f"operator {operator_id} may try a PIN again" + ("" if had else " (it was not locked)"))


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.add_typer(operator_app, name="operator")


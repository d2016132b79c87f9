"""``opd-fallback reconcile | nightly | backup | restore``: prove nothing was lost,
and keep the counter ready for the next outage.

* ``reconcile --date D [--json] [--report FILE] [--requeue-missing]``: compare
  this counter's day with central (exit 0 clean, 1 a person must look, 3 central
  unreachable).
* ``nightly``: push what is pending, refresh master data / patient index / id
  blocks, reconcile yesterday and today so far, back up (with rotation and an
  integrity check) and write one report; non-zero when anything needs a person.
* ``backup``: one checked backup now, with rotation.
* ``restore BACKUP [--force] [--new-device-id ID]``: bring a counter back, then
  check its numbers with central before it takes new work.
"""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from opd_fallback.cli.common import (
    HELP_FROM_STDIN,
    HELP_ON_COMMAND_LINE,
    counter_settings,
    counter_store,
    fail,
    read_token,
)
from opd_fallback.cli.common import settings as load_settings
from opd_fallback.domain.exits import ExitCode

if TYPE_CHECKING:  # the rest is imported inside the commands: each loads SQLAlchemy or httpx
    from opd_fallback.application.report_shapes import Report
    from opd_fallback.config import Settings

ReportOpt = Annotated[
    Path | None, typer.Option("--report", help="Also write the report to FILE (.html, .csv or .json)")
]


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        fail(f"--date must be a real date written YYYY-MM-DD (got {value!r})", code=ExitCode.UNUSABLE)


def _check_report_path(path: Path | None) -> None:
    if path is not None:
        from opd_fallback.application import reports

        try:
            reports.format_for(path)
        except ValueError as exc:
            fail(f"--report: {exc}", code=ExitCode.UNUSABLE)


def _emit(report: Report, as_json: bool, report_path: Path | None) -> None:
    from opd_fallback.application import reports

    if as_json:
        sys.stdout.write(reports.to_json(report))
    else:
        reports.render_terminal(report)
    if report_path is not None:
        written = reports.write_report(report, report_path)
        typer.echo(f"report written to {written}", err=True)


# ------------------------------------------------------------------ reconcile
def reconcile_cmd(
    day: Annotated[str, typer.Option("--date", help="Day to reconcile, YYYY-MM-DD (Asia/Kolkata)")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable (docs/reconcile-json.md)")] = False,
    report: ReportOpt = None,
    requeue_missing: Annotated[
        bool, typer.Option("--requeue-missing", help="Put ops central has lost back in the queue")
    ] = False,
) -> None:
    """Compare this counter's day with central; exit 0 clean, 1 look, 3 unreachable."""
    from opd_fallback.application.nightly import EXIT_UNREACHABLE, central_client
    from opd_fallback.application.reconcile import reconcile_day

    d = _day(day)
    _check_report_path(report)
    with counter_store() as (s, store):
        try:
            client = central_client(s)
        except ValueError as exc:
            fail(str(exc), code=EXIT_UNREACHABLE)
        with client:
            rep = reconcile_day(store, client, s.device_id, d, requeue_missing=requeue_missing)
    out = rep.as_dict()
    _emit(out, as_json, report)
    raise typer.Exit(rep.exit_code)


# ------------------------------------------------------------------ nightly
def nightly_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable (docs/reconcile-json.md)")] = False,
    report: Annotated[
        Path | None,
        typer.Option("--report", help="Report file (.html, .csv, .json); default <data-dir>/reports/nightly-DATE.html"),
    ] = None,
    give_up_after: Annotated[
        float, typer.Option("--give-up-after", min=0.1, help="Seconds to keep retrying a failing central")
    ] = 60.0,
) -> None:
    """Push, refresh, reconcile yesterday and today, back up; exit non-zero if a person must look."""
    from opd_fallback.application.nightly import run_nightly
    from opd_fallback.domain.clock import today_ist

    _check_report_path(report)
    with counter_store() as (s, store):
        out = run_nightly(s, store, give_up_after_s=give_up_after)
        path = report or s.data_dir / "reports" / f"nightly-{today_ist().isoformat()}.html"
    _emit(out, as_json, path)
    raise typer.Exit(int(out["exit_code"]))


# ------------------------------------------------------------------ backup / restore
def backup_cmd(
    to: Annotated[Path | None, typer.Option("--to", help="Backups folder (default <data-dir>/backups)")] = None,
    keep: Annotated[int | None, typer.Option("--keep", min=1, help="How many backups to keep")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Back up the counter database now (online, checked, rotated)."""
    from opd_fallback.store import backup as backups

    s = counter_settings()
    try:
        res = backups.backup(s.db_path, to or s.backups_dir, keep=keep or s.backups_keep,
                             device_id=s.device_id or None)
    except backups.BackupError as exc:
        from opd_fallback.store.failures import explain

        problem = explain(exc, s.db_path, where="backup")  # a damaged database or a full disk: say which
        fail(str(problem or exc), code=problem.exit_code if problem else ExitCode.REFUSED)
    if as_json:
        typer.echo(json.dumps(res.as_dict(), indent=2, sort_keys=True))
    else:
        typer.echo(f"backup {res.path} ({res.size_bytes} bytes, {res.facts.ops} ops, {res.facts.pending} pending): "
                   f"integrity {res.integrity}; {len(res.removed)} old backup(s) removed")
    if not res.ok:
        fail(f"the backup failed its integrity check and was kept as {res.path}: {res.integrity}")


def _device_in_backup(db: Path) -> str | None:
    from opd_fallback.store.readonly import last_device_id

    return last_device_id(db)


def _supervisor_pin(pin_stdin: bool) -> str:
    if pin_stdin:
        return sys.stdin.readline().strip()
    return str(typer.prompt("supervisor PIN", hide_input=True))


def restore_cmd(
    backup_file: Annotated[
        Path | None, typer.Argument(metavar="[BACKUP]", help="A backup file (from 'opd-fallback backup')")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a database holding newer work, or a damaged one (it is saved first)")] = False,
    new_device_id: Annotated[
        str | None, typer.Option("--new-device-id", help="Continue as a new device id (central unreachable)")
    ] = None,
    token: Annotated[str | None, typer.Option("--token", help="Device token for the (new) device id. " + HELP_ON_COMMAND_LINE)] = None,
    token_stdin: Annotated[bool, typer.Option("--token-stdin", help=HELP_FROM_STDIN + " (with --pin-stdin, the PIN is the second line)")] = False,
    supervisor: Annotated[str | None, typer.Option("--supervisor", help="Supervisor approving a new device id")] = None,
    pin_stdin: Annotated[bool, typer.Option("--pin-stdin", help="Read the supervisor PIN from stdin")] = False,
    from_hub: Annotated[bool, typer.Option("--from-hub", help="Rebuild this counter from the LAN hub (new PC)")] = False,
    device: Annotated[str | None, typer.Option("--device", help="With --from-hub: this counter's id")] = None,
    recovery_code_stdin: Annotated[bool, typer.Option(
        "--recovery-code-stdin",
        help="The backup's recovery code on the first line of stdin (a new PC without its key file)")] = False,
    key_file: Annotated[Path | None, typer.Option(
        "--key-file", help="The backup's key file (copied from the old PC; it becomes this counter's key)")] = None,
) -> None:
    """Bring a counter back from a backup (or from the LAN hub); it takes no new work until its numbers are checked."""
    if from_hub:
        from opd_fallback.cli.share import restore_from_hub_cmd

        restore_from_hub_cmd(device)
        return
    if backup_file is None:
        fail("give a BACKUP file, or --from-hub --device ID to rebuild this counter from the LAN hub")
    from opd_fallback.application.nightly import EXIT_OK, EXIT_UNREACHABLE, central_client
    from opd_fallback.cipher import keys as cipher_keys
    from opd_fallback.cli.keys import read_code
    from opd_fallback.store import backup as backups
    from opd_fallback.store import readiness
    from opd_fallback.store.engine import open_store

    given: list[cipher_keys.Key] = []
    code = read_code(recovery_code_stdin)  # the first line of stdin, before a token or a PIN
    if code is not None:
        try:
            given.append(cipher_keys.key_from_code(code))
        except ValueError as exc:
            fail(f"the recovery code: {exc}; type it as it is written, e.g. ABCD-EFGH-...")
    if key_file is not None:
        given.append(cipher_keys.read_key_file(key_file.expanduser()))
    token = read_token(token, token_stdin)
    s = load_settings()
    try:
        res = backups.restore(backup_file, s.db_path, force=force, keys=given)
    except backups.BackupError as exc:
        fail(str(exc))
    typer.echo(f"restored {res.source} -> {res.path} ({res.facts.ops} ops, {res.facts.pending} pending)")
    if res.replaced_saved_as:
        typer.echo(f"the database it replaced was saved as {res.replaced_saved_as}")
    device = s.device_id or _device_in_backup(res.path) or ""
    updates: dict[str, str] = {}
    if device and device != s.device_id:
        updates["device_id"] = device
    store = open_store(s.db_path)
    try:
        abandoned = readiness.mark_restored(store, source=backup_file.name, actor=supervisor or "restore")
        if abandoned:
            typer.echo(f"{abandoned} reserved central id(s) from the backup will not be used")
        if new_device_id:
            from opd_fallback.store import operators

            if not supervisor:
                fail("moving to a new device id needs a supervisor: --supervisor ID (PIN asked)")
            try:
                operators.verify_operator(store, supervisor, _supervisor_pin(pin_stdin), role="supervisor",
                                          purpose="restore")
            except operators.PinRefused as exc:
                fail(exc.sentence)
            try:
                readiness.move_to_new_device(store, device, new_device_id, actor=supervisor)
            except ValueError as exc:
                fail(str(exc))
            updates["device_id"] = new_device_id.strip().upper()
            _save(s, updates, token)
            typer.echo(f"this counter now works as device {updates['device_id']}; its new numbers begin "
                       f"with {updates['device_id']}-. Ops queued before keep device {device} and need its token.")
            raise typer.Exit(EXIT_OK)
        _save(s, updates, token)
        s2 = load_settings()
        try:
            client = central_client(s2)
        except ValueError as exc:
            client, why = None, str(exc)
        if client is not None:
            from opd_fallback.sync.client import SyncError

            with client:
                try:
                    check = readiness.check_with_central(store, client, device_id=s2.device_id or None,
                                                         actor=supervisor or "restore")
                except (SyncError, readiness.WrongDevice) as exc:
                    why = str(exc)
                else:
                    typer.echo(f"central has seq {check.central_max_seq} from {check.device_id}; this counter "
                               f"continues at {check.local_seq_after + 1}. Ready for new work.")
                    raise typer.Exit(EXIT_OK)
        typer.echo(
            f"NOT READY: the numbers could not be checked with central ({why}). This counter takes no new work until it has "
            "checked its numbers. Either wait and run 'opd-fallback nightly' (or sync) when central is back, "
            "or a supervisor moves it to a new device id: "
            f"opd-fallback restore {backup_file} --new-device-id ID --token T --supervisor SUP",
            err=True,
        )
        raise typer.Exit(EXIT_UNREACHABLE)
    finally:
        store.close()


def _save(s: Settings, updates: dict[str, str], token: str | None) -> None:
    from opd_fallback.config import write_config, write_token

    if updates:
        write_config(s, updates)
    if token:
        write_token(s, token)


def register(app: typer.Typer) -> None:
    app.command("reconcile")(reconcile_cmd)
    app.command("nightly")(nightly_cmd)
    app.command("backup")(backup_cmd)
    app.command("restore")(restore_cmd)

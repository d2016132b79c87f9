"""``opd-fallback collect --operator ID [--pin-stdin] [--reject REASON]``: a scan
station of the lab's collection desk without the full counter UI.

The operator logs in like at the counter: the PIN is the first line of
standard input with ``--pin-stdin`` (else asked without echo), checked by the
counter's one PIN check (lockout and audit included). Then every further line
is one tube id, as a USB barcode scanner types it (id + Enter); each is
answered on standard output with one line: the tube id, what was recorded,
the patient and the tests; or the tube id and one sentence why nothing was
recorded (an unknown tube, a tube already collected, an order not paid: an
unpaid order blocks a collection, not a refusal). ``--reject REASON`` records
every tube read as refused (haemolysed, clotted, insufficient, mislabelled,
other) and prints its label again for the new draw. The command ends at the
end of its input.

Exit status (README's table): 0 every tube recorded; 1 some tube refused, a
wrong PIN or a locked operator, or a bad --reject reason; 4 another program
holds the database; 5 the disk.
"""

from __future__ import annotations

import getpass
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from opd_fallback.cli.common import DataDirOpt, counter_store, fail, use_data_dir
from opd_fallback.domain.exits import ExitCode

if TYPE_CHECKING:  # imported inside the command (quick start)
    from opd_fallback.config import Settings
    from opd_fallback.printing.base import Printer
    from opd_fallback.printing.document import Document

REASONS = ("haemolysed", "clotted", "insufficient", "mislabelled", "other")


def collect(
    operator: Annotated[str, typer.Option("--operator", help="Your operator id", show_default=False)],
    pin_stdin: Annotated[bool, typer.Option("--pin-stdin", help="Read the PIN from the first line of stdin")] = False,
    reject: Annotated[str | None, typer.Option(
        "--reject", help="Record the tubes as refused, for this reason: " + ", ".join(REASONS),
        show_default=False)] = None,
    note: Annotated[str | None, typer.Option("--note", help="A note kept with every event (0-200 characters)",
                                             show_default=False)] = None,
    no_print: Annotated[bool, typer.Option("--no-print", help="With --reject: do not print the labels again")] = False,
    data_dir: DataDirOpt = None,
) -> None:
    """Record tubes collected (or refused with --reject) at the lab's collection desk, one tube id per line."""
    from opd_fallback.application.collection import CollectionDesk
    from opd_fallback.domain.errors import DomainError
    from opd_fallback.store import operators

    use_data_dir(data_dir)
    reason = (reject or "").strip().lower() or None
    if reject is not None and reason not in REASONS:
        fail(f"--reject: {reject!r} is not a reason; give one of {', '.join(REASONS)}")
    with counter_store() as (s, store):
        pin = sys.stdin.readline().rstrip("\r\n") if pin_stdin else getpass.getpass("PIN: ")
        try:
            who = operators.verify_operator(store, operator.strip(), pin)
        except DomainError as exc:  # a wrong PIN, an unknown or disabled operator, a lockout
            why = exc.problems[0].message if exc.problems else str(exc)
            fail(f"{why.rstrip('.')}; nothing recorded")
        if who is None:
            fail("operator id or PIN not accepted (or the operator is disabled); nothing recorded")
        desk = CollectionDesk(store, s.device_id, hospital=s.hospital or s.device_id)
        printer: Printer | None = None
        refused_any = False
        for line in sys.stdin:
            scanned = line.strip()
            if not scanned:
                continue
            sid = scanned.upper()
            try:
                done = desk.refuse(who.id, scanned, reason, note=note) if reason else desk.collect(
                    who.id, scanned, note=note)
            except DomainError as exc:
                refused_any = True
                words = "; ".join(p.message for p in exc.problems) or str(exc)
                typer.echo(f"{sid}: NOT RECORDED: {words}")
                continue
            what = f"refused ({reason})" if reason else "collected"
            typer.echo(f"{sid}: {what} at {done.collected_at[11:16]} by {who.id}: {desk.describe(done.tube)}")
            if reason and not no_print:
                if printer is None:
                    printer = _printer(s)
                _print_label(printer, s, desk.label(done.tube))
            sys.stdout.flush()
    raise typer.Exit(ExitCode.REFUSED if refused_any else ExitCode.OK)


def _printer(s: Settings) -> Printer:
    from opd_fallback.printing import make_printer

    return make_printer(s.printer, data_dir=s.data_dir)


def _print_label(printer: Printer, s: Settings, doc: Document) -> None:
    from opd_fallback.printing.spool import Spool, print_with_spool

    for err in print_with_spool(printer, Spool(s.data_dir / "spool"), [doc]):
        typer.echo(f"warning: the label did not print ({err}); the refusal is saved: reprint it with F6", err=True)


def register(app: typer.Typer) -> None:
    app.command("collect")(collect)

"""``opd-fallback clock show | confirm``: this counter's clock against the hub's or central's.

``show`` prints the last measure (``--json`` too); ``confirm --supervisor ID``
is a supervisor's confirmation (PIN asked, or one line on stdin with
``--pin-stdin``) that the counter may save although its clock is more than 5
minutes off (application/clock.py): audited, valid for that offset only.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from opd_fallback.cli.common import counter_store, fail
from opd_fallback.domain.exits import ExitCode

clock_app = typer.Typer(help="This counter's clock against the LAN hub's or central's.", no_args_is_help=True)


@clock_app.command("show")
def show(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The last measure of this PC's clock; exit 1 when it is off and not confirmed."""
    from opd_fallback.application.clock import report

    with counter_store() as (_, store), store.read() as s:
        rep = report(s)
    if as_json:
        typer.echo(json.dumps(rep.as_dict(), ensure_ascii=False))
    elif rep.offset_s is None:
        typer.echo("the clock has not been compared with the hub or central yet (share or sync first)")
    else:
        typer.echo(rep.message or f"the clock agrees with the {rep.source}'s (off by {rep.offset_s:+.0f} s)")
        if rep.confirmed_by:
            typer.echo(f"confirmed by supervisor {rep.confirmed_by}")
    raise typer.Exit(ExitCode.REFUSED if rep.off and not rep.confirmed_by else ExitCode.OK)


@clock_app.command("confirm")
def confirm(
    supervisor: Annotated[str, typer.Option("--supervisor", help="Supervisor confirming the date")],
    pin_stdin: Annotated[bool, typer.Option("--pin-stdin", help="Read the supervisor PIN from stdin")] = False,
) -> None:
    """A supervisor confirms this counter may save with its clock as it is (audited)."""
    from opd_fallback.application.clock import confirm as do_confirm
    from opd_fallback.store.operators import PinRefused

    pin = sys.stdin.readline().strip() if pin_stdin else str(typer.prompt("supervisor PIN", hide_input=True))
    with counter_store() as (_, store):
        try:
            rep = do_confirm(store, supervisor, pin)
        except PinRefused as exc:
            fail(exc.sentence)
    if not rep.off:
        typer.echo("the clock agrees with the hub's or central's: nothing to confirm")
    else:
        typer.echo(f"confirmed by {rep.confirmed_by}: this counter saves with its clock as it is "
                   f"({rep.message.split(':')[0]}); set the date and time as soon as possible")

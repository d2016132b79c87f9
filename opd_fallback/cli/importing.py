"""``opd-fallback import FILE.csv --operator ID [--pin-stdin] [--dry-run]``:
paper slips typed in afterwards (format: docs/backentry-csv.md).

The person importing logs in like at the counter: an operator id and the PIN,
asked without echo (or one line of stdin with ``--pin-stdin``), never on the
command line. Every imported op carries that operator's id.

Exit status (domain/exits.py): 0 every row is in (or already was), 1 refused:
some rows were rejected (see the rejects file beside the input), or nothing
was imported because the operator or PIN was not accepted or the counter must
check its numbers with central first (this was 3, which every other command
uses for "central unreachable"), 2 the file itself is unusable.
"""

from __future__ import annotations

import getpass
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from opd_fallback.cli.common import DataDirOpt, counter_store, use_data_dir
from opd_fallback.domain.exits import ExitCode

if TYPE_CHECKING:  # rich, the store and the import itself are imported inside the command (quick start)
    from rich.console import Console

EXIT_UNUSABLE = ExitCode.UNUSABLE
EXIT_REFUSED = ExitCode.REFUSED  # was 3, which is "central unreachable" (domain/exits.py)


def _read_pin(pin_stdin: bool) -> str:
    if pin_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return getpass.getpass("PIN: ")


PROGRESS_EVERY_S = 10.0


def progress_lines(
    write: Callable[[str], object], *, every_s: float = PROGRESS_EVERY_S, clock: Callable[[], float] = time.monotonic,
) -> Callable[..., None]:
    """Off a terminal (cron, an ssh log): one line every ``every_s`` seconds,
    rows done, rows per second, rejected so far and the time left."""
    start = clock()
    last = start

    def update(done: int, total: int, rejected: int = 0) -> None:
        nonlocal last
        now = clock()
        if now - last < every_s or done == 0:
            return
        last = now
        rate = done / max(now - start, 1e-9)
        left = (total - done) / rate if rate > 0 else 0.0
        write(f"importing: {done} of {total} rows, {rate:.0f} rows/s, {rejected} rejected so far, "
              f"about {_duration(left)} left\n")

    return update


def _duration(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 60} min {s % 60} s" if s >= 60 else f"{s} s"


@contextmanager
def progress_bar(enabled: bool, console: Console | None = None) -> Iterator[Callable[..., None] | None]:
    """A progress bar (rows done of all, time left) on stderr when it is a
    terminal; otherwise a line every 10 s (see ``progress_lines``)."""
    if not enabled:
        def write(text: str) -> None:
            sys.stderr.write(text)
            sys.stderr.flush()
        yield progress_lines(write)
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console or Console(stderr=True), transient=True) as bar:
        task = bar.add_task("rows", total=None)

        def update(done: int, total: int, rejected: int = 0) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def import_csv(
    file: Annotated[Path, typer.Argument(help="Back-entry CSV (UTF-8, header row)", show_default=False)],
    operator: Annotated[str, typer.Option("--operator", help="Your operator id (the PIN is asked without echo)",
                                          show_default=False)],
    pin_stdin: Annotated[bool, typer.Option("--pin-stdin", help="Read the PIN from stdin (one line)")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check every row, save nothing")] = False,
    data_dir: DataDirOpt = None,
) -> None:
    """Import manual slips from a back-entry CSV (format: docs/backentry-csv.md)."""
    from opd_fallback.application.backentry import FileUnusable, ImportRefused, import_file
    from opd_fallback.domain.errors import DomainError
    from opd_fallback.store import operators

    use_data_dir(data_dir)
    if not file.is_file():  # say so before asking for a PIN
        typer.echo(f"error: {file}: no such file", err=True)
        raise typer.Exit(EXIT_UNUSABLE)
    with counter_store() as (s, store):
        pin = _read_pin(pin_stdin)
        try:
            accepted = operators.verify_operator(store, operator, pin)
        except DomainError as exc:  # a wrong PIN, an unknown or disabled operator, a lockout
            why = exc.problems[0].message if exc.problems else str(exc)
            typer.echo(f"error: {why.rstrip('.')}; nothing imported", err=True)
            raise typer.Exit(EXIT_REFUSED) from None
        if accepted is None:
            typer.echo("error: operator id or PIN not accepted (or the operator is disabled); nothing imported",
                       err=True)
            raise typer.Exit(EXIT_REFUSED)
        try:
            with progress_bar(sys.stderr.isatty()) as progress:
                report = import_file(store, s.device_id, file, imported_by=accepted.id, dry_run=dry_run,
                                     progress=progress)
        except FileUnusable as exc:
            typer.echo(f"error: {file}: {exc}", err=True)
            raise typer.Exit(EXIT_UNUSABLE) from None
        except ImportRefused as exc:
            typer.echo(f"error: {exc}; nothing imported", err=True)
            raise typer.Exit(EXIT_REFUSED) from None
    for row in report.rejected:
        for problem in row.problems:
            typer.echo(f"{file.name}: {problem}", err=True)
    more = report.count("rejected") - len(report.rejected)  # the report keeps the first ones only
    if more:
        where = "run it without --dry-run for all of them in a rejects file" if dry_run else "all are in the rejects file"
        typer.echo(f"{file.name}: and {more} more rejected rows not listed here ({where})", err=True)
    done = report.count("would_import") if dry_run else report.count("imported")
    verb = "would import" if dry_run else "imported"
    typer.echo(
        f"{file.name}: {verb} {done}, already imported {report.count('already_imported')}, "
        f"rejected {report.count('rejected')} (of {report.total} rows)"
    )
    if report.rejects_path is not None:
        typer.echo(f"rejected rows with the reason in an 'error' column: {report.rejects_path}")
    if dry_run:
        typer.echo("dry run: nothing was saved")
    raise typer.Exit(report.exit_code)


def register(app: typer.Typer) -> None:
    app.command("import")(import_csv)

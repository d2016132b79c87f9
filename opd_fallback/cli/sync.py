"""``opd-fallback sync`` and ``opd-fallback refresh``.

``sync`` pushes the outbox to central: a rich progress bar on a terminal (ops
done of total, rate, time left), plain lines otherwise, then a summary table.
Exit status: 0 all synced, 1 some ops need a person (or still wait), 3 the
server is unreachable (including a proxy, firewall or captive portal in the
way) or refused the token, 4 another sync holds this database (the summary
still counts the queue). ``--give-up-after N`` ends the run about N seconds
after central's last useful answer, however the network misbehaves.
``--watch`` keeps going for unattended use: each round is bounded the same way
(a round that gives up prints its summary, then the watch waits for central
again), and Ctrl-C or SIGTERM stops it after the exchange under way, by the
command's own handler (``cli/common.stop_on_signals``, shared with ``share
--watch``), with the last round's exit status (3 when central never answered).
``--json`` prints a machine-readable summary on stdout (a line per round with
``--watch``).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from opd_fallback.cli.common import TokenOpt, TokenStdinOpt, read_token, stop_on_signals, warn_insecure_tls
from opd_fallback.domain.exits import ExitCode

if TYPE_CHECKING:  # imported in _settings: pydantic-settings is not needed for `--help`
    from rich.progress import Progress, Task, TaskID
    from rich.text import Text

    from opd_fallback.application.clock import ClockReport
    from opd_fallback.config import Settings
    from opd_fallback.store import Store
    from opd_fallback.sync.summary import SyncSummary

ServerOpt = Annotated[str | None, typer.Option("--server", help="Central server URL [env OPD_CENTRAL_URL]")]
CaOpt = Annotated[Path | None, typer.Option(
    "--ca-bundle", help="PEM file of a hospital's own TLS CA [env OPD_CA_BUNDLE]; never turn checks off instead")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print a machine-readable summary")]
DataOpt = Annotated[Path | None, typer.Option("--data-dir", help="Counter data directory [env OPD_DATA_DIR]")]


def _err(msg: str) -> None:
    typer.echo(msg, err=True)


def _settings(data_dir: Path | None, server: str | None, token: str | None, ca_bundle: Path | None) -> Settings:
    from opd_fallback.config import check_ca_bundle, load_settings

    if data_dir is not None:
        os.environ["OPD_DATA_DIR"] = str(data_dir.expanduser().resolve())
    s = load_settings(None, central_url=server, central_token=token, ca_bundle=ca_bundle)
    warn_insecure_tls(s)
    if not s.device_id or not s.db_path.exists():
        _err(f"error: no counter set up in {s.data_dir}: run 'opd-fallback init --device C07 --hospital KGMU'")
        raise typer.Exit(ExitCode.REFUSED)
    if not s.central_url:
        _err("error: no central server configured: pass --server URL (or set OPD_CENTRAL_URL, or run init --server)")
        raise typer.Exit(ExitCode.UNREACHABLE)
    if not s.central_token:
        _err("error: no device token: pass --token (or set OPD_CENTRAL_TOKEN, or run init --token)")
        raise typer.Exit(ExitCode.UNREACHABLE)
    if s.ca_bundle is not None and (why := check_ca_bundle(Path(s.ca_bundle))):
        _err(f"error: {why}; give a PEM file of your hospital's CA with --ca-bundle (or OPD_CA_BUNDLE)")
        raise typer.Exit(ExitCode.REFUSED)
    return s


class _Reporter:
    """Progress for a person: a rich bar on a TTY, a plain line a second otherwise."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.tty = sys.stdout.isatty() and not quiet
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._last = 0.0
        self._t0 = time.monotonic()

    def __enter__(self) -> _Reporter:
        if self.tty:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TaskProgressColumn,
                TextColumn,
                TimeRemainingColumn,
            )

            class Rate(TextColumn):
                def render(self, task: Task) -> Text:
                    from rich.text import Text

                    speed = task.finished_speed or task.speed
                    return Text(f"{speed:,.0f} ops/s" if speed else "")

            self._progress = Progress(TextColumn("syncing"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
                                      Rate(""), TimeRemainingColumn(), transient=False)
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            self._task = None

    def __call__(self, done: int, total: int) -> None:
        if self.quiet:
            return
        if self._progress is not None:
            if self._task is None:
                self._task = self._progress.add_task("sync", total=total)
            self._progress.update(self._task, completed=done, total=total)
            return
        now = time.monotonic()
        if done in (0, total) or now - self._last >= 1.0:
            self._last = now
            rate = done / (now - self._t0) if now > self._t0 and done else 0.0
            typer.echo(f"sync: {done}/{total} ops ({rate:,.0f} ops/s)")

    def note(self, msg: str) -> None:
        if self.quiet:
            return
        if self._progress is not None:
            self._progress.console.print(msg, markup=False, highlight=False)
        else:
            _err(msg)


def _print_summary(summary: SyncSummary) -> None:
    rows = [
        ("applied", summary.applied), ("duplicate (already there)", summary.duplicate),
        ("rejected", summary.rejected), ("conflict", summary.conflict + summary.waited_too_long),
        ("held back (dependency)", summary.held_back), ("still waiting", summary.still_waiting),
        ("need a person (in the queue)", summary.needs_person),
    ]
    if getattr(summary, "quarantined", 0):
        rows.append(("damaged here, set aside for review", summary.quarantined))
    headline = {"ok": "all synced", "needs_person": "synced; some ops need a person",
                "unreachable": "central server unreachable", "unauthorized": "token refused",
                "busy": "another sync is running", "stopped": "stopped", "error": "failed"}.get(
        summary.outcome, summary.outcome)
    if summary.outcome == "ok" and summary.still_waiting:
        headline = "synced what could be sent; some ops still wait"
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"Sync: {headline} ({summary.elapsed_s:.1f}s, {summary.ops_per_s:,.0f} ops/s)")
        table.add_column("ops")
        table.add_column("count", justify="right")
        for name, n in rows:
            table.add_row(name, str(n))
        console = Console()
        console.print(table)
        for r in summary.reasons[:5]:
            console.print(f"  - {r}", markup=False, highlight=False)
        if summary.message and summary.message not in summary.reasons:
            console.print(summary.message, markup=False, highlight=False)
        for w in summary.warnings:
            console.print(f"warning: {w}", style="bold yellow", markup=False)
        return
    typer.echo(f"sync: {headline} in {summary.elapsed_s:.1f}s ({summary.ops_per_s:,.0f} ops/s)")
    typer.echo("  " + ", ".join(f"{name} {n}" for name, n in rows))
    for r in summary.reasons[:5]:
        typer.echo(f"  - {r}")
    if summary.message and summary.message not in summary.reasons:
        typer.echo(f"  {summary.message}")
    for w in summary.warnings:
        _err(f"warning: {w}")


def _say_stopped(store: Store, last: list[SyncSummary]) -> None:
    """The watch's last words: what still waits (nothing is lost), and central's state if it never answered."""
    from opd_fallback.store import reads

    with store.read() as ses:
        waiting = reads.signature(ses)[0]
    why = "" if last else "; central never answered"
    rest = (f"{waiting} ops wait in the queue, nothing is lost: run sync again to send them" if waiting
            else "nothing waits in the queue")
    _err(f"sync: stopped watching{why}; {rest}")


def sync(
    server: ServerOpt = None,
    token: TokenOpt = None,
    token_stdin: TokenStdinOpt = False,
    ca_bundle: CaOpt = None,
    watch: Annotated[bool, typer.Option("--watch", help="Keep syncing: wait for central, then push new ops as they come (Ctrl-C or SIGTERM to stop)")] = False,
    as_json: JsonOpt = False,
    data_dir: DataOpt = None,
    interval: Annotated[float, typer.Option("--interval", help="With --watch: seconds between looks for new ops")] = 5.0,
    give_up_after: Annotated[float, typer.Option("--give-up-after", help="Give up (exit 3) when central has not answered usefully for this many seconds; every request, retry and Retry-After wait counts (with --watch: each round gives up, then the watch waits for central again)")] = 60.0,
    wait_lease: Annotated[float, typer.Option("--wait", help="Seconds to wait if another sync holds this database")] = 0.0,
) -> None:
    """Push this counter's queued ops to the central server, exactly once, in order."""
    from opd_fallback.store import open_store
    from opd_fallback.sync.client import CentralClient
    from opd_fallback.sync.engine import SyncEngine

    s = _settings(data_dir, server, read_token(token, token_stdin), ca_bundle)
    stop = threading.Event()
    store = open_store(s.db_path)
    last: list[SyncSummary] = []
    clock: list[ClockReport] = []  # this PC's clock against central's (application/clock.py)
    try:
        with _Reporter(quiet=as_json) as rep, CentralClient.from_settings(s) as client:
            engine = SyncEngine(  # --give-up-after bounds each round of a watch too: a round ends, and says so
                store, client, s, give_up_after_s=give_up_after, lease_wait_s=wait_lease,
                stop=stop, on_warning=lambda m: rep.note(f"warning: {m}"),
                on_event=(lambda m: rep.note(f"sync: {m}")) if not as_json else None,
            )
            if not watch:
                last.append(engine.run(rep))
                if client.clock_skew_s is not None:
                    from opd_fallback.application.clock import observe

                    clock.append(observe(store, "central", client.clock_skew_s))
            else:
                def on_summary(summary: SyncSummary) -> None:
                    last[:] = [summary]
                    if as_json:
                        typer.echo(json.dumps(summary.as_dict(), ensure_ascii=False))
                    elif summary.total or summary.outcome != "ok":
                        _print_summary(summary)

                if not as_json:
                    rep.note(f"sync: watching {client.base_url} (Ctrl-C or SIGTERM to stop)")
                # Ctrl-C and SIGTERM end the watch after the exchange under way (cli/common.py)
                with stop_on_signals(stop):
                    engine.watch(rep, interval_s=interval, on_summary=on_summary)
                if not as_json:
                    _say_stopped(store, last)
    except KeyboardInterrupt:
        stop.set()
        _err("sync: interrupted; nothing is lost, run sync again to continue")
        raise typer.Exit(ExitCode.REFUSED) from None
    finally:
        store.close()
    if not last:  # a watch stopped before central ever answered
        raise typer.Exit(ExitCode.UNREACHABLE if watch else ExitCode.OK)
    summary = last[0]
    code = summary.exit_code
    if not watch:
        if as_json:
            out = summary.as_dict()
            out["clock"] = clock[0].as_dict() if clock else None
            typer.echo(json.dumps(out, ensure_ascii=False, indent=2))
        else:
            _print_summary(summary)
            if clock and clock[0].off:
                _err(f"sync: {clock[0].message}")
        if clock and clock[0].off_by_a_day and code == ExitCode.OK:
            code = ExitCode.REFUSED  # a person must set the date: every number printed carries it
    raise typer.Exit(code)


def refresh(
    server: ServerOpt = None,
    token: TokenOpt = None,
    token_stdin: TokenStdinOpt = False,
    ca_bundle: CaOpt = None,
    as_json: JsonOpt = False,
    data_dir: DataOpt = None,
    no_index: Annotated[bool, typer.Option("--no-index", help="Skip the patient index")] = False,
    give_up_after: Annotated[float, typer.Option("--give-up-after", help="Seconds to keep trying an unreachable server")] = 30.0,
) -> None:
    """Fetch master data, the patient index and id blocks for offline work."""
    from opd_fallback.store import open_store
    from opd_fallback.sync.client import CentralClient
    from opd_fallback.sync.refresh import refresh_all

    s = _settings(data_dir, server, read_token(token, token_stdin), ca_bundle)
    store = open_store(s.db_path)
    try:
        with CentralClient.from_settings(s, on_warning=lambda m: _err(f"warning: {m}")) as client:
            result = refresh_all(store, client, s, index=not no_index, give_up_after_s=give_up_after)
    finally:
        store.close()
    if as_json:
        typer.echo(json.dumps(result.as_dict(), ensure_ascii=False, indent=2))
    else:
        typer.echo(f"refresh: {result.message}")
    if result.ok:
        raise typer.Exit(ExitCode.OK)
    raise typer.Exit(ExitCode.UNREACHABLE if (result.unauthorized or result.unreachable) else ExitCode.REFUSED)


def register(app: typer.Typer) -> None:
    app.command("sync")(sync)
    app.command("refresh")(refresh)

"""Helpers shared by the typer commands: settings, the store, readable errors.

Commands stay thin: they parse arguments, call the domain or services, and
turn a ``DomainError`` into a clear message on stderr with exit status 1.
Every command module imports this one at start, so config, the store and the
domain (pydantic, SQLAlchemy) are imported inside the helpers that use them.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from opd_fallback.domain.exits import ExitCode

if TYPE_CHECKING:  # imported where used: every command loads this module, `--help` needs none of them
    from opd_fallback.config import Settings
    from opd_fallback.domain.errors import DomainError
    from opd_fallback.store import Store

DataDirOpt = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Counter data directory (env OPD_DATA_DIR; default: the platform user data dir)"),
]


def use_data_dir(data_dir: Path | None) -> None:
    """Make ``--data-dir`` the data directory for everything this process
    reads through ``config.load_settings()`` (which honours OPD_DATA_DIR)."""
    if data_dir is not None:
        os.environ["OPD_DATA_DIR"] = str(data_dir.expanduser().resolve())


HELP_ON_COMMAND_LINE = (
    "Device token from central. Visible to other users in the process list (ps): prefer "
    "--token-stdin or the environment variable OPD_CENTRAL_TOKEN; --token still works but warns"
)
HELP_FROM_STDIN = "Read the device token from the first line of stdin (like docker login --password-stdin)"
TokenOpt = Annotated[str | None, typer.Option("--token", help=HELP_ON_COMMAND_LINE)]
TokenStdinOpt = Annotated[bool, typer.Option("--token-stdin", help=HELP_FROM_STDIN)]


def read_token(token: str | None, token_stdin: bool) -> str | None:
    """The device token given on this run: from stdin with ``--token-stdin``,
    else ``--token`` (with a warning: the command line is visible in ``ps``);
    None means the environment / stored token applies."""
    if token_stdin:
        if token:
            fail("give the token one way: --token-stdin or --token, not both")
        line = sys.stdin.readline().strip()
        if not line:
            fail("--token-stdin: no token on the first line of stdin")
        return line
    if token:
        typer.echo("warning: --token puts the device token in the process list (ps) for every user of this "
                   "computer to see; use --token-stdin or OPD_CENTRAL_TOKEN instead", err=True)
    return token


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[threading.Event]:
    """While the block runs, Ctrl-C (SIGINT) and a service manager's SIGTERM set
    ``stop`` instead of ending the process: a ``--watch`` loop (share, sync)
    finishes the exchange under way and ends with its summary and exit status.

    Installed by the command, not left to Python's KeyboardInterrupt: a parent
    that ignores SIGINT (a job started with ``&``, some supervisors) passes the
    ignore on, and Python then raises nothing (the watch ran on); SIGTERM's
    default ends the process at once, without a summary. The previous handlers
    come back when the block ends. Main thread only (``signal.signal``).
    """

    def on_signal(_signum: int, _frame: object) -> None:
        stop.set()

    before = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def fail(message: str, *, code: int = ExitCode.REFUSED) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def fail_domain(exc: DomainError, *, code: int = ExitCode.REFUSED) -> NoReturn:
    for problem in exc.problems:
        typer.echo(f"error: {problem}", err=True)
    raise typer.Exit(code)


@contextmanager
def domain_errors() -> Iterator[None]:
    """Turn a refused request into a message and exit 1 (no traceback for clerks)."""
    from opd_fallback.domain.errors import DomainError

    try:
        yield
    except DomainError as exc:
        fail_domain(exc)


warned_tls: list[bool] = []


def warn_insecure_tls(s: Settings) -> None:
    """Say so on stderr, once per run, while TLS certificate checks are off."""
    from opd_fallback.config import tls_warning

    text = tls_warning(s)
    if text and not warned_tls:
        warned_tls.append(True)
        typer.echo(f"warning: {text}", err=True)


def settings() -> Settings:
    """Settings for this counter (``--data-dir`` / ``OPD_DATA_DIR`` / platform dir)."""
    from opd_fallback.config import load_settings

    s = load_settings()
    warn_insecure_tls(s)
    return s


def counter_settings() -> Settings:
    """Settings of a counter that has been set up with ``init`` (else exit 1)."""
    from opd_fallback.config import load_settings

    s = load_settings()
    warn_insecure_tls(s)
    if not s.device_id or not s.db_path.exists():
        fail(f"no counter set up in {s.data_dir}: run 'opd-fallback init --device C07 --hospital KGMU'")
    return s


@contextmanager
def counter_store() -> Iterator[tuple[Settings, Store]]:
    """The set-up counter's settings and its open store, closed afterwards."""
    from opd_fallback.store import open_store

    s = counter_settings()
    store = open_store(s.db_path)
    try:
        yield s, store
    finally:
        store.close()

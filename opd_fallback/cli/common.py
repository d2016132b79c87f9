"""Helpers shared by the typer commands: settings, the store, readable errors.

Commands stay thin: they parse arguments, call the domain or services, and
turn a ``DomainError`` into a clear message on stderr with exit status 1.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from opd_fallback.config import Settings, load_settings
from opd_fallback.domain.errors import DomainError
from opd_fallback.store import Store, open_store

DataDirOpt = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Counter data directory (env OPD_DATA_DIR; default: the platform user data dir)"),
]


def use_data_dir(data_dir: Path | None) -> None:
    """Make ``--data-dir`` the data directory for everything this process
    reads through ``config.load_settings()`` (which honours OPD_DATA_DIR)."""
    if data_dir is not None:
        os.environ["OPD_DATA_DIR"] = str(data_dir.expanduser().resolve())


def fail(message: str, *, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def fail_domain(exc: DomainError, *, code: int = 1) -> NoReturn:
    for problem in exc.problems:
        typer.echo(f"error: {problem}", err=True)
    raise typer.Exit(code)


@contextmanager
def domain_errors() -> Iterator[None]:
    """Turn a refused request into a message and exit 1 (no traceback for clerks)."""
    try:
        yield
    except DomainError as exc:
        fail_domain(exc)


def settings() -> Settings:
    """Settings for this counter (``--data-dir`` / ``OPD_DATA_DIR`` / platform dir)."""
    return load_settings()


def counter_settings() -> Settings:
    """Settings of a counter that has been set up with ``init`` (else exit 1)."""
    s = load_settings()
    if not s.device_id or not s.db_path.exists():
        fail(f"no counter set up in {s.data_dir}: run 'opd-fallback init --device C07 --hospital KGMU'")
    return s


@contextmanager
def counter_store() -> Iterator[tuple[Settings, Store]]:
    """The set-up counter's settings and its open store, closed afterwards."""
    s = counter_settings()
    store = open_store(s.db_path)
    try:
        yield s, store
    finally:
        store.close()

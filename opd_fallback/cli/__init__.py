"""``opd-fallback``: the counter's command line (typer).

This module only builds the app and mounts the commands, each concern in its
own module beside it; every command is registered here by name, so reading
this file lists them all. The modules keep heavy imports (Textual, httpx,
FastAPI) inside their command functions, so a quick command starts quickly.
"""

from __future__ import annotations

import contextlib
import os

import typer

from opd_fallback.cli import central, counter, importing, preview, reconcile, review, setup, status, sync
from opd_fallback.cli.common import DataDirOpt, use_data_dir

app = typer.Typer(
    name="opd-fallback",
    help="Keeps an OPD registration counter working while the central HIS is down.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # never print patient data in a traceback
)


@app.callback()
def _root(data_dir: DataDirOpt = None) -> None:
    """Keeps an OPD registration counter working while the central HIS is down."""
    # Every command reads settings through config.load_settings(), which honours OPD_DATA_DIR.
    use_data_dir(data_dir)
    warn_now()


def warn_now() -> None:
    """Warnings every run must show (TLS checks off), from the environment and
    config.toml; never stops a command that would otherwise run."""
    from opd_fallback.cli.common import warn_insecure_tls, warned_tls
    from opd_fallback.config import load_settings

    warned_tls.clear()  # a new run (tests run many in one process)
    with contextlib.suppress(Exception):  # a bad setting is reported by the command that needs it
        warn_insecure_tls(load_settings())


setup.register(app)  # init, operator
importing.register(app)  # import
status.register(app)  # status
app.command("counter")(counter.counter)
sync.register(app)  # sync, refresh
app.add_typer(central.central_app, name="central")
app.add_typer(review.review_app, name="review")
reconcile.register(app)  # reconcile, nightly, backup, restore
preview.register(app)  # preview


def main() -> None:
    """Console-script entry point. The umask comes first: every file this
    process makes (the database and its -wal/-shm, backups, spool, prints,
    logs) is then owner-only even where a module forgets its explicit mode."""
    os.umask(0o077)
    app()

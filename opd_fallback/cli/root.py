"""``opd-fallback``: the counter's command line (typer); ``cli/__init__.py``
holds the entry point, which starts ``counter`` without loading this module.

This module only builds the app and mounts the commands, each concern in its
own module beside it; every command is registered here by name, so reading
this file lists them all. The modules keep heavy imports (Textual, httpx,
FastAPI) inside their command functions, so a quick command starts quickly.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError
from typer.core import TyperGroup

from opd_fallback.cli import (
    central,
    clock,
    collect,
    conformance,
    counter,
    find,
    hub,
    importing,
    keys,
    preview,
    reconcile,
    review,
    setup,
    share,
    status,
    sync,
)
from opd_fallback.cli.common import DataDirOpt, use_data_dir
from opd_fallback.domain.exits import ExitCode, OpdError

EXIT_UNEXPECTED = ExitCode.UNEXPECTED  # a bug: one line on the terminal, the traceback in the error log


class OneLineErrors(TyperGroup):
    """Every command, ours and the other parts', ends in one sentence on stderr
    and a documented exit status when the disk or the database fails (see
    store/failures.py), when an ``OpdError`` reaches it (its sentence and its
    ``exit_code``, domain/exits.py), or when anything else unexpected happens: the
    traceback goes to the 0600 error log in the data directory, never to the
    terminal (it could show a patient's data)."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:  # turned into one line below, never swallowed
            if type(exc).__module__.split(".")[0] in ("click", "typer"):
                raise  # Exit, Abort, usage errors: typer's own control flow
            _one_line(exc, ctx.invoked_subcommand or "")
            raise  # unreachable: _one_line exits


def _data_paths() -> tuple[Path | None, Path | None]:
    from opd_fallback.config import load_settings

    try:
        s = load_settings()
    except Exception:  # the error being reported matters more
        return None, None
    return s.data_dir, s.db_path


def _one_line(exc: Exception, where: str) -> None:
    from opd_fallback.store.failures import explain, write_log

    data_dir, db_path = _data_paths()
    problem = explain(exc, db_path, where=where)
    if problem is not None:
        typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(problem.exit_code)
    if isinstance(exc, OpdError) and exc.exit_code != ExitCode.UNEXPECTED:
        typer.echo(f"error: {exc}", err=True)  # an error with words for people: its sentence and its status
        raise typer.Exit(exc.exit_code)
    if isinstance(exc, ValidationError) and exc.title in ("Settings", "CentralSettings"):
        from opd_fallback.domain.errors import explain as problems

        said = "; ".join(f"{p.field}: {p.message}" for p in problems(exc))
        typer.echo(f"error: a setting is not valid ({said}): fix it in config.toml or the OPD_* "
                   "environment variables", err=True)
        raise typer.Exit(ExitCode.REFUSED)
    log = write_log(exc, data_dir, where=where)
    where_log = f"details for IT are in {log}" if log else "no log could be written"
    typer.echo(f"error: an unexpected {type(exc).__name__} stopped this command ({where_log}); "
               "please report it", err=True)
    raise typer.Exit(EXIT_UNEXPECTED)


app = typer.Typer(
    cls=OneLineErrors,
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
    from opd_fallback.datadir import tls_checks_may_be_off

    warned_tls.clear()  # a new run (tests run many in one process)
    if not tls_checks_may_be_off():  # the usual case, known without loading pydantic-settings
        return
    from opd_fallback.config import load_settings

    with contextlib.suppress(Exception):  # a bad setting is reported by the command that needs it
        warn_insecure_tls(load_settings())


setup.register(app)  # init, operator
importing.register(app)  # import
collect.register(app)  # collect (the lab's collection desk, one tube id per line)
status.register(app)  # status
app.command("counter")(counter.counter)
sync.register(app)  # sync, refresh
app.add_typer(central.central_app, name="central")
app.add_typer(hub.hub_app, name="hub")  # the LAN hub: serve, add-device
app.add_typer(review.review_app, name="review")
app.add_typer(clock.clock_app, name="clock")  # show, confirm: the PC clock against the hub's
reconcile.register(app)  # reconcile, nightly, backup, restore
app.command("find")(find.find)  # a patient here, on the LAN or in central's index
app.command("share")(share.share)  # share with the LAN hub
preview.register(app)  # preview
keys.register(app)  # encrypt, rotate-key, recovery-code, recover-key
app.command("conformance", help=conformance.HELP)(conformance.conformance)  # check a central server


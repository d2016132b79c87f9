"""``opd-fallback``: the counter's command line (typer).

This module only builds the app and mounts the commands, each concern in its
own module beside it; every command is registered here by name, so reading
this file lists them all. The modules keep heavy imports (Textual, httpx,
FastAPI) inside their command functions, so a quick command starts quickly.
"""

from __future__ import annotations

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
    """Console-script entry point."""
    app()

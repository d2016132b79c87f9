"""``opd-fallback``: the counter's command line (typer).

This module only builds the app and mounts the commands; each concern has its
own module beside it. Sibling modules written by other parts are mounted when
present: a module may expose ``register(app)``, a typer sub-app ``<name>_app``
(mounted as ``<name>``), or a plain function ``<name>`` (mounted as a command).
"""

from __future__ import annotations

import importlib

import typer

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
    # Every command (ours and the other parts') reads settings through
    # config.load_settings(), which honours OPD_DATA_DIR.
    use_data_dir(data_dir)


def _mount_own() -> None:
    from opd_fallback.cli import importing, setup, status

    setup.register(app)
    importing.register(app)
    status.register(app)


# (module, names it may provide) — mounted in this order when the module exists.
SIBLINGS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("counter", ("counter",)),
    ("sync", ("sync", "refresh")),
    ("central", ("central",)),
    ("review", ("review",)),
    ("reconcile", ("reconcile",)),
)


def _mount_sibling(module: str, names: tuple[str, ...]) -> None:
    full = f"{__name__}.{module}"
    try:
        mod = importlib.import_module(full)
    except ModuleNotFoundError as exc:
        if exc.name == full:
            return  # that part has not landed yet
        raise
    register = getattr(mod, "register", None)
    if callable(register):
        register(app)
        return
    for name in names:
        sub = getattr(mod, f"{name}_app", None)
        if isinstance(sub, typer.Typer):
            app.add_typer(sub, name=name)
            continue
        func = getattr(mod, name, None)
        if isinstance(func, typer.Typer):
            app.add_typer(func, name=name)
        elif callable(func):
            app.command(name)(func)


_mount_own()
for _module, _names in SIBLINGS:
    _mount_sibling(_module, _names)


def main() -> None:
    """Console-script entry point."""
    app()

"""``opd-fallback``'s entry point, and a short way to the counter.

The commands live in ``cli/root.py`` (typer); ``app`` and the rest of that
module's names are reached through this package as before (loaded on first
use). The clerk's command, ``opd-fallback counter`` (with ``--data-dir DIR``
before it, ``--no-sync`` or ``--lang en|hi`` after), is started here without
loading typer and the twenty command modules, and, for a counter as ``init``
leaves it, before pydantic-settings (the full settings load behind the login
screen): its login screen is painted that much sooner (issue 21;
benchmarks/counter_start.py). Anything else, a
``--help``, a setting that needs a warning (TLS checks off) or a counter not
set up, goes the long way, so every message and exit status stays typer's
and ``root.py``'s own.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # ``--help``, the quick commands and the counter's first paint load no pydantic-settings
    from opd_fallback.config import Settings
    from opd_fallback.tui.app import CounterApp


def __getattr__(name: str) -> Any:  # ``from opd_fallback.cli import app`` and friends
    import importlib

    if name.startswith("__") or name == "root":
        raise AttributeError(name)
    return getattr(importlib.import_module("opd_fallback.cli.root"), name)


def _counter_args(argv: list[str]) -> tuple[str | None, bool, str | None] | None:
    """``(data_dir, no_sync, lang)`` when ``argv`` is a plain ``counter`` command, else None."""
    data_dir = None
    rest = list(argv)
    if rest[:1] == ["--data-dir"] and len(rest) >= 2:
        data_dir, rest = rest[1], rest[2:]
    elif rest[:1] and rest[0].startswith("--data-dir="):
        data_dir, rest = rest[0].split("=", 1)[1], rest[1:]
    if rest[:1] != ["counter"]:
        return None
    no_sync, lang = False, None
    it = iter(rest[1:])
    for arg in it:
        if arg == "--no-sync":
            no_sync = True
        elif arg == "--lang":
            lang = next(it, None)
        elif arg.startswith("--lang="):
            lang = arg.split("=", 1)[1]
        else:
            return None
        if arg.startswith("--lang") and lang not in ("en", "hi"):
            return None  # typer says what is wrong
    return data_dir, no_sync, lang


def run_counter(settings: Settings, *, no_sync: bool) -> None:
    """Open the counter UI for ``settings``; a store that would not open is said in one line afterwards."""
    from opd_fallback.tui.wiring import app_from_settings

    _run(app_from_settings(settings, background_sync=False if no_sync else None))


def _run(app: CounterApp) -> None:
    app.run()
    if app.load_error is not None:  # the store did not open behind the login screen: say why, in one line
        raise app.load_error


def _counter_fast(argv: list[str]) -> bool:
    """Run ``counter`` without typer when the command line is a plain one; False: take the long way.

    A counter as ``init`` leaves it (only the settings ``datadir.counter_start``
    reads without pydantic) paints its login screen before the full settings
    load; they load behind it (``tui/wiring.app_for_start``). Any other setting
    loads them first, so a setting they refuse is said before any screen."""
    parsed = _counter_args(argv)
    if parsed is None:
        return False
    data_dir, no_sync, lang = parsed
    from opd_fallback.datadir import counter_start, tls_checks_may_be_off

    if data_dir is not None:
        os.environ["OPD_DATA_DIR"] = str(Path(data_dir).expanduser().resolve())
    try:
        start = counter_start()
        if start is not None:
            from opd_fallback.tui.wiring import app_for_start

            _run(app_for_start(start if lang is None else replace(start, language=lang), _full_settings,
                               background_sync=False if no_sync else None))
            return True
        if tls_checks_may_be_off():
            return False  # the long way warns first
        from opd_fallback.config import load_settings

        settings = load_settings()
        if not settings.device_id or not settings.db_path.exists():
            return False  # the long way says "no counter set up"
        if lang is not None:
            settings = settings.model_copy(update={"language": lang})
        run_counter(settings, no_sync=no_sync)
    except Exception as exc:  # the same one sentence and exit status as every command's
        from opd_fallback.cli.root import _one_line

        try:
            _one_line(exc, "counter")
        except BaseException as said:  # typer.Exit
            sys.exit(getattr(said, "exit_code", 1))
    return True


def _full_settings() -> Settings:
    from opd_fallback.config import load_settings

    return load_settings()


def main() -> None:
    """Console-script entry point. The umask comes first: every file this
    process makes (the database and its -wal/-shm, backups, spool, prints,
    logs) is then owner-only even where a module forgets its explicit mode."""
    os.umask(0o077)
    if _counter_fast(sys.argv[1:]):
        return
    app: Callable[[], object] | None = globals().get("app")  # a test may put its own here
    if app is None:
        from opd_fallback.cli import root

        app = root.app
    app()

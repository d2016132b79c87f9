"""``opd-fallback counter``: open the counter UI (Textual)."""

from __future__ import annotations

from typing import Annotated

import typer


def counter(
    no_sync: Annotated[bool, typer.Option("--no-sync", help="Do not sync in the background")] = False,
    lang: Annotated[str | None, typer.Option("--lang", help="en or hi (default from config)")] = None,
) -> None:
    """Open the counter: register, revisit, lab orders, void, reprint, queue, cash summary."""
    from opd_fallback.cli import run_counter
    from opd_fallback.cli.common import counter_settings

    settings = counter_settings()
    if lang is not None:
        if lang not in ("en", "hi"):
            raise typer.BadParameter("must be en or hi", param_hint="--lang")
        settings = settings.model_copy(update={"language": lang})
    run_counter(settings, no_sync=no_sync)

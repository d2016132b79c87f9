"""``opd-fallback status [--json]``: the queue and today's money at a glance."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from opd_fallback.cli.common import DataDirOpt, counter_settings, use_data_dir


def status(
    as_json: Annotated[bool, typer.Option("--json", help="Stable JSON (see docs/status-json.md)")] = False,
    data_dir: DataDirOpt = None,
) -> None:
    """Ops by state and kind, the oldest waiting op, the last sync, payments today."""
    from opd_fallback.application.status import collect, render_text
    from opd_fallback.datadir import counter_identity

    use_data_dir(data_dir)
    # the counter's database and id without pydantic-settings; anything unusual takes the full
    # settings (a hub_url among them: the quick path means no hub is configured)
    found = counter_identity()
    hub_configured = False
    if found is None:
        s = counter_settings()
        found = (s.db_path, s.device_id)
        hub_configured = bool(s.hub_url)
    db_path, device_id = found
    report = collect(db_path, device_id, hub_configured=hub_configured)
    if as_json:
        typer.echo(json.dumps(report, ensure_ascii=False, indent=2, sort_keys=True))
    else:
        typer.echo(render_text(report))


def register(app: typer.Typer) -> None:
    app.command("status")(status)

"""``opd-fallback find QUERY [--json]``: a patient by name, mobile (whole, or its first
or last 4+ digits), offline number, uhid, visit, order or receipt number, or a tube's
sample id, across this counter, the other counters of the LAN (last share) and
central's index."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from opd_fallback.cli.common import counter_store
from opd_fallback.domain.exits import ExitCode


def find(
    query: Annotated[str, typer.Argument(help="Name, mobile (or its first or last 4+ digits), offline number (or "
                                               "the slip's QR text), uhid, visit/order/receipt number or sample id")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, max=200, help="At most this many hits")] = 20,
) -> None:
    """Find a patient here, at the other counters of this hospital, or in central's index."""
    from opd_fallback.application.find import find as run

    with counter_store() as (_s, store):
        hits = run(store, query, limit=limit)
    if as_json:
        typer.echo(json.dumps([h.as_dict() for h in hits], ensure_ascii=False))
        return
    if not hits:
        typer.echo("no patient found here, on the LAN (as of the last share) or in central's index")
        raise typer.Exit(ExitCode.REFUSED)
    for h in hits:
        ident = h.local_ref or h.uhid or ""
        extra = f" uhid {h.uhid}" if h.local_ref and h.uhid else ""
        typer.echo(f"{ident:<20} {h.name[:28]:<28} {h.age_sex:<8} {h.mobile or '':<10}  "
                   f"[{h.where}]{extra} by {h.match.replace('_', ' ')}")

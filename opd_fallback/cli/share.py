"""``opd-fallback share [--watch]``: one exchange with the LAN hub (or keep exchanging).

Pushes this counter's new ops to the hub and pulls every other counter's, so
the lab and billing counters can find and build on this counter's patients
while central is down. Exit status: 0 done, 3 hub unreachable or token
refused, 1 not set up for a hub.
"""

from __future__ import annotations

import json
import threading
from typing import Annotated, Any

import typer

from opd_fallback.cli.common import counter_settings, fail


def share(
    watch: Annotated[bool, typer.Option("--watch", help="Keep sharing every --interval seconds (Ctrl-C to stop)")] = False,
    interval: Annotated[float | None, typer.Option("--interval", help="With --watch: seconds between exchanges")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a machine-readable summary")] = False,
) -> None:
    """Share records with the other counters of this hospital through the LAN hub."""
    from opd_fallback.application.share import share_once
    from opd_fallback.application.share import watch as watch_loop
    from opd_fallback.store import open_store
    from opd_fallback.sync.hub_client import HubClient

    s = counter_settings()
    if not s.hub_url:
        fail("no LAN hub configured: run 'opd-fallback init ... --hub URL --hub-token-stdin' (or set OPD_HUB_URL)")
    if not s.hub_token:
        fail("no hub token: run 'opd-fallback init ... --hub-token-stdin' (or set OPD_HUB_TOKEN)")

    def show(res: Any) -> None:
        if as_json:
            typer.echo(json.dumps(res.as_dict(), ensure_ascii=False))
            return
        head = {"ok": "share", "unreachable": "share: hub unreachable", "unauthorized": "share: token refused"}
        typer.echo(f"{head.get(res.outcome, 'share')}: {res.message} ({res.elapsed_s:.1f}s)",
                   err=res.outcome != "ok")
        for p in res.problems[:5]:
            typer.echo(f"  - {p}", err=True)

    store = open_store(s.db_path)
    last: list[Any] = []
    try:
        with HubClient.from_settings(s) as client:
            if not watch:
                last.append(share_once(store, client, s.device_id))
                show(last[0])
            else:
                stop = threading.Event()

                def on_result(res: Any) -> None:
                    last[:] = [res]
                    if res.outcome != "ok" or res.pushed or res.pulled_records or as_json:
                        show(res)

                try:
                    watch_loop(store, client, s.device_id, interval_s=interval or s.hub_interval_s, stop=stop,
                               on_result=on_result)
                except KeyboardInterrupt:
                    stop.set()
    finally:
        store.close()
    raise typer.Exit(last[0].exit_code if last else 0)

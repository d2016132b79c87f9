"""``opd-fallback share [--watch]``: one exchange with the LAN hub (or keep exchanging).

Pushes this counter's new ops to the hub and pulls every other counter's, so
the lab and billing counters can find and build on this counter's patients
while central is down. Exit status: 0 done; 1 the hub refused some ops (named;
they are not counted as shared), or not set up for a hub; 3 hub unreachable;
5 the hub PC's disk is full; 6 the hub's database is damaged, deleted or
replaced; 9 the hub refused this counter's token.
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Annotated

import typer

from opd_fallback.cli.common import counter_settings, fail, stop_on_signals
from opd_fallback.domain.exits import ExitCode

if TYPE_CHECKING:  # imported inside the command: it loads the store (SQLAlchemy)
    from opd_fallback.application.share import ShareResult


def share(
    watch: Annotated[bool, typer.Option("--watch", help="Keep sharing every --interval seconds (Ctrl-C or SIGTERM to stop)")] = False,
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

    def show(res: ShareResult) -> None:
        if as_json:
            typer.echo(json.dumps(res.as_dict(), ensure_ascii=False))
            return
        head = {"ok": "share", "unreachable": "share: hub unreachable", "unauthorized": "share: token refused",
                "refused": "share: the hub refused some ops", "hub_disk_full": "share: the hub's disk is full",
                "hub_damaged": "share: the hub's database is damaged or was replaced"}
        typer.echo(f"{head.get(res.outcome, 'share')}: {res.message} ({res.elapsed_s:.1f}s)",
                   err=res.outcome != "ok")
        for p in res.problems[:5]:
            typer.echo(f"  - {p}", err=True)
        if len(res.problems) > 5:
            typer.echo(f"  - and {len(res.problems) - 5} more", err=True)

    store = open_store(s.db_path)
    last: list[ShareResult] = []
    try:
        with HubClient.from_settings(s) as client:
            if not watch:
                last.append(share_once(store, client, s.device_id))
                show(last[0])
            else:
                stop = threading.Event()

                def on_result(res: ShareResult) -> None:
                    last[:] = [res]
                    if res.outcome != "ok" or res.pushed or res.pulled_records or res.hub_went_back or as_json:
                        show(res)

                # Ctrl-C and SIGTERM end the watch after the exchange under way (cli/common.py)
                with stop_on_signals(stop):
                    watch_loop(store, client, s.device_id, interval_s=interval or s.hub_interval_s, stop=stop,
                               on_result=on_result)
    finally:
        store.close()
    raise typer.Exit(last[0].exit_code if last else ExitCode.OK)


def restore_from_hub_cmd(device: str | None) -> None:
    """``restore --from-hub --device C03``: rebuild this (new, empty) counter from the hub
    (application/restore_from_hub.py), then check its numbers with central when it answers.
    Exit 0 ready for new work, 3 hub unreachable or token refused, 1 refused."""
    from opd_fallback.application.restore_from_hub import SEQ_GAP, RestoreRefused, restore_from_hub
    from opd_fallback.store import open_store, readiness
    from opd_fallback.sync.hub_client import HubClient, HubError

    s = counter_settings()
    dev = (device or "").strip().upper()
    if not dev:
        fail("--from-hub needs --device ID (the id of the counter to bring back, e.g. C03)")
    if dev != s.device_id:
        fail(f"this data directory belongs to counter {s.device_id}, not {dev}: to bring back counter {dev}, run "
             f"'opd-fallback init --device {dev} ...' in a new data directory first")
    if not s.hub_url or not s.hub_token:
        fail(f"no LAN hub configured for counter {dev}: run 'opd-fallback init --device {dev} ... --hub URL "
             "--hub-pairing-stdin' first")
    store = open_store(s.db_path)
    try:
        try:
            with HubClient.from_settings(s) as client:
                res = restore_from_hub(store, client, dev)
        except RestoreRefused as exc:
            fail(str(exc))
        except HubError as exc:
            fail(f"counter {dev} could not be restored: {exc}", code=ExitCode.UNREACHABLE)
        typer.echo(f"restored counter {dev} from the hub: {res.own_ops} own ops ({res.own_records} records, "
                   f"{res.updates_applied} patient edits, {res.corrections_applied} corrections) back in the queue "
                   f"({res.cancelled} kept cancelled), {res.other_records} records of other counters, "
                   f"{res.operators} operators, {res.audit_entries} audit entries, master data "
                   f"{res.master_data_version or '(none on the hub: run refresh when central is back)'}")
        typer.echo(f"counter {dev}'s new numbers continue at {res.seq_floor + 1} ({SEQ_GAP} above the highest the hub "
                   f"or central had seen from {dev}, {res.seq_floor - SEQ_GAP}).")
        if s.central_url and s.central_token:
            from opd_fallback.sync.client import CentralClient, SyncError

            try:
                with CentralClient.from_settings(s) as central:
                    check = readiness.check_with_central(store, central, device_id=dev, actor="restore")
                typer.echo(f"central has seq {check.central_max_seq} from {dev}; counter {dev} continues at "
                           f"{check.local_seq_after + 1}.")
            except (SyncError, readiness.WrongDevice) as exc:
                typer.echo(f"central could not be asked now ({exc}); counter {dev} checks its numbers with central "
                           "at its first sync.", err=True)
        typer.echo(f"Ready for new work: counter {dev}.")
        raise typer.Exit(ExitCode.OK)
    finally:
        store.close()

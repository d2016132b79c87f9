"""Build the counter app from the counter's settings: store, backend,
printer, the central probe and the background sync. Kept apart from
``app.py`` so tests build the app from parts and the CLI from config."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from opd_fallback.config import Settings, tls_warning
from opd_fallback.tui.app import CounterApp

if TYPE_CHECKING:
    from opd_fallback.printing import Printer
    from opd_fallback.printing.spool import Spool
    from opd_fallback.store.engine import Store
    from opd_fallback.sync.client import CentralClient
    from opd_fallback.sync.hub_client import HubClient
    from opd_fallback.tui.backend import StoreBackend


def _client_factory(settings: Settings) -> Callable[[], CentralClient] | None:
    if not settings.central_url or not settings.central_token:
        return None

    def make() -> CentralClient:
        from opd_fallback.sync.client import CentralClient

        return CentralClient.from_settings(settings)

    return make


def app_from_settings(settings: Settings, *, background_sync: bool | None = None, **app_kwargs: Any) -> CounterApp:
    """The counter app for a set-up counter (``opd-fallback init`` done). The
    login screen shows first; the store, the backend and the printer are
    opened behind it in a worker (a PIN typed meanwhile waits for them)."""
    opened: dict[str, Store] = {}
    opening = threading.Lock()

    def the_store() -> Store:
        """The counter's store, opened once (by the loader, or by whoever needs it first)."""
        with opening:
            if "store" not in opened:
                from opd_fallback.store.engine import open_store

                opened["store"] = open_store(settings.db_path)
            return opened["store"]

    def load() -> tuple[StoreBackend, Printer, Spool | None]:
        from opd_fallback.printing import make_printer
        from opd_fallback.printing.spool import Spool
        from opd_fallback.tui.backend import StoreBackend

        store = the_store()
        backend = StoreBackend(store, device_id=settings.device_id, hospital=settings.hospital or settings.device_id,
                               district=settings.hospital_district, state=settings.hospital_state)
        printer = make_printer(settings.printer, data_dir=settings.data_dir)
        return backend, printer, Spool(settings.data_dir / "spool")

    make_client = _client_factory(settings)
    probe = None
    sync_runner = None
    if make_client is not None:
        numbers_checked: list[bool] = []

        def probe() -> bool:
            # one cheap GET with short timeouts; never raises. The first time central answers, this
            # counter's numbers are checked against its devices/me (a database that went back in time
            # continues above central's max_seq before it prints another number). The status worker
            # calls this only once the store is open.
            try:
                with make_client() as client:
                    if numbers_checked:
                        client.health()
                    else:
                        from opd_fallback.store.readiness import check_with_central

                        check_with_central(the_store(), client, device_id=settings.device_id, actor="counter")
                        numbers_checked.append(True)
                return True
            except Exception:
                return False

        if background_sync if background_sync is not None else settings.background_sync:
            def sync_runner(progress: Callable[[int, int], None]) -> object:
                # same engine and lease as `opd-fallback sync`: a running CLI sync makes this one wait its turn
                from opd_fallback.sync.engine import sync_once

                with make_client() as client:
                    return sync_once(the_store(), client, settings, progress)

    share_runner = None
    if settings.hub_url and settings.hub_token:
        hub_clients: list[HubClient] = []  # one keep-alive pool, used by one worker at a time, made on first use
        saved = threading.Event()  # a save sets it (store/shared.py on_new_ops): shared at once, not at a poll

        def share_runner() -> object:
            from opd_fallback.application.share import share_once
            from opd_fallback.store.shared import on_new_ops
            from opd_fallback.sync.hub_client import HubClient

            if not hub_clients:
                hub_clients.append(HubClient.from_settings(settings))
                on_new_ops(the_store(), saved.set)
            else:  # in the share worker's thread: the next exchange after the interval or a save, sooner
                saved.wait(settings.hub_interval_s)
            saved.clear()
            return share_once(the_store(), hub_clients[0], settings.device_id)

        app_kwargs.setdefault("share_interval_s", 0.05)  # the worker is started again soon; it waits itself

    app = CounterApp(
        None,
        None,
        loader=load,
        hospital=settings.hospital or settings.device_id,
        device_id=settings.device_id,
        lang=settings.language,
        desk=settings.desk,
        idle_lock_s=float(settings.idle_lock_seconds),
        probe=probe,
        sync_runner=sync_runner,
        share_runner=share_runner,
        **app_kwargs,
    )
    app.db_path = settings.db_path
    if tls_warning(settings):  # said on every screen, and once in words at start
        app.status.insecure_tls = True
        app.startup_warnings.append(tls_warning(settings) or "")
    return app

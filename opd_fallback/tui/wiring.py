"""Build the counter app from the counter's settings: store, backend,
printer, the central probe and the background sync. Kept apart from
``app.py`` so tests build the app from parts and the CLI from config.

``opd-fallback counter`` starts from :class:`datadir.CounterStart` (what the
login screen needs, read without pydantic) through :func:`app_for_start`; the
full ``config.Settings`` are loaded behind the login screen, by the loader,
before anything (the store, the printer, the probe, sync, the hub) uses them.
``app_from_settings`` is the same app from settings already loaded.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypedDict, Unpack

from opd_fallback.datadir import CounterStart
from opd_fallback.tui.app import CounterApp

if TYPE_CHECKING:
    from opd_fallback.application.sidecar import Sidecar
    from opd_fallback.config import Settings
    from opd_fallback.printing import Printer
    from opd_fallback.printing.spool import Spool
    from opd_fallback.store.engine import Store
    from opd_fallback.sync.client import CentralClient
    from opd_fallback.tui.backend import StoreBackend


class AppOptions(TypedDict, total=False):
    """``CounterApp``'s keywords a caller may set beside the settings (tests: quicker intervals)."""

    status_interval_s: float
    share_interval_s: float


def start_of(settings: Settings) -> CounterStart:
    """What the login screen needs, from settings already loaded."""
    return CounterStart(data_dir=settings.data_dir, device_id=settings.device_id, hospital=settings.hospital,
                        language=settings.language, desk=settings.desk,
                        central=bool(settings.central_url and settings.central_token),
                        hub=bool(settings.hub_url and settings.hub_token),
                        idle_lock_seconds=settings.idle_lock_seconds, background_sync=settings.background_sync)


def app_from_settings(settings: Settings, *, background_sync: bool | None = None,
                      **app_kwargs: Unpack[AppOptions]) -> CounterApp:
    """The counter app for a set-up counter (``opd-fallback init`` done). The
    login screen shows first; the store, the backend and the printer are
    opened behind it in a worker (a PIN typed meanwhile waits for them)."""
    from opd_fallback.config import tls_warning

    app = app_for_start(start_of(settings), lambda: settings, background_sync=background_sync, **app_kwargs)
    if tls_warning(settings):  # said on every screen, and once in words at start
        app.status.insecure_tls = True
        app.startup_warnings.append(tls_warning(settings) or "")
    return app


def app_for_start(start: CounterStart, load_settings: Callable[[], Settings], *,
                  background_sync: bool | None = None, **app_kwargs: Unpack[AppOptions]) -> CounterApp:
    """The counter app from ``start``; ``load_settings`` gives the full settings
    (called once, in the loader's worker, behind the login screen: an error
    there ends the app with ``load_error``, said in one line by the command)."""
    loaded: list[Settings] = []
    loading = threading.Lock()
    opened: dict[str, Store] = {}
    opening = threading.Lock()

    def settings() -> Settings:
        """The full settings, loaded once (by the loader, behind the login screen)."""
        with loading:
            if not loaded:
                loaded.append(load_settings())
            return loaded[0]

    def the_store() -> Store:
        """The counter's store, opened once (by the loader, or by whoever needs it first)."""
        with opening:
            if "store" not in opened:
                from opd_fallback.store.engine import open_store

                opened["store"] = open_store(start.db_path)
            return opened["store"]

    def load() -> tuple[StoreBackend, Printer, Spool | None]:
        from opd_fallback.printing import make_printer
        from opd_fallback.printing.spool import Spool
        from opd_fallback.tui.backend import StoreBackend

        s = settings()  # before the store: a settings error is said before a database's
        store = the_store()
        backend = StoreBackend(store, device_id=s.device_id, hospital=s.hospital or s.device_id,
                               district=s.hospital_district, state=s.hospital_state)
        printer = make_printer(s.printer, data_dir=s.data_dir)
        return backend, printer, Spool(s.data_dir / "spool")

    def make_client() -> CentralClient:
        from opd_fallback.sync.client import CentralClient

        return CentralClient.from_settings(settings())

    sidecars: list[Sidecar] = []
    sidecar_lock = threading.Lock()

    def the_sidecar() -> Sidecar:
        """The background sync and share's child process (application/sidecar.py), made on first use."""
        with sidecar_lock:
            if not sidecars:
                from opd_fallback.application.sidecar import Sidecar

                sidecars.append(Sidecar(settings, start.db_path))
            return sidecars[0]

    def close_sidecar() -> None:
        with sidecar_lock:
            if sidecars:
                sidecars[0].close()

    probe = None
    sync_runner = None
    if start.central:
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

                        check_with_central(the_store(), client, device_id=start.device_id, actor="counter")
                        numbers_checked.append(True)
                return True
            except Exception:
                return False

        if background_sync if background_sync is not None else start.background_sync:
            def sync_runner(progress: Callable[[int, int], None]) -> object:
                # same engine and lease as `opd-fallback sync` (a running CLI sync makes this one wait its
                # turn), in the sidecar's process: its CPU work never holds this process's GIL
                return the_sidecar().sync(progress)

    share_runner = None
    if start.hub:
        watching: list[bool] = []  # the save hook is set once, by the first exchange
        saved = threading.Event()  # a save sets it (store/shared.py on_new_ops): shared at once, not at a poll

        def share_runner() -> object:
            from types import SimpleNamespace

            from opd_fallback.store.shared import on_new_ops

            if not watching:
                watching.append(True)
                on_new_ops(the_store(), saved.set)  # the saves are made in this process: the wake stays here
            else:  # in the share worker's thread: the next exchange after the interval or a save, sooner
                saved.wait(settings().hub_interval_s)
            saved.clear()
            return SimpleNamespace(**the_sidecar().share())  # share_once in the sidecar; its ShareResult

        app_kwargs.setdefault("share_interval_s", 0.05)  # the worker is started again soon; it waits itself

    app = CounterApp(
        None,
        None,
        loader=load,
        hospital=start.hospital or start.device_id,
        device_id=start.device_id,
        lang="hi" if start.language == "hi" else "en",
        desk=start.desk,
        idle_lock_s=float(start.idle_lock_seconds),
        probe=probe,
        sync_runner=sync_runner,
        share_runner=share_runner,
        **app_kwargs,
    )
    app.db_path = start.db_path
    app.on_exit.append(close_sidecar)
    app.sidecar = lambda: sidecars[0] if sidecars else None
    return app

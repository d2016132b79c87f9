"""The counter's Textual app and the factory the CLI and the tests share.

Everything slow (the store, PIN hashing, printing, the central probe, sync)
runs in thread workers; results come back to the event loop with
``call_from_thread``. Screens never touch the disk or the network themselves.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from textual import events
from textual.app import App
from textual.binding import Binding
from textual.dom import DOMNode
from textual.worker import Worker

from opd_fallback.domain.clock import now_ist
from opd_fallback.tui.i18n import Lang, tr
from opd_fallback.tui.state import Session, StatusModel
from opd_fallback.tui.workers import call_back, run_in_thread

if TYPE_CHECKING:  # printing (and the store behind the backend) load after the login screen shows
    from opd_fallback.printing import Document, Printer
    from opd_fallback.printing.spool import Spool
    from opd_fallback.tui.ports import CounterBackend, StatusInfo

T = TypeVar("T")
Probe = Callable[[], bool]
PROBE_WHILE_DOWN_S = 4.0  # with the status refresh every 5 s, central's return shows within 10 s
SyncRunner = Callable[[Callable[[int, int], None]], object]
Loader = Callable[[], "tuple[CounterBackend, Printer, Spool | None]"]


class CounterApp(App[None]):
    """The counter. ``backend`` does the work (see ``tui/backend.py``)."""

    CSS_PATH = "app.tcss"
    TITLE = "OPD counter"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [
        Binding("f9", "toggle_language", "हिंदी/English", id="language", priority=True),
        Binding("ctrl+q", "quit", "Quit", id="quit", priority=True),
        Binding("ctrl+t", "clock", "Clock", id="clock", priority=True),  # shown while the clock is wrong
    ]

    def __init__(
        self,
        backend: CounterBackend | None,
        printer: Printer | None,
        *,
        loader: Loader | None = None,
        hospital: str = "",
        device_id: str = "",
        spool: Spool | None = None,
        lang: Lang = "en",
        idle_lock_s: float = 300.0,
        probe: Probe | None = None,
        sync_runner: SyncRunner | None = None,
        status_interval_s: float = 5.0,
        clock: Callable[[], datetime] | None = None,
        share_runner: Callable[[], object] | None = None,
        share_interval_s: float = 0.5,
        desk: str = "all",
    ) -> None:
        super().__init__()
        self.desk = desk  # tui/desks.py: the home screen and the keys shown first
        self.backend: CounterBackend | None = backend  # None until the loader has run (see ``work``)
        self.printer = printer
        self.spool = spool
        self.lang: Lang = lang
        self.idle_lock_s = idle_lock_s
        self.probe = probe
        self.sync_runner = sync_runner
        self.status_interval_s = status_interval_s
        self._clock = clock
        self.session: Session | None = None
        # ``loader`` (the store, the backend, the printer) runs in a worker once
        # the login screen is up: the clerk sees it as soon as Textual can draw
        self._loader = loader
        self._when_ready: list[Callable[[], object]] = []
        self.load_error: BaseException | None = None
        self.db_path: Path | None = None  # the store's file, for the words of a failure before it opened
        self.status = StatusModel(hospital=backend.hospital if backend else hospital,
                                  device_id=backend.device_id if backend else device_id)
        self._last_activity = time.monotonic()
        self._next_probe = 0.0
        self._probe_backoff = 15.0
        self._syncing = False
        self.last_print_errors: list[str] = []
        self._installed: list[str] = []
        self._status_busy = False
        self._print_lock = threading.Lock()  # one document at a time reaches the printer
        self._storage_said: str | None = None
        self.startup_warnings: list[str] = []  # shown once when the counter opens (e.g. TLS checks off)
        # the LAN hub: one exchange at a time in a thread worker (push ours, pull the other counters')
        self.share_runner = share_runner
        self.share_interval_s = share_interval_s
        self._sharing = False
        self.prints_pending = 0  # print jobs handed to a worker and not finished yet
        self.on_exit: list[Callable[[], object]] = []  # called when the app closes (wiring: stop the sidecar)
        self.sidecar: Callable[[], object | None] = lambda: None  # wiring: the background sync's process, if started

    @property
    def work(self) -> CounterBackend:
        """The backend the screens call (``tui/ports.py``): open once the loader has
        run, which every screen after the login screen waits for (``when_ready``)."""
        assert self.backend is not None, "the store is not open yet"
        return self.backend

    # ----------------------------------------------------------------- time
    def now(self) -> datetime:
        return self._clock() if self._clock else now_ist()

    # ------------------------------------------------------------ lifecycle
    def on_mount(self) -> None:
        from opd_fallback.tui.screens.login import LoginScreen

        self.title = tr("app.title", self.lang)
        self.push_screen(LoginScreen())
        self.set_interval(self.status_interval_s, self.refresh_status)
        self.set_interval(1.0, self._check_idle)
        if self.share_runner is not None:
            self.set_interval(self.share_interval_s, self._share)
        if self.backend is None and self._loader is not None:
            # after the login screen's first paint: the loader's imports (SQLAlchemy, SQLCipher, argon2,
            # printing) hold the GIL for a good part of a second and would delay the paint they sit beside
            self.call_after_refresh(self._start_loader)
        else:
            self.refresh_status()
        for warning in self.startup_warnings:
            self.notify(warning, severity="warning", timeout=30)

    def on_unmount(self) -> None:
        for close in self.on_exit:
            close()

    def _start_loader(self) -> None:
        assert self._loader is not None
        self.run_blocking(self._loader, on_done=self._loaded, on_error=self._load_failed, group="load")

    def _loaded(self, parts: tuple[CounterBackend, Printer, Spool | None]) -> None:
        self.backend, self.printer, self.spool = parts
        waiting, self._when_ready = self._when_ready, []
        for cb in waiting:
            cb()
        self.refresh_status()

    def _load_failed(self, exc: BaseException) -> None:
        """The store could not be opened (a damaged database, a full disk...):
        close, and let the command say it in one line (``load_error``)."""
        self.load_error = exc
        self.exit(return_code=1)

    def when_ready(self, cb: Callable[[], object]) -> None:
        """Run ``cb`` now if the store is open, else as soon as it is (a fast login)."""
        if self.backend is not None:
            cb()
        else:
            self._when_ready.append(cb)

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, (events.Key, events.MouseDown)):
            self._last_activity = time.monotonic()
        await super().on_event(event)

    # ------------------------------------------------------------- workers
    def run_blocking(
        self,
        fn: Callable[..., T],
        *args: object,
        on_done: Callable[[T], None],
        on_error: Callable[[BaseException], None] | None = None,
        group: str = "blocking",
        exclusive: bool = False,
    ) -> Worker[None]:
        """Run ``fn(*args)`` in a thread; call back on the event loop."""
        return run_in_thread(self, fn, *args, on_done=on_done, on_error=on_error or self.show_error, group=group,
                      exclusive=exclusive)

    def _back(self, cb: Callable[[T], None], value: T) -> None:
        call_back(self, cb, value)

    def show_error(self, exc: BaseException) -> None:
        """A failed lookup or load (saves have their own handler): not "NOT SAVED"."""
        self.notify(tr("common.failed", self.lang, err=str(exc)), severity="error", timeout=10)

    # ------------------------------------------------------------ printing
    def print_docs(self, docs: list[Document], *, on_done: Callable[[list[str]], None] | None = None) -> None:
        """Spool and print in a worker; a failure is shown, the record stays saved."""

        self.prints_pending += 1

        def done(errors: list[str]) -> None:
            self.prints_pending -= 1
            self.last_print_errors = errors
            if errors:
                self.notify(tr("print.failed", self.lang, err="; ".join(errors)), severity="error", timeout=15)
            if on_done is not None:
                on_done(errors)

        def job() -> list[str]:
            from opd_fallback.printing.spool import print_with_spool

            assert self.printer is not None  # printing starts after login, when the loader has run
            with self._print_lock:
                return print_with_spool(self.printer, self.spool, docs)

        def crashed(exc: BaseException) -> None:
            # the record is saved: never say "NOT SAVED" for a printing problem
            done([f"{exc.__class__.__name__}: {exc}"])

        self.run_blocking(job, on_done=done, on_error=crashed, group="print")

    # ----------------------------------------------------------------- quit
    def unsaved_work(self) -> list[str]:
        """What quitting now would lose (i18n keys): a half-filled form, a pending print."""
        reasons = []
        screens = [self.get_screen(n) for n in self._installed if self.is_screen_installed(n)]
        if any(getattr(sc, "has_unsaved", lambda: False)() for sc in screens):
            reasons.append("quit.form")
        if self.prints_pending:
            reasons.append("quit.print")
        return reasons

    async def action_quit(self) -> None:
        """ctrl+q: ask first when something would be lost; a second ctrl+q in the question quits."""
        from opd_fallback.tui.screens.confirm import ConfirmQuit

        reasons = self.unsaved_work()
        if not reasons or isinstance(self.screen, ConfirmQuit):
            self.exit()
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.exit()

        self.push_screen(ConfirmQuit(reasons), answered)

    # -------------------------------------------------------------- session
    def login(self, session: Session) -> None:
        from opd_fallback.tui.screens.home import HomeScreen

        self.session = session
        self.status.operator = session.operator_id
        self._last_activity = time.monotonic()
        self.switch_screen(HomeScreen())
        from opd_fallback.tui import desks
        from opd_fallback.tui.screens import flow_names

        flow = desks.home_flow(self.desk, flow_names())
        if flow is not None:  # the desk's own screen, over the home menu (Esc goes there)
            self.call_later(self.open_flow, flow)

    def logout(self) -> None:
        from opd_fallback.tui.screens.login import LoginScreen

        self.session = None
        self.status.operator = None
        while len(self.screen_stack) > 2:
            self.pop_screen()
        self.switch_screen(LoginScreen())
        for name in self._installed:
            self.call_later(self.uninstall_screen, name)
        self._installed = []

    @property
    def locked(self) -> bool:
        from opd_fallback.tui.screens.lock import LockScreen

        return isinstance(self.screen, LockScreen)

    def action_lock(self) -> None:
        from opd_fallback.tui.screens.lock import LockScreen
        from opd_fallback.tui.screens.login import LoginScreen

        if self.session is None or self.locked or isinstance(self.screen, LoginScreen):
            return
        self.push_screen(LockScreen())

    def _check_idle(self) -> None:
        if self.session is not None and time.monotonic() - self._last_activity >= self.idle_lock_s:
            self.action_lock()

    # ----------------------------------------------------------- navigation
    async def open_flow(self, name: str) -> None:
        """Open a work screen from home or from another work screen. Returns
        once the screen is up and its first field focused, so keys the clerk
        typed straight after the F-key land in that field, not nowhere."""
        from opd_fallback.tui.screens import FLOWS
        from opd_fallback.tui.screens.home import HomeScreen
        from opd_fallback.tui.typeahead import after_queued_keys

        if self.session is None or self.locked:
            return
        # Flow screens are installed once per login and kept, so a half-filled
        # form survives a trip to another flow and back.
        if not self.is_screen_installed(name):
            self.install_screen(FLOWS[name](), name=name)
            self._installed.append(name)
        screen = self.get_screen(name)
        if self.screen is screen:
            return
        if isinstance(self.screen, HomeScreen):
            await self.push_screen(name)
        else:
            await self.switch_screen(name)
        await after_queued_keys(screen)  # its on_mount / on_screen_resume (focus) has run

    async def open_review(self) -> None:
        """The review of flagged ops: it asks for a supervisor's PIN itself,
        every time it is opened, whoever is logged in."""
        from opd_fallback.tui.screens.review import ReviewScreen
        from opd_fallback.tui.typeahead import after_queued_keys

        if self.session is None or self.locked or isinstance(self.screen, ReviewScreen):
            return
        me = self.session.operator_id if self.session.is_supervisor else None
        screen = ReviewScreen(self.work.review(), me)
        await self.push_screen(screen)
        await after_queued_keys(screen)  # the PIN gate has the cursor before the next key

    async def action_clock(self) -> None:
        """ctrl+t: the PC's time beside the hub's or central's, and a supervisor's
        confirmation of the date (``opd-fallback clock confirm`` at the counter)."""
        from opd_fallback.tui.screens.clock import ClockScreen

        if self.session is None or self.locked or self.backend is None or isinstance(self.screen, ClockScreen):
            return
        await self.push_screen(ClockScreen())

    def go_home(self) -> None:
        from opd_fallback.tui.screens.home import HomeScreen

        if not isinstance(self.screen, HomeScreen) and len(self.screen_stack) > 2:
            self.pop_screen()

    # ------------------------------------------------------------- language
    def _screens(self) -> list[DOMNode]:
        """Every screen: the stack, and the open forms installed but not on it."""
        screens: list[DOMNode] = list(self.screen_stack)
        for name in self._installed:
            if self.is_screen_installed(name) and self.get_screen(name) not in screens:
                screens.append(self.get_screen(name))
        return screens

    def action_toggle_language(self) -> None:
        self.lang = "hi" if self.lang == "en" else "en"
        self.title = tr("app.title", self.lang)
        for screen in self._screens():
            self.retranslate(screen)
        self.notify(tr("lang.switched", self.lang), timeout=2)

    def retranslate(self, screen: DOMNode) -> None:
        for widget in screen.query("*"):
            fn = getattr(widget, "retranslate", None)
            if callable(fn):
                fn()
        fn = getattr(screen, "retranslate", None)
        if callable(fn):
            fn()

    # --------------------------------------------------------------- status
    def refresh_status(self) -> None:
        """Kick the status worker (store counts, a gentle probe, maybe sync);
        never more than one at a time, however slow the network is."""
        if self.backend is None:
            return
        if self._status_busy:
            self._status_again = True  # a save happened meanwhile: count again when this one is back
            return
        self._status_busy = True
        self._status_again = False

        def failed(exc: BaseException) -> None:
            from opd_fallback.tui.values import StorageProblem

            self._status_busy = False
            if isinstance(exc, StorageProblem) and exc.kind != self._storage_said:
                self._storage_said = exc.kind  # a damaged database or a lost disk: say it once, in words
                self.notify(str(exc), severity="error", timeout=60)

        self.run_blocking(self._collect_status, on_done=self._apply_status, on_error=failed, group="status")

    def _collect_status(self) -> StatusInfo:
        info = self.work.status()
        if self.probe is not None and time.monotonic() >= self._next_probe:
            try:
                online = bool(self.probe())
            except Exception:
                online = False
            # gentle while online (every 30 s); while down, every few seconds, so central's
            # return shows (and the queue starts to drain) within 10 s: one small GET each
            self._probe_backoff = 30.0 if online else PROBE_WHILE_DOWN_S
            self._next_probe = time.monotonic() + self._probe_backoff
            info["central"] = online
            info["probed"] = True
        return info

    _status_again = False
    _clock_hint = False

    def _apply_status(self, info: StatusInfo) -> None:
        self._status_busy = False
        if self._status_again:
            self.call_later(self.refresh_status)
        for key, value in info.items():
            if hasattr(self.status, key):
                setattr(self.status, key, value)
        if self.probe is None:
            self.status.central = None
        if self.status.clock_wrong != self._clock_hint:  # the key hints say ^T while the clock waits for a supervisor
            self._clock_hint = self.status.clock_wrong
            from opd_fallback.tui.widgets.tlabel import KeysLabel

            for screen in self._screens():
                for keys in screen.query(KeysLabel):
                    keys.retranslate()
        if self.status.central and self.sync_runner is not None and not self._syncing and self.status.ops_waiting:
            self._start_sync()

    def _start_sync(self) -> None:
        self._syncing = True
        self.status.sync_progress = (0, self.status.ops_waiting)

        def progress(done: int, total: int) -> None:
            self._back(self._set_progress, (done, total))

        def finished(_: object) -> None:
            self._syncing = False
            self.status.sync_progress = None
            self.refresh_status()

        def failed(exc: BaseException) -> None:
            self._syncing = False
            self.status.sync_progress = None
            self.status.last_sync = f"failed: {exc}"[:40]

        assert self.sync_runner is not None
        self.run_blocking(self.sync_runner, progress, on_done=finished, on_error=failed, group="sync", exclusive=True)

    def _set_progress(self, value: tuple[int, int]) -> None:
        self.status.sync_progress = value

    def _share(self) -> None:
        """Kick one exchange with the LAN hub in a thread worker (never on the event loop)."""
        if self._sharing or self.share_runner is None or self.backend is None:
            return
        self._sharing = True

        def done(result: object) -> None:
            self._sharing = False
            self.status.hub = getattr(result, "outcome", None) in ("ok", "refused")
            self.status.hub_records = int(getattr(result, "records_here", self.status.hub_records) or 0)
            self.status.hub_refused = int(getattr(result, "refused", 0) or 0)
            if getattr(result, "hub_went_back", None):
                self.status.hub_went_back = self.now().strftime("%H:%M")

        def failed(_: BaseException) -> None:
            self._sharing = False
            self.status.hub = False

        self.run_blocking(self.share_runner, on_done=done, on_error=failed, group="share", exclusive=True)


def create_app(
    backend: CounterBackend,
    *,
    printer: Printer | None = None,
    print_dir: Path | None = None,
    spool_dir: Path | None = None,
    **options: Any,
) -> CounterApp:
    """Build the counter app. ``backend`` is a ``tui.backend.StoreBackend``
    (or anything with the same methods); ``printer`` defaults to a file
    printer in ``print_dir``; the spool lives in ``spool_dir``. ``options``
    are ``CounterApp``'s own keywords (lang, idle_lock_s, probe, ...)."""
    from opd_fallback.printing.spool import Spool

    if printer is None:
        from opd_fallback.printing.file import FilePrinter

        printer = FilePrinter(print_dir or Path.cwd() / "prints")
    spool = Spool(spool_dir) if spool_dir is not None else None
    return CounterApp(backend, printer, spool=spool, **options)

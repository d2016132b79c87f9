"""ctrl+t: the clock's confirmation at the counter, what ``opd-fallback clock
confirm`` does at the command line.

When this PC's clock is more than 5 minutes off the LAN hub's or central's
(application/clock.py), the status bar says CLOCK WRONG, the key hints show
^T, and saving is refused until a supervisor confirms the date. This screen
shows the PC's date and time beside the hub's (or central's: this PC's time
plus the last measured offset), and takes a supervisor's ID and PIN; the
confirmation is the same application call as the CLI's (PIN checked, wrong
PINs counted, audited ``clock.confirmed``), in a thread worker. Esc goes back
with nothing changed; a half-filled form under it stays as it was.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from opd_fallback.tui.i18n import tr
from opd_fallback.tui.screens.base import CounterAppAccess
from opd_fallback.tui.typeahead import after_queued_keys
from opd_fallback.tui.widgets.tlabel import TLabel

if TYPE_CHECKING:
    from opd_fallback.tui.values import ClockReport

_SHOWN = "%d-%m-%Y %H:%M"


class ClockScreen(CounterAppAccess, ModalScreen[bool]):
    DEFAULT_CSS = """
    ClockScreen { align: center middle; }
    ClockScreen > #clock-box { width: 76; max-width: 100%; height: auto; max-height: 100%;
                               border: thick $error; background: $surface; padding: 0 1; }
    ClockScreen #clock-times { text-style: bold; }
    ClockScreen Input { width: 30; }
    """
    BINDINGS = [
        Binding("enter", "enter_key", "Next", id="clock.next", show=False, priority=True),
        Binding("escape", "back", "Back", id="clock.back"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.report: ClockReport | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="clock-box"):
            yield TLabel("clock.title", classes="title")
            yield Static("", id="clock-times")
            yield Static("", id="clock-why")
            yield TLabel("clock.ask", classes="muted")
            yield TLabel("field.supervisor")
            yield Input(id="clock-sup", max_length=64)
            yield TLabel("login.pin")
            yield Input(id="clock-pin", password=True, max_length=8)
            yield Static("", id="clock-msg", classes="error")
            yield TLabel("clock.keys", classes="keys")

    def on_mount(self) -> None:
        self.set_focus(self.query_one("#clock-sup", Input))
        self.set_interval(1.0, self.retranslate)  # the PC's time, as it goes
        app = self.counter
        app.run_blocking(app.work.clock_report, on_done=self._got_report, group="clock")

    def _got_report(self, report: ClockReport) -> None:
        self.report = report
        self.retranslate()

    def retranslate(self) -> None:
        """The PC's time and the hub's or central's, in the counter's language (F9 too)."""
        lang, rep, now = self.lang, self.report, self.counter.now()
        lines = [tr("clock.pc", lang, time=now.strftime(_SHOWN))]
        why = ""
        if rep is not None and rep.offset_s is not None:
            theirs = (now + timedelta(seconds=rep.offset_s)).strftime(_SHOWN)
            lines.append(tr("clock.central" if rep.source == "central" else "clock.hub", lang, time=theirs))
            if not rep.off:
                why = tr("clock.ok", lang)
            elif rep.confirmed_by:
                why = tr("clock.already", lang, sup=rep.confirmed_by)
            else:
                why = rep.message.split(":")[0] if lang == "en" else tr("clock.off", lang)
        elif rep is not None:
            why = tr("clock.none", lang)
        self.query_one("#clock-times", Static).update("\n".join(lines))
        self.query_one("#clock-why", Static).update(why)

    async def action_enter_key(self) -> None:
        """In the key's own turn (see tui/typeahead.py): a PIN typed ahead lands in the PIN field."""
        focused = self.app.focused
        if focused is not None:
            await after_queued_keys(focused)
        if focused is self.query_one("#clock-sup", Input):
            self.set_focus(self.query_one("#clock-pin", Input))
        else:
            self._submit()

    def _say(self, text: str) -> None:
        self.query_one("#clock-msg", Static).update(text)

    def _submit(self) -> None:
        sup = self.query_one("#clock-sup", Input)
        pin = self.query_one("#clock-pin", Input)
        supervisor, secret = sup.value.strip(), pin.value
        pin.value = ""  # the PIN leaves the screen at once
        if not supervisor:
            self._say(tr("clock.need_id", self.lang))
            sup.focus()
            return
        self._say(tr("login.checking", self.lang))
        app = self.counter
        app.run_blocking(app.work.confirm_clock, supervisor, secret, on_done=self._confirmed,
                         on_error=self._refused, group="clock", exclusive=True)

    def _refused(self, exc: BaseException) -> None:
        from opd_fallback.tui.screens.login import refusal_text
        from opd_fallback.tui.values import PinRefused

        self.query_one("#clock-pin", Input).focus()
        if isinstance(exc, PinRefused):
            self._say(refusal_text(exc, self.lang))
        else:
            self._say(tr("common.failed", self.lang, err=str(exc)))

    def _confirmed(self, report: ClockReport) -> None:
        app = self.counter
        if report.off:
            app.notify(tr("clock.done", self.lang, sup=report.confirmed_by or ""), timeout=10)
        else:
            app.notify(tr("clock.ok", self.lang), timeout=5)
        app.refresh_status()  # the status bar and the hints at once, not at the next tick
        self.dismiss(True)

    def action_back(self) -> None:
        self.query_one("#clock-pin", Input).value = ""
        self.dismiss(False)

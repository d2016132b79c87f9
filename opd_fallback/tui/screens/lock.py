"""The lock screen: idle time or ctrl+l. The same operator's PIN unlocks and
returns to exactly where they were; F2 logs in as someone else."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Center, Vertical
from textual.screen import Screen
from textual.widgets import Input, Static

from opd_fallback.tui.i18n import tr
from opd_fallback.tui.screens.base import CounterAppAccess, bottom_bar
from opd_fallback.tui.state import Session
from opd_fallback.tui.widgets.tlabel import TLabel


class LockScreen(CounterAppAccess, Screen[None]):
    BINDINGS = [Binding("f2", "switch_operator", "Switch operator", id="lock.switch")]

    def compose(self) -> ComposeResult:
        session: Session | None = self.counter.session
        op = f"{session.name} ({session.operator_id})" if session else ""
        with Center():
            with Vertical(id="lock-box", classes="box"):
                yield TLabel("lock.title", classes="title")
                yield TLabel("lock.hint", fmt={"op": op}, id="lock-hint")
                yield TLabel("login.pin")
                yield Input(id="unlock-pin", password=True, max_length=8)
                yield Static("", id="lock-msg", classes="error")
        yield from bottom_bar("keys.lock")

    def on_mount(self) -> None:
        self.query_one("#unlock-pin", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        session: Session | None = self.counter.session
        if session is None:
            return
        pin = event.value
        event.input.value = ""
        app = self.counter
        app.run_blocking(
            app.work.verify_operator, session.operator_id, pin, "unlock",
            on_done=self._checked, on_error=self._refused, group="login",
        )

    def _refused(self, exc: BaseException) -> None:
        from opd_fallback.tui.screens.login import refusal_text
        from opd_fallback.tui.values import PinRefused

        lang = self.counter.lang
        text = refusal_text(exc, lang) if isinstance(exc, PinRefused) else tr("login.failed", lang)
        if not isinstance(exc, PinRefused):
            self.counter.show_error(exc)
        self.query_one("#lock-msg", Static).update(text)

    def _checked(self, session: Session | None) -> None:
        if session is None:
            self.query_one("#lock-msg", Static).update(tr("login.failed", self.counter.lang))
            return
        self.app.pop_screen()

    def action_switch_operator(self) -> None:
        self.counter.logout()

"""Login: operator id and PIN. The PIN check (a slow hash) runs in a worker."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Center, Vertical
from textual.screen import Screen
from textual.widgets import Input, Static

from opd_fallback.domain.clock import duration_words
from opd_fallback.tui.i18n import Lang, tr
from opd_fallback.tui.screens.base import CounterAppAccess, bottom_bar
from opd_fallback.tui.state import Session
from opd_fallback.tui.typeahead import after_queued_keys
from opd_fallback.tui.widgets.parsers import pin as pin_shape
from opd_fallback.tui.widgets.tlabel import TLabel

if TYPE_CHECKING:  # the store (SQLAlchemy) loads behind the login screen
    from opd_fallback.tui.values import PinRefused


class LoginScreen(CounterAppAccess, Screen[None]):
    BINDINGS = [
        Binding("f10", "submit", "Log in", id="login.submit"),
        Binding("enter", "enter_key", "Next", id="login.next", show=False, priority=True),
    ]

    def compose(self) -> ComposeResult:
        with Center(id="login-box-wrap"):
            with Vertical(id="login-box", classes="box"):
                yield TLabel("login.title", classes="title")
                yield TLabel("login.operator")
                yield Input(id="operator", max_length=64)
                yield TLabel("login.pin")
                yield Input(id="pin", password=True, max_length=8)
                yield Static("", id="login-msg", classes="error")
        yield from bottom_bar("keys.form")

    def on_mount(self) -> None:
        self.query_one("#operator", Input).focus()

    async def action_enter_key(self) -> None:
        """In the key's own turn (see tui/typeahead.py), so a PIN typed ahead
        lands in the PIN field."""
        focused = self.app.focused
        if focused is not None:
            await after_queued_keys(focused)
        if focused is self.query_one("#operator", Input):
            self.app.set_focus(self.query_one("#pin", Input))
        else:
            self.action_submit()

    def _say(self, key: str, error: bool = True) -> None:
        msg = self.query_one("#login-msg", Static)
        msg.update(tr(key, self.counter.lang))
        msg.set_class(error, "error")

    def action_submit(self) -> None:
        op_id = self.query_one("#operator", Input).value.strip()
        pin_in = self.query_one("#pin", Input)
        if not op_id:
            self._say("login.need_id")
            self.query_one("#operator", Input).focus()
            return
        try:
            pin_shape(pin_in.value)
        except ValueError:
            self._say("login.pin_format")
            pin_in.focus()
            return
        self._say("login.checking", error=False)
        app = self.counter
        pin = pin_in.value
        app.when_ready(lambda: app.run_blocking(
            app.work.verify_operator, op_id, pin, on_done=self._checked, on_error=self._refused,
            group="login",
        ))

    def _refused(self, exc: BaseException) -> None:
        """A wrong PIN or a locked ID: the sentence says which, and how long to wait."""
        pin_in = self.query_one("#pin", Input)
        pin_in.value = ""
        pin_in.focus()
        from opd_fallback.tui.values import PinRefused  # loaded by then (the check ran in the store)

        if not isinstance(exc, PinRefused):
            self.counter.show_error(exc)
            self._say("login.failed")
            return
        msg = self.query_one("#login-msg", Static)
        msg.update(refusal_text(exc, self.counter.lang))
        msg.set_class(True, "error")

    def _checked(self, session: Session | None) -> None:
        pin_in = self.query_one("#pin", Input)
        pin_in.value = ""
        if session is None:
            self._say("login.failed")
            pin_in.focus()
            return
        self.counter.login(session)


def refusal_text(exc: PinRefused, lang: Lang) -> str:
    """The sentence for a refused PIN in the counter's language (English: the
    store's own sentence, with tries left or the time to wait)."""
    if lang == "en":
        return exc.sentence
    if exc.code == "pin_locked":
        return tr("login.locked", lang, wait=duration_words(exc.locked_for_s))
    return tr("login.failed", lang)

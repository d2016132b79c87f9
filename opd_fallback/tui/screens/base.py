"""The base of every work screen: the status bar, the key hints, and the
F-keys that move between flows."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.dom import DOMNode
from textual.screen import Screen

from opd_fallback.tui.i18n import Lang, lang_of
from opd_fallback.tui.widgets.status_bar import StatusBar
from opd_fallback.tui.widgets.tlabel import KeysLabel

# Priority: the F-key is handled in the app's own turn and the next keys wait
# until the new screen has its cursor (see ``CounterApp.open_flow``).
if TYPE_CHECKING:
    from opd_fallback.tui.app import CounterApp
    from opd_fallback.tui.state import Session


class CounterAppAccess:
    """The counter app and its language, typed, for screens (Textual types ``self.app`` as any App)."""

    @property
    def counter(self) -> CounterApp:
        screen = cast(DOMNode, self)  # a mixin: the Screen it is mixed into supplies ``app``
        return cast("CounterApp", screen.app)

    @property
    def lang(self) -> Lang:
        return lang_of(cast(DOMNode, self).app)

    @property
    def who(self) -> Session:
        """The logged-in operator: a save checks ``counter.session`` first, then takes this."""
        session = self.counter.session
        assert session is not None, "not logged in"
        return session


NAV_BINDINGS: list[Binding | tuple[str, str] | tuple[str, str, str]] = [
    Binding("f2", "flow('register')", "New", id="flow.register", priority=True),
    Binding("f3", "flow('revisit')", "Revisit", id="flow.revisit", priority=True),
    Binding("f4", "flow('lab')", "Lab", id="flow.lab", priority=True),
    Binding("f5", "flow('void')", "Void", id="flow.void", priority=True),
    Binding("f6", "flow('reprint')", "Reprint", id="flow.reprint", priority=True),
    Binding("f7", "flow('queue')", "Queue", id="flow.queue", priority=True),
    Binding("f8", "flow('cash')", "Cash", id="flow.cash", priority=True),
    Binding("f11", "review", "Review", id="flow.review", priority=True),
    Binding("f1", "flow('collect')", "Collect", id="flow.collect", priority=True),
    Binding("f12", "flow('billing')", "Billing", id="flow.billing", priority=True),
    Binding("ctrl+l", "lock", "Lock", id="lock", priority=True),
    Binding("escape", "home", "Back", id="home"),
]


def bottom_bar(hints: str) -> ComposeResult:
    """Key hints above the status bar, both pinned to the bottom."""
    with Vertical(classes="bottom"):
        yield KeysLabel(hints, classes="keys", id="keys")
        yield StatusBar(id="status")


class CounterScreen(CounterAppAccess, Screen[None]):
    """Subclasses yield their body from ``body()``; hints key from ``HINTS``."""

    BINDINGS = NAV_BINDINGS
    HINTS = "keys.form"

    def compose(self) -> ComposeResult:
        yield from self.body()
        yield from bottom_bar(self.HINTS)

    def body(self) -> ComposeResult:
        yield from ()

    async def action_flow(self, name: str) -> None:
        await self.counter.open_flow(name)

    async def action_review(self) -> None:
        await self.counter.open_review()

    def action_lock(self) -> None:
        self.counter.action_lock()

    def action_home(self) -> None:
        self.counter.go_home()


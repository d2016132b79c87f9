"""Home: the menu of flows, each one F-key away, the desk's own first
(``tui/desks.py``). A desk with a screen of its own (billing, registration)
opens it right after login; Esc comes back here."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical

from opd_fallback.tui import desks
from opd_fallback.tui.i18n import lang_of, tr
from opd_fallback.tui.screens.base import CounterScreen
from opd_fallback.tui.widgets.status_bar import StatusBar
from opd_fallback.tui.widgets.tlabel import KeysLabel, TLabel, clock_pair, wrap_pairs


def _flows() -> set[str]:
    from opd_fallback.tui.screens import flow_names

    return flow_names()


class DeskKeys(KeysLabel):
    """The key hints of the home menu, in the desk's order."""

    def __init__(self, desk: str, *, classes: str | None = None, id: str | None = None) -> None:
        super().__init__("", classes=classes, id=id)
        self.desk = desk

    def retranslate(self) -> None:
        lang = lang_of(self.app)
        keys = {name: key for name, _flow, key in desks.MENU}
        pairs = [f"{keys[name]} {tr('hint.' + name, lang)}" for name in desks.menu(self.desk, _flows())
                 if name in keys]
        pairs += [tr("hint.lang", lang), tr("hint.lock", lang), tr("hint.quit", lang), *clock_pair(self.app, lang)]
        text = "  ".join(pairs)
        width = self.content_size.width or self.size.width
        self.update(wrap_pairs(text, width) if width > 0 else text)


class HomeScreen(CounterScreen):
    HINTS = "keys.home"

    def __init__(self) -> None:
        super().__init__()
        self.desk = "all"

    def compose(self) -> ComposeResult:
        self.desk = getattr(self.app, "desk", "all") or "all"
        yield from self.body()
        with Vertical(classes="bottom"):
            yield DeskKeys(self.desk, classes="keys", id="keys")
            yield StatusBar(id="status")

    def body(self) -> ComposeResult:
        with Vertical(id="home-menu", classes="box"):
            yield TLabel("home.title", classes="title")
            if self.desk != "all":
                yield TLabel("home.desk", fmt={"desk": tr("desk." + self.desk, "en")}, classes="muted", id="desk")
            for key in desks.menu(self.desk, _flows()):
                yield TLabel(f"home.{key}", classes="menu-item")

    def retranslate(self) -> None:
        if self.desk != "all":
            self.query_one("#desk", TLabel).set_key("home.desk", desk=tr("desk." + self.desk, self.lang))

    def action_home(self) -> None:
        return None

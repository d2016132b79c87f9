"""Home: the menu of flows, each one F-key away."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical

from opd_fallback.tui.screens.base import CounterScreen
from opd_fallback.tui.widgets.tlabel import TLabel


class HomeScreen(CounterScreen):
    HINTS = "keys.home"

    def body(self) -> ComposeResult:
        with Vertical(id="home-menu", classes="box"):
            yield TLabel("home.title", classes="title")
            for key in ("new", "revisit", "lab", "void", "reprint", "queue", "cash", "review", "collect"):
                yield TLabel(f"home.{key}", classes="menu-item")

    def action_home(self) -> None:
        return None

"""Ask before something would be lost: quitting with a half-filled form or a
print still on its way, or Esc on a half-filled form (``ConfirmDiscard``; an
empty form leaves at once, without a question). ``y`` goes ahead; ``n`` or Esc
goes back to work, with everything typed still there."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from opd_fallback.tui.i18n import lang_of, tr
from opd_fallback.tui.widgets.tlabel import TLabel


class ConfirmQuit(ModalScreen[bool]):
    DEFAULT_CSS = """
    ConfirmQuit { align: center middle; }
    ConfirmQuit > #confirm-box { width: 70; max-width: 100%; height: auto; border: thick $error; padding: 0 1;
                                 background: $surface; }
    """
    BINDINGS = [
        Binding("y", "answer(True)", "Quit", id="confirm.yes"),
        Binding("n", "answer(False)", "Stay", id="confirm.no"),
        Binding("escape", "answer(False)", "Stay", id="confirm.back"),
    ]

    def __init__(self, reasons: list[str]) -> None:
        super().__init__()
        self.reasons = reasons  # i18n keys

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box"):
            yield TLabel("quit.title", classes="title")
            yield Static("", id="confirm-reasons")
            yield TLabel("quit.keys", classes="keys")

    def on_mount(self) -> None:
        self.retranslate()

    def retranslate(self) -> None:
        lang = lang_of(self.app)
        self.query_one("#confirm-reasons", Static).update("\n".join("• " + tr(r, lang) for r in self.reasons))

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class ConfirmDiscard(ModalScreen[bool]):
    """Esc on a half-filled form: "Discard this form? y/n"."""

    DEFAULT_CSS = """
    ConfirmDiscard { align: center middle; }
    ConfirmDiscard > #discard-box { width: 60; max-width: 100%; height: auto; border: thick $warning; padding: 0 1;
                                    background: $surface; }
    """
    BINDINGS = [
        Binding("y", "answer(True)", "Discard", id="discard.yes"),
        Binding("n", "answer(False)", "Keep", id="discard.no"),
        Binding("escape", "answer(False)", "Keep", id="discard.back"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(id="discard-box"):
            yield TLabel("discard.title", classes="title")
            yield TLabel("discard.keys", classes="keys")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)

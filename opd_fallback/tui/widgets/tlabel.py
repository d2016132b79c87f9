"""A label that knows its i18n key and re-renders when the language changes."""

from __future__ import annotations

from typing import Any

from textual.widgets import Static

from opd_fallback.tui.i18n import lang_of, tr


class TLabel(Static):
    """``TLabel("reg.title")``; ``retranslate`` is called by the app on F9."""

    def __init__(self, key: str, *, fmt: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self.key = key
        self.fmt = fmt or {}
        super().__init__("", **kwargs)

    def on_mount(self) -> None:
        self.retranslate()

    def set_key(self, key: str, **fmt: Any) -> None:
        self.key, self.fmt = key, fmt
        self.retranslate()

    def retranslate(self) -> None:
        lang = lang_of(self.app)
        self.update(tr(self.key, lang, **self.fmt) if self.key else "")

"""A label that knows its i18n key and re-renders when the language changes."""

from __future__ import annotations

from rich.cells import cell_len
from textual.widgets import Static

from opd_fallback.tui.i18n import Lang, lang_of, tr


class TLabel(Static):
    """``TLabel("reg.title")``; ``retranslate`` is called by the app on F9."""

    def __init__(self, key: str, *, fmt: dict[str, object] | None = None, classes: str | None = None,
                 id: str | None = None) -> None:
        self.key = key
        self.fmt = fmt or {}
        super().__init__("", classes=classes, id=id)

    def on_mount(self) -> None:
        self.retranslate()

    def set_key(self, key: str, **fmt: object) -> None:
        self.key, self.fmt = key, fmt
        self.retranslate()

    def retranslate(self) -> None:
        lang = lang_of(self.app)
        self.update(tr(self.key, lang, **self.fmt) if self.key else "")


def pad(text: str, width: int) -> str:
    """``text`` cut or padded to ``width`` terminal cells (``cell_len``, not
    ``len``), so columns line up with Devanagari and other wide or combining text."""
    from rich.cells import set_cell_size

    return set_cell_size(text, width)


def wrap_pairs(line: str, width: int) -> str:
    """Key hints ("F2 New  F3 Revisit  ...", pairs two spaces apart) broken into
    lines of at most ``width`` cells, as the terminal counts them (``cell_len``),
    never between a key and its word."""
    pairs = [p for p in line.split("  ") if p.strip()]
    lines: list[str] = []
    for pair in pairs:
        if lines and cell_len(lines[-1]) + 2 + cell_len(pair) <= width:
            lines[-1] += "  " + pair
        else:
            lines.append(pair)
    return "\n".join(lines)


def clock_pair(app: object, lang: Lang) -> list[str]:
    """The hint for ctrl+t while the PC's clock waits for a supervisor (logged in only)."""
    wrong = getattr(getattr(app, "status", None), "clock_wrong", False)
    return [tr("hint.clock", lang)] if wrong and getattr(app, "session", None) is not None else []


class KeysLabel(TLabel):
    """The key hints line: wraps between pairs so every key stays in sight at 80 columns."""

    def retranslate(self) -> None:
        lang = lang_of(self.app)
        text = "  ".join([tr(self.key, lang, **self.fmt), *clock_pair(self.app, lang)]) if self.key else ""
        width = self.content_size.width or self.size.width
        self.update(wrap_pairs(text, width) if width > 0 else text)

    def on_resize(self) -> None:
        self.retranslate()

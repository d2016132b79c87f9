"""One labelled input with its inline error, validated as the clerk moves on.

Layout: label, input and hint on one row; the error, when there is one, on
its own line below, across the whole width and wrapped, so its full text is
seen even at 80 columns.

The parser is a domain rule (``rules.mobile`` and friends): it returns the
canonical value or raises ``ValueError`` with the clerk's sentence, which is
shown under the field in the current language.
"""

from __future__ import annotations

from collections.abc import Callable

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.suggester import Suggester
from textual.widgets import Input, Static

from opd_fallback.tui.i18n import Lang, field_label, lang_of, message, tr
from opd_fallback.tui.widgets.tlabel import TLabel

Parser = Callable[[str], object]  # the canonical value (str, int, None...), or ValueError with the sentence


class FormField(Vertical):
    """``FormField("mobile", parser=rules.mobile)``; ``value()`` parses, shows
    the problem and returns ``(ok, value)``."""

    DEFAULT_CSS = """
    FormField { height: auto; }
    FormField > .ff-row { height: auto; }
    FormField > .ff-row > TLabel { width: 26; padding: 0 1 0 0; }
    FormField > .ff-row > Input { width: 1fr; }
    FormField > .ff-row > .hint { width: 1fr; height: auto; padding: 0 0 0 1; color: $text-muted; }
    FormField > .error { width: 1fr; height: auto; padding: 0 0 0 2; color: $error; }
    """

    def __init__(
        self,
        field: str,
        *,
        parser: Parser | None = None,
        required: bool = False,
        label_key: str | None = None,
        placeholder: str = "",
        password: bool = False,
        suggester: Suggester | None = None,
        max_length: int = 0,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id or f"ff-{field}")
        self.field = field
        self.parser = parser
        self.required = required
        self.label_key = label_key or f"field.{field}"
        self._placeholder = placeholder
        self._password = password
        self._suggester = suggester
        self._max_length = max_length
        self.problem: str | None = None  # English sentence
        self.hint: str = ""
        self.default = ""  # what the form put here itself (set_text): anything else is the clerk's

    def compose(self) -> ComposeResult:
        with Horizontal(classes="ff-row"):
            yield TLabel(self.label_key)
            yield Input(
                placeholder=self._placeholder,
                password=self._password,
                suggester=self._suggester,
                max_length=self._max_length,
                id=f"in-{self.field}",
            )
            yield Static("", classes="hint")
        err = Static("", classes="error")
        err.display = False
        yield err

    @property
    def password(self) -> bool:
        return self._password

    @property
    def input(self) -> Input:
        return self.query_one(Input)

    @property
    def text(self) -> str:
        return self.input.value

    def set_text(self, text: str) -> None:
        self.default = text
        self.input.value = text

    @property
    def edited(self) -> bool:
        """Has the clerk typed something here that is not yet saved?"""
        return self.input.value != self.default

    def validate_now(self) -> tuple[bool, object]:
        """Parse the text; remember and show the problem (or clear it)."""
        raw = self.input.value
        self.problem = None
        value: object = None
        if not raw.strip():
            if self.required:
                self.problem = "is required"
        elif self.parser is not None:
            try:
                value = self.parser(raw)
            except ValueError as exc:
                self.problem = str(exc)
            else:
                # show the canonical form of short answers ("m" -> "M", "s" -> "S/O")
                if isinstance(value, str) and len(raw) <= 12 and not self._password and value != raw:
                    self.input.value = value
        else:
            value = raw.strip()
        self.show()
        return self.problem is None, value

    def set_problem(self, text: str | None) -> None:
        self.problem = text
        self.show()

    def set_hint(self, text: str) -> None:
        self.hint = text
        self.show()

    def show(self) -> None:
        lang = lang_of(self.app)
        err = self.query_one(".error", Static)
        self.query_one(".hint", Static).update(self.hint)
        if self.problem:
            err.update(f"✗ {field_label(self.field, lang)}: {message(self.problem, lang)}")
            err.display = True
            self.input.add_class("-invalid")
        else:
            err.update("")
            err.display = False
            self.input.remove_class("-invalid")

    def retranslate(self) -> None:
        self.show()


def required_text(lang: Lang) -> str:
    return tr("common.required", lang)

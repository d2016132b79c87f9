"""The always-visible status line: hospital and device, operator, central
online/offline, ops waiting and the oldest one's age, ops needing a person
and open LAN edit conflicts (while there are any), last sync, the clock. It only reads ``app.status`` (kept fresh by a worker),
so rendering never touches the disk or the network."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.widgets import Static

from opd_fallback.tui.i18n import Lang, tr
from opd_fallback.tui.state import StatusModel


def human_age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 86400}d{(s % 86400) // 3600}h"


_HUB_WORDS = {"en": ("LAN: on", "LAN: OFF"), "hi": ("LAN: चालू", "LAN: बंद")}
_HUB_BACK = {"en": "LAN hub went back {at}", "hi": "LAN हब पीछे गया {at}"}
_HUB_REFUSED = {"en": "LAN refused {n}", "hi": "LAN ने {n} नहीं लिए"}


# what goes first when the line is too wide for the terminal: the clock, then the last
# sync, the operator, the ops needing a person (kept while there are any), the LAN
_DROP_ORDER = ("clock", "last_sync", "operator", "flagged", "hub")


def render_status(model: StatusModel, lang: Lang, now: datetime, width: int | None = None) -> Text:
    """The status line, on one row: at 80 columns the parts that matter least are left
    out (see ``_DROP_ORDER``) rather than the line wrapping over two or three rows."""
    parts = _status_parts(model, lang, now)
    if width:
        for name in _DROP_ORDER:
            if sum(p.cell_len for _n, p in parts) <= width:
                break
            if name == "flagged" and model.ops_flagged:
                continue
            parts = [(n, p) for n, p in parts if n != name]
    out = Text(no_wrap=True, overflow="ellipsis")
    for _name, part in parts:
        out.append_text(part)
    if width and out.cell_len > width:
        out.truncate(width, overflow="ellipsis")
    return out


def _status_parts(model: StatusModel, lang: Lang, now: datetime) -> list[tuple[str, Text]]:
    parts: list[tuple[str, Text]] = []

    def add(name: str, words: str, style: str = "") -> None:
        parts.append((name, Text(words, style=style)))

    add("where", f" {model.hospital} · {model.device_id} ", "bold")
    if model.insecure_tls:
        add("tls", f"│ {tr('status.tls_off', lang)} ", "bold white on red")
    if model.clock_off:  # the PC clock is off the hub's or central's: saving waits for a supervisor
        key = "status.clock_confirmed" if model.clock_confirmed else "status.clock_off"
        add("clock_off", f"│ {tr(key, lang)} ", "yellow" if model.clock_confirmed else "bold white on red")
    op = tr("status.operator", lang, op=model.operator) if model.operator else tr("status.no_operator", lang)
    add("operator", f"│ {op} ")
    if model.central is None:
        add("central", f"│ {tr('status.no_server', lang)} ", "dim")
    elif model.central:
        add("central", f"│ {tr('status.online', lang)} ", "bold green")
    elif model.probed:
        add("central", f"│ {tr('status.offline', lang)} ", "bold red")
    else:
        add("central", f"│ {tr('status.unknown', lang)} ", "dim")
    if model.hub is not None:  # the LAN hub (other counters' records)
        on, off = _HUB_WORDS.get(lang, _HUB_WORDS["en"])
        add("hub", f"│ {on if model.hub else off} ", "green" if model.hub else "bold red")
        if model.hub_went_back:  # kept on the line (not in _DROP_ORDER): the LAN lost records for a while
            add("hub_back", "│ " + _HUB_BACK.get(lang, _HUB_BACK["en"]).format(at=model.hub_went_back) + " ",
                "bold black on yellow")
        if model.hub_refused:
            add("hub_refused", "│ " + _HUB_REFUSED.get(lang, _HUB_REFUSED["en"]).format(n=model.hub_refused) + " ",
                "bold yellow")
    waiting = tr("status.waiting", lang, n=model.ops_waiting)
    if model.ops_waiting and model.oldest_age_s is not None:
        waiting += " (" + tr("status.oldest", lang, age=human_age(model.oldest_age_s)) + ")"
    add("waiting", f"│ {waiting} ")
    add("flagged", f"│ {tr('status.flagged', lang, n=model.ops_flagged)} ", "bold yellow" if model.ops_flagged else "")
    if model.lan_conflicts:  # kept on the line (not in _DROP_ORDER) while there are any: a person must check
        add("lan_conflicts", f"│ {tr('status.lan_conflicts', lang, n=model.lan_conflicts)} ", "bold yellow")
    if model.sync_progress is not None:
        done, total = model.sync_progress
        add("syncing", f"│ {tr('status.syncing', lang, done=done, total=total)} ", "cyan")
    else:
        when = model.last_sync or tr("status.never", lang)
        add("last_sync", f"│ {tr('status.last_sync', lang, when=when)} ")
    add("clock", f"│ {now.strftime('%d-%m %H:%M:%S')} ", "bold")
    return parts


class StatusBar(Static):
    """Refreshes itself every second from the app's in-memory status model."""

    DEFAULT_CSS = """
    StatusBar { height: 1; background: $panel; color: $text; }
    """

    def on_mount(self) -> None:
        self.tick()
        self.set_interval(1.0, self.tick)

    def tick(self) -> None:
        app = self.app
        model: StatusModel = getattr(app, "status", StatusModel())
        now = app.now() if hasattr(app, "now") else datetime.now()
        self.update(render_status(model, getattr(app, "lang", "en"), now, self.size.width or None))

    def on_resize(self) -> None:
        self.tick()

    def retranslate(self) -> None:
        self.tick()

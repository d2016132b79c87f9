"""The always-visible status line: hospital and device, operator, central
online/offline, ops waiting and the oldest one's age, ops needing a person,
last sync, the clock. It only reads ``app.status`` (kept fresh by a worker),
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


def fit_parts(text: Text, width: int | None) -> Text:
    """Break the status line at its │ separators (never inside a part) so that
    each line fits ``width`` cells as the terminal counts them: nothing is cut."""
    if not width or text.cell_len <= width:
        return text
    parts = text.split("│", allow_blank=False)
    out = Text(no_wrap=True, overflow="ellipsis")
    line_len = 0
    for i, part in enumerate(parts):
        piece = part if i == 0 else Text("│") + part
        if line_len and line_len + piece.cell_len > width:
            out.append("\n")
            piece = part
            line_len = 0
        out.append_text(piece)
        line_len += piece.cell_len
    return out


def render_status(model: StatusModel, lang: Lang, now: datetime, width: int | None = None) -> Text:
    return fit_parts(_status_line(model, lang, now), width)


def _status_line(model: StatusModel, lang: Lang, now: datetime) -> Text:
    out = Text(no_wrap=True, overflow="ellipsis")
    out.append(f" {model.hospital} · {model.device_id} ", style="bold")
    if model.insecure_tls:
        out.append(f"│ {tr('status.tls_off', lang)} ", style="bold white on red")
    if model.clock_off:  # the PC clock is off the hub's or central's: saving waits for a supervisor
        key = "status.clock_confirmed" if model.clock_confirmed else "status.clock_off"
        out.append(f"│ {tr(key, lang)} ", style="yellow" if model.clock_confirmed else "bold white on red")
    op = tr("status.operator", lang, op=model.operator) if model.operator else tr("status.no_operator", lang)
    out.append(f"│ {op} ")
    if model.central is None:
        out.append(f"│ {tr('status.no_server', lang)} ", style="dim")
    elif model.central:
        out.append(f"│ {tr('status.online', lang)} ", style="bold green")
    elif model.probed:
        out.append(f"│ {tr('status.offline', lang)} ", style="bold red")
    else:
        out.append(f"│ {tr('status.unknown', lang)} ", style="dim")
    if model.hub is not None:  # the LAN hub (other counters' records)
        on, off = _HUB_WORDS.get(lang, _HUB_WORDS["en"])
        out.append(f"│ {on if model.hub else off} ", style="green" if model.hub else "bold red")
        if model.hub_went_back:
            words = _HUB_BACK.get(lang, _HUB_BACK["en"]).format(at=model.hub_went_back)
            out.append(f"│ {words} ", style="bold black on yellow")
        if model.hub_refused:
            words = _HUB_REFUSED.get(lang, _HUB_REFUSED["en"]).format(n=model.hub_refused)
            out.append(f"│ {words} ", style="bold yellow")
    waiting = tr("status.waiting", lang, n=model.ops_waiting)
    if model.ops_waiting and model.oldest_age_s is not None:
        waiting += " (" + tr("status.oldest", lang, age=human_age(model.oldest_age_s)) + ")"
    out.append(f"│ {waiting} ")
    out.append(
        f"│ {tr('status.flagged', lang, n=model.ops_flagged)} ",
        style="bold yellow" if model.ops_flagged else "",
    )
    if model.sync_progress is not None:
        done, total = model.sync_progress
        out.append(f"│ {tr('status.syncing', lang, done=done, total=total)} ", style="cyan")
    else:
        when = model.last_sync or tr("status.never", lang)
        out.append(f"│ {tr('status.last_sync', lang, when=when)} ")
    out.append(f"│ {now.strftime('%d-%m %H:%M:%S')} ", style="bold")
    return out


class StatusBar(Static):
    """Refreshes itself every second from the app's in-memory status model."""

    DEFAULT_CSS = """
    StatusBar { height: auto; background: $panel; color: $text; }
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

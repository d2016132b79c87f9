"""The hospital's clock: everything is recorded in Asia/Kolkata (+05:30)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

IST = timezone(timedelta(hours=5, minutes=30), "IST")


def now_ist() -> datetime:
    return datetime.now(IST).replace(microsecond=0)


def now_iso() -> str:
    """RFC 3339 with offset, e.g. 2024-02-19T10:32:11+05:30."""
    return now_ist().isoformat()


def today_ist() -> date:
    return now_ist().date()


def parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value)


def duration_words(seconds: float | None) -> str:
    """How long, for a person: '45 s', '12 min', '3 h 5 min', '2 d 3 h'; '-' when unknown."""
    if seconds is None:
        return "-"
    secs = max(int(seconds), 0)
    days, rest = divmod(secs, 86400)
    hours, rest = divmod(rest, 3600)
    mins = rest // 60
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {mins} min"
    if secs < 120:
        return f"{secs} s"
    return f"{mins} min"


def seconds_since(then: str, now: str | None = None) -> float:
    """Seconds from the RFC 3339 time ``then`` to ``now`` (default: now)."""
    return (parse_iso(now or now_iso()) - parse_iso(then)).total_seconds()

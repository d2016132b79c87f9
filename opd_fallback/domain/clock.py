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

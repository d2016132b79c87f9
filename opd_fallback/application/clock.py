"""The hospital's clock: is this counter's date and time right?

A dead CMOS battery puts a PC a year ahead or years behind, and every number
and day a counter prints comes from its clock. The counter has two clocks to
compare with: central's (the ``Date`` of its answers, ``sync/client.py``)
and, while central is down, the LAN hub's (the hub is the LAN's clock, its
``Date`` header, ``sync/hub_client.py``). Each exchange stores the last known
good offset (server minus this PC, in seconds, measured at the request's
midpoint so the network's delay does not count) in ``meta`` with where it
came from: the offset, not a wall time, so a clock that jumps after it was
measured is still judged by the offset (a restart measures it again).

More than 5 minutes off: the status bar says so, ``sync`` and ``share``
report it in their result (``clock`` in ``--json``), and the counter will not
save (services refuse) until a supervisor confirms the date with their PIN
(``opd-fallback clock confirm``, audited ``clock.confirmed``). A
confirmation holds for that offset only: a new measure more than 5 minutes
from it needs a new one. More than a day off: ``sync`` and ``share`` also
end non-zero. A measure within 5 minutes clears it all.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import orjson
from sqlmodel import Session

from opd_fallback.domain.clock import now_iso
from opd_fallback.domain.errors import DomainError
from opd_fallback.domain.jsonio import JSONValue
from opd_fallback.store import audit, meta
from opd_fallback.store.engine import Store

LIMIT_S = 300.0
DAY_S = 86_400.0
CLOCK_REF = "clock_reference"  # JSON {source, offset_s, at}: the last measure (meta)
CLOCK_CONFIRMED = "clock_confirmed"  # JSON {by, offset_s, at}: a supervisor's confirmation (meta)


@dataclass
class ClockReport:
    source: str | None = None  # central | hub
    offset_s: float | None = None  # server minus this PC
    off: bool = False  # more than 5 minutes
    off_by_a_day: bool = False
    confirmed_by: str | None = None
    message: str = ""

    def as_dict(self) -> dict[str, JSONValue]:
        return asdict(self)


def words(offset_s: float, source: str) -> str:
    """'this counter's clock is 365 days ahead of the hub's' in one sentence."""
    ahead = "behind" if offset_s > 0 else "ahead of"
    size = abs(offset_s)
    amount = f"{size / 86400:.0f} days" if size >= DAY_S else (
        f"{size / 3600:.1f} hours" if size >= 3600 else f"{size / 60:.0f} minutes")
    whose = "the central server's" if source == "central" else "the LAN hub's"
    return (f"this counter's clock is {amount} {ahead} {whose}: ask IT to set the date and time; until then "
            "a supervisor must confirm the date before this counter saves ('opd-fallback clock confirm')")


def _load(session: Session, key: str) -> dict[str, Any] | None:
    raw = meta.get(session, key)
    try:
        value = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def report(session: Session) -> ClockReport:
    ref = _load(session, CLOCK_REF)
    if ref is None or not isinstance(ref.get("offset_s"), (int, float)):
        return ClockReport()
    offset, source = float(ref["offset_s"]), str(ref.get("source") or "hub")
    out = ClockReport(source=source, offset_s=round(offset, 1), off=abs(offset) > LIMIT_S,
                      off_by_a_day=abs(offset) > DAY_S)
    if out.off:
        out.message = words(offset, source)
        conf = _load(session, CLOCK_CONFIRMED)
        if conf and abs(float(conf.get("offset_s") or 0) - offset) <= LIMIT_S:
            out.confirmed_by = str(conf.get("by"))
    return out


def observe(store: Store, source: str, offset_s: float | None) -> ClockReport:
    """Keep a new measure of the offset (``None``: nothing measured, nothing changes)."""
    with store.write() as s:
        if offset_s is not None:
            meta.put(s, CLOCK_REF, orjson.dumps({"source": source, "offset_s": round(float(offset_s), 1),
                                                  "at": now_iso()}).decode())
            if abs(offset_s) <= LIMIT_S:
                meta.delete(s, CLOCK_CONFIRMED)
        return report(s)


def check_before_save(session: Session) -> None:
    """Refuse a save while the clock is off and no supervisor has confirmed the date."""
    rep = report(session)
    if rep.off and not rep.confirmed_by:
        raise DomainError(rep.message, code="clock_off")


def confirm(store: Store, supervisor: str, pin: str) -> ClockReport:
    """A supervisor confirms the date shown is to be used anyway (PIN checked, audited)."""
    from opd_fallback.store import operators

    operators.verify_operator(store, supervisor, pin, role="supervisor", purpose="clock")
    with store.write() as s:
        rep = report(s)
        if not rep.off:
            return rep
        meta.put(s, CLOCK_CONFIRMED, orjson.dumps({"by": supervisor, "offset_s": rep.offset_s,
                                                    "at": now_iso()}).decode())
        audit.record(s, supervisor, "clock.confirmed", rep.source, offset_s=rep.offset_s, message=rep.message)
        rep.confirmed_by = supervisor
    return rep

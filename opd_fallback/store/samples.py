"""Tubes and their collection events at a counter (the lab's collection desk).

A tube is known from its lab order: this counter's own orders (the tubes are
in the ``lab.order`` op's ``samples``, kept verbatim in the outbox) and the
orders of the other counters of the LAN (``shared_record`` rows pulled from
the hub, whose detail carries the same ``samples``). Its state is its latest
event in ``sample_event`` by ``collected_at``, whichever counter recorded it
(this one's, or another's pulled from the hub): the rule central applies, so
every desk and central agree on a tube.

Decisions:
- An order is *paid* when a payment for it is known here and not voided (this
  counter's, or another counter's from the hub), or when its tests cost
  nothing by the price list (an exempt or free test).
- The patient is printed and shown as registered: this counter's record, the
  LAN's record, else central's patient index.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import orjson
from sqlalchemy import Row, text
from sqlmodel import Session

from opd_fallback.domain import shared

if TYPE_CHECKING:
    from opd_fallback.domain.jsonio import JSONObject


@dataclass(frozen=True)
class Event:
    """One collection-desk event of a tube."""

    op_id: str
    status: str  # collected | rejected
    collected_at: str
    operator_id: str
    device_id: str
    reason: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class Person:
    ref: str  # offline number or uhid
    name: str
    name_local: str | None = None
    sex: str | None = None
    age: tuple[int | None, int | None, int | None] = (None, None, None)
    uhid: str | None = None


@dataclass(frozen=True)
class Tube:
    """One tube of a lab order, with the patient, the order's payment and its latest event."""

    sample_id: str
    sample_type: str
    tests: list[str]
    order_ref: str  # the order's offline number
    order_op_id: str
    order_device: str  # the counter that ordered it
    ordered_at: str
    priority: str
    own_order: bool  # ordered at this counter
    patient: Person
    paid: bool
    last: Event | None = None
    tubes_in_order: int = 1
    extra: JSONObject = field(default_factory=dict)

    @property
    def state(self) -> str:
        return self.last.status if self.last is not None else "ordered"

    @property
    def to_collect(self) -> bool:
        """Still to be drawn: never collected, or refused (a new draw is due)."""
        return self.state != "collected"


def utc_key(iso: str) -> str:
    """The instant of an RFC 3339 time in UTC, for ordering events from any offset."""
    return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def add_event(session: Session, *, op_id: str, sample_id: str, order_ref: str | None, status: str,
              collected_at: str, device_id: str, operator_id: str, reason: str | None = None,
              note: str | None = None, source: str = "here", created_at: str) -> int:
    """Store one event (idempotent by op_id); returns 1 if it was new."""
    res = session.execute(text(
        "INSERT INTO sample_event(op_id, sample_id, order_ref, status, reason, note, collected_at, collected_utc, "
        "device_id, operator_id, source, created_at) VALUES (:op_id, :sid, :order, :status, :reason, :note, :at, "
        ":utc, :device, :operator, :source, :now) ON CONFLICT(op_id) DO NOTHING"),
        {"op_id": op_id, "sid": sample_id.upper(), "order": order_ref, "status": status, "reason": reason,
         "note": note, "at": collected_at, "utc": utc_key(collected_at), "device": device_id,
         "operator": operator_id, "source": source, "now": created_at})
    return int(getattr(res, "rowcount", 0) or 0)


def store_pulled(session: Session, op: Mapping[str, object], now: str) -> int:
    """Another counter's ``lab.sample_collect`` pulled from the hub, as an event here."""
    ev = shared.sample_event(op)
    if ev is None:
        return 0
    tube = _tube_row(session, ev.sample_id)
    try:
        return add_event(session, op_id=ev.op_id, sample_id=ev.sample_id, order_ref=tube[0] if tube else None,
                         status=ev.status, collected_at=ev.collected_at, device_id=ev.device_id,
                         operator_id=ev.operator_id, reason=ev.reason, note=ev.note, source="hub", created_at=now)
    except ValueError:  # a collected_at that is no time: a mirror keeps nothing it cannot order
        return 0


def latest_events(session: Session, sample_ids: list[str]) -> dict[str, Event]:
    """Each tube's latest event (by collected_at, then op_id), for the tubes that have one."""
    out: dict[str, Event] = {}
    for i in range(0, len(sample_ids), 500):
        chunk = sample_ids[i:i + 500]
        marks = ",".join(f":s{n}" for n in range(len(chunk)))
        rows = session.execute(text(
            "SELECT sample_id, op_id, status, collected_at, operator_id, device_id, reason, note FROM sample_event "
            f"WHERE sample_id IN ({marks}) ORDER BY sample_id, collected_utc, op_id"),
            {f"s{n}": s for n, s in enumerate(chunk)}).all()
        for r in rows:  # ascending: the last row of each tube wins
            out[str(r[0])] = Event(str(r[1]), str(r[2]), str(r[3]), str(r[4]), str(r[5]), r[6], r[7])
    return out


def events_of(session: Session, sample_id: str) -> list[Event]:
    rows = session.execute(text(
        "SELECT op_id, status, collected_at, operator_id, device_id, reason, note FROM sample_event "
        "WHERE sample_id = :s ORDER BY collected_utc, op_id"), {"s": sample_id.upper()}).all()
    return [Event(str(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), r[5], r[6]) for r in rows]


# ------------------------------------------------------------------ tubes
_OWN = (
    "SELECT lo.local_ref, lo.op_id, lo.created_at, lo.priority, lo.patient_local_ref, lo.patient_uhid, "
    "lo.patient_name, lo.total_paise, op.payload, op.device_id FROM lab_order lo JOIN op ON op.op_id = lo.op_id "
)
_OTHER = (
    "SELECT local_ref, op_id, recorded_at, patient_ref, device_id, detail FROM shared_record WHERE kind = 'lab_order' "
)
# their rows, column by column
OwnOrderRow = Row[str, str, str, str, str | None, str | None, str, int, str, str]
LanOrderRow = Row[str, str, str, str | None, str, str | None]


def _tube_row(session: Session, sample_id: str) -> tuple[str, str] | None:
    """(order local_ref, 'own' | 'lan') of the order holding a tube, or None."""
    sid = sample_id.upper()
    row = session.execute(text(
        "SELECT lo.local_ref FROM lab_order lo JOIN op ON op.op_id = lo.op_id WHERE lo.sample_id = :s OR EXISTS "
        "(SELECT 1 FROM json_each(op.payload, '$.samples') j WHERE json_extract(j.value, '$.sample_id') = :s) "
        "LIMIT 1"), {"s": sid}).first()
    if row is not None:
        return str(row[0]), "own"
    row = session.execute(text(
        "SELECT local_ref FROM shared_record WHERE kind = 'lab_order' AND (json_extract(detail, '$.sample_id') = :s "
        "OR EXISTS (SELECT 1 FROM json_each(detail, '$.samples') j WHERE json_extract(j.value, '$.sample_id') = :s))"
        " LIMIT 1"), {"s": sid}).first()
    return None if row is None else (str(row[0]), "lan")


def find_tube(session: Session, sample_id: str, prices: dict[str, int] | None = None) -> Tube | None:
    """The tube a scanned id names, from this counter's orders or the LAN's."""
    found = _tube_row(session, sample_id)
    if found is None:
        return None
    order_ref, where = found
    sid = sample_id.upper()
    if where == "own":
        rows = session.execute(text(_OWN + "WHERE lo.local_ref = :r"), {"r": order_ref}).all()
        tubes = _own_tubes(session, rows, prices)
    else:
        rows = session.execute(text(_OTHER + "AND local_ref = :r"), {"r": order_ref}).all()
        tubes = _other_tubes(session, rows, prices)
    return next((t for t in tubes if t.sample_id == sid), None)


def tubes_ordered_on(session: Session, day: str, prices: dict[str, int] | None = None) -> list[Tube]:
    """Every tube of the orders placed on ``day`` (YYYY-MM-DD, IST) at this counter
    and at the other counters of the LAN, oldest order first."""
    own = session.execute(text(_OWN + "WHERE substr(lo.created_at, 1, 10) = :d"), {"d": day}).all()
    other = session.execute(text(_OTHER + "AND substr(recorded_at, 1, 10) = :d"), {"d": day}).all()
    tubes = _own_tubes(session, own, prices) + _other_tubes(session, other, prices)
    tubes.sort(key=lambda t: (utc_key(t.ordered_at), t.sample_id))
    return tubes


def _own_tubes(session: Session, rows: Sequence[OwnOrderRow], prices: dict[str, int] | None) -> list[Tube]:
    out: list[Tube] = []
    for ref, op_id, at, priority, p_local, p_uhid, p_name, total, payload, device in rows:
        body = orjson.loads(payload)
        raw = shared.tubes_of(body) if isinstance(body, dict) else []
        codes = [c for t in raw for c in t["tests"]]
        person = person_of(session, p_local or p_uhid or "", p_name)
        free = _costs_nothing(codes, prices) if prices is not None else int(total or 0) == 0
        paid = free or _has_payment(session, str(ref))
        out += _tubes(raw, str(ref), str(op_id), str(device), str(at), str(priority or "routine"), True, person, paid)
    return _with_states(session, out)


def _other_tubes(session: Session, rows: Sequence[LanOrderRow], prices: dict[str, int] | None) -> list[Tube]:
    out: list[Tube] = []
    for ref, op_id, at, patient_ref, device, detail in rows:
        d = orjson.loads(detail or "{}")
        raw = d.get("samples") or []
        if not raw and d.get("sample_id"):  # pulled before tubes were shared: one tube with every test
            raw = [{"sample_id": str(d["sample_id"]).upper(), "sample_type": None, "tests": d.get("tests") or []}]
        codes = [c for t in raw for c in t.get("tests") or []]
        person = person_of(session, patient_ref or "", "")
        paid = _costs_nothing(codes, prices) or _has_payment(session, str(ref))
        out += _tubes(raw, str(ref), str(op_id), str(device), str(at), str(d.get("priority") or "routine"), False,
                      person, paid)
    return _with_states(session, out)


def _tubes(raw: Sequence[Mapping[str, object]], ref: str, op_id: str, device: str, at: str, priority: str, own: bool,
           person: Person, paid: bool) -> list[Tube]:
    return [Tube(sample_id=str(t.get("sample_id") or "").upper(), sample_type=str(t.get("sample_type") or "sample"),
                 tests=_codes(t.get("tests")), order_ref=ref, order_op_id=op_id, order_device=device,
                 ordered_at=at, priority=priority, own_order=own, patient=person, paid=paid, tubes_in_order=len(raw))
            for t in raw if t.get("sample_id")]


def _codes(tests: object) -> list[str]:
    return list(tests) if isinstance(tests, list) else []


def _with_states(session: Session, tubes: list[Tube]) -> list[Tube]:
    if not tubes:
        return tubes
    last = latest_events(session, [t.sample_id for t in tubes])
    return [t if t.sample_id not in last else _replace_last(t, last[t.sample_id]) for t in tubes]


def _replace_last(t: Tube, ev: Event) -> Tube:
    from dataclasses import replace

    return replace(t, last=ev)


def _costs_nothing(codes: Sequence[str | None], prices: dict[str, int] | None) -> bool:
    if prices is None or not codes:
        return False
    return all(c is not None and c in prices for c in codes) and sum(prices[c] for c in codes if c is not None) == 0


def _has_payment(session: Session, order_ref: str) -> bool:
    """A payment for the order that is not voided: this counter's or the LAN's."""
    row = session.execute(text(
        "SELECT 1 FROM payment p WHERE p.lab_order_local_ref = :r AND NOT EXISTS "
        "(SELECT 1 FROM payment_void v WHERE v.payment_local_ref = p.local_ref) "
        "UNION ALL SELECT 1 FROM shared_record WHERE kind = 'payment' AND lab_order_ref = :r AND voided = 0 LIMIT 1"),
        {"r": order_ref}).first()
    return row is not None


def person_of(session: Session, key: str, name: str) -> Person:
    """The patient as registered: this counter's record, the LAN's, else central's index."""
    k = (key or "").strip().upper()
    if k:
        row = session.execute(text(
            "SELECT local_ref, uhid, name, name_local, sex, age_years, age_months, age_days FROM patient "
            "WHERE local_ref = :k OR uhid = :k LIMIT 1"), {"k": k}).first()
        if row is not None:
            return Person(row[1] or row[0], row[2], row[3], row[4], (row[5], row[6], row[7]), row[1])
        row = session.execute(text(
            "SELECT local_ref, central_id, name, detail FROM shared_record WHERE kind = 'patient' "
            "AND (local_ref = :k OR central_id = :k) LIMIT 1"), {"k": k}).first()
        if row is not None:
            d = orjson.loads(row[3] or "{}")
            return Person(row[1] or row[0], row[2] or d.get("name") or name, d.get("name_local"), d.get("sex"),
                          (d.get("age_years"), d.get("age_months"), d.get("age_days")), row[1])
        row = session.execute(text(
            "SELECT i.uhid, i.name, i.sex, i.age_years FROM patient_index i WHERE i.uhid = :k OR i.uhid = "
            "(SELECT uhid FROM patient_index_ref WHERE local_ref = :k) LIMIT 1"), {"k": k}).first()
        if row is not None:
            return Person(row[0], row[1], None, row[2], (row[3], None, None), row[0])
    return Person(k or "-", name)

"""The lab's collection desk: a scanned tube drawn (collected) or refused.

``CollectionDesk`` is what the collection screen (F12) and ``opd-fallback
collect`` call. Each event is saved with its ``lab.sample_collect`` op in one
transaction (``sample_event`` row + outbox op), and shared with the other
counters through the hub like every op.

Decisions (also in the README):
- A tube is found by its sample id among this counter's orders and the LAN's
  (pulled from the hub). A tube this counter has never heard of is refused in
  words: without its order central would reject the op (``unknown_sample``).
- The op's ``depends_on`` holds the order's op (this counter's while it is
  not synced; another counter's always): central then *defers* an event for
  an order its counter has not synced yet and applies it once that counter
  has, without a person.
- **An unpaid order blocks collection** (a government lab draws against the
  receipt): the sentence sends the patient to billing. Tests that cost
  nothing by the price list need no payment. A refusal is recorded whatever
  the payment (a mislabelled tube is refused even if nobody paid).
- A tube already collected cannot be collected again (a double scan says
  when and by whom); it can be refused afterwards (found clotted at the
  desk). A refused tube can be collected again: the new draw takes the same
  label, which the desk prints again on the refusal (audited as a reprint).
- ``collected_at`` is the time of the save at this counter, which is also
  the op's ``recorded_at``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from opd_fallback.application.services import CounterService
from opd_fallback.domain import payloads as P
from opd_fallback.domain.clock import now_ist, today_ist
from opd_fallback.domain.errors import DomainError, validate
from opd_fallback.printing import templates as T
from opd_fallback.printing.document import Document
from opd_fallback.store import audit
from opd_fallback.store import samples as tubes
from opd_fallback.store.engine import Store

REASONS = P.SAMPLE_REASONS
RELABEL_ACTION = "print.reprint"


@dataclass(frozen=True)
class Recorded:
    """An event saved with its op."""

    tube: tubes.Tube  # as it was scanned (before this event)
    status: str
    op_id: str
    seq: int
    collected_at: str
    reason: str | None = None


class CollectionDesk:
    def __init__(self, store: Store, device_id: str, *, hospital: str = "", svc: CounterService | None = None) -> None:
        self.store = store
        self.device_id = device_id
        self.hospital = hospital
        self.svc = svc or CounterService(store, device_id)

    def _prices(self) -> dict[str, int] | None:
        cat = self.svc.catalog()
        return None if cat is None else {t.code: t.price_paise for t in cat.data.tests}

    def test_names(self, codes: list[str]) -> list[str]:
        cat = self.svc.catalog()
        return [cat.tests[c].name if cat is not None and c in cat.tests else c for c in codes]

    # ------------------------------------------------------------- reading
    def tube(self, scanned: str) -> tubes.Tube:
        """The tube a scan names, or ``DomainError`` with the sentence to show."""
        sid = _clean(scanned)
        with self.store.read() as s:
            found = tubes.find_tube(s, sid, self._prices())
        if found is None:
            raise DomainError.field(
                "sample_id", f"no tube {sid} in this counter's or the LAN's lab orders: check the label, "
                "or wait for the hub to share the order and scan again", code="not_found")
        return found

    def to_collect(self, day: date | None = None) -> list[tubes.Tube]:
        """Today's tubes still to draw (never collected, or refused), across the hospital."""
        with self.store.read() as s:
            every = tubes.tubes_ordered_on(s, (day or today_ist()).isoformat(), self._prices())
        return [t for t in every if t.to_collect]

    # ------------------------------------------------------------- writing
    def collect(self, operator_id: str, scanned: str, *, note: str | None = None) -> Recorded:
        return self._record(operator_id, scanned, "collected", None, note)

    def refuse(self, operator_id: str, scanned: str, reason: str, *, note: str | None = None) -> Recorded:
        return self._record(operator_id, scanned, "rejected", reason, note)

    def _record(self, operator_id: str, scanned: str, status: str, reason: str | None,
                note: str | None) -> Recorded:
        sid = _clean(scanned)
        prices = self._prices()
        with self.svc.transaction(operator_id) as tx:
            s = tx.session
            tube = tubes.find_tube(s, sid, prices)
            if tube is None:
                raise DomainError.field(
                    "sample_id", f"no tube {sid} in this counter's or the LAN's lab orders: check the label, "
                    "or wait for the hub to share the order and scan again", code="not_found")
            last = tube.last
            if status == "collected" and last is not None and last.status == "collected":
                raise DomainError.field(
                    "sample_id", f"tube {sid} was already collected at {_hhmm(last.collected_at)} by "
                    f"{last.operator_id} ({last.device_id}); nothing recorded", code="already_collected")
            if status == "collected" and not tube.paid:
                raise DomainError.field(
                    "sample_id", f"lab order {tube.order_ref} is not paid: send the patient to billing, then scan "
                    "again (paid at another counter a moment ago? the hub shares it within seconds)",
                    code="unpaid")
            if status == "rejected" and reason not in REASONS:
                raise DomainError.field(
                    "reason", f"give the reason the tube is refused: {', '.join(REASONS)}", code="required")
            seq, op_id, when = tx._begin_op()
            at = when.isoformat(timespec="seconds")
            model = validate(P.SampleCollect, {"sample_id": sid, "status": status, "collected_at": at,
                                               "reason": reason, "note": note})
            deps = tx._unsynced(tube.order_op_id) if tube.own_order else [tube.order_op_id]
            tubes.add_event(s, op_id=op_id, sample_id=sid, order_ref=tube.order_ref, status=status,
                            collected_at=at, device_id=self.device_id, operator_id=operator_id, reason=reason,
                            note=model.note, created_at=when.isoformat())
            tx._enqueue(seq, op_id, when, "lab.sample_collect", model, deps, "sample_event", sid)
            if status == "rejected":
                audit.record(s, operator_id, RELABEL_ACTION, sid, kind="labels", reason=f"new draw: {reason}")
        return Recorded(tube, status, op_id, seq, at, reason)

    def describe(self, tube: tubes.Tube) -> str:
        """One line for a person: the patient, the tube and its tests, whether the order is paid."""
        p = tube.patient
        who = p.name + (f" / {p.name_local}" if p.name_local else "")
        tests = ", ".join(f"{c} {n}" if n != c else c for c, n in zip(tube.tests, self.test_names(tube.tests)))
        paid = "paid" if tube.paid else "NOT PAID"
        return (f"{who}, {T.age_text(*p.age)}/{p.sex or '?'} ({p.ref}); {tube.sample_type}: {tests}; "
                f"order {tube.order_ref} {paid}")

    # ------------------------------------------------------------- papers
    def label(self, tube: tubes.Tube, *, printed_at: datetime | None = None) -> Document:
        """The tube's label again, for the new draw after a refusal (same sample id)."""
        p = tube.patient
        age_sex = f"{T.age_text(*p.age)}/{p.sex or '?'}"
        docs = T.tube_labels(order_no=tube.order_ref, tubes=[T.Tube(tube.sample_id, tube.sample_type, tube.tests)],
                             patient_name=p.name, patient_name_local=p.name_local, patient_ref=p.ref,
                             age_sex=age_sex, recorded_at=(printed_at or now_ist()).isoformat(),
                             priority=tube.priority)
        return docs[0]


def _clean(scanned: str) -> str:
    sid = (scanned or "").strip().upper()
    if not sid:
        raise DomainError.field("sample_id", "scan the tube's barcode (or type its sample id) and press Enter",
                                code="required")
    return sid


def _hhmm(iso: str) -> str:
    return iso[11:16] if len(iso) >= 16 else iso

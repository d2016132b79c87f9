"""Find anyone, anywhere (``opd-fallback find``): the counter's one patient
search (``store/search.py``: this counter's patients, the LAN's as the last
share pulled them, and central's patient index) by offline number, uhid, visit,
order or receipt number, sample id, mobile (whole, or its first or last 4+
digits) or name (misspelt, or in Hindi as registered). Every hit says where it
came from: this counter, another counter and when ("C03 at 09:14"), or central.
Nothing here touches the network.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from opd_fallback.domain.jsonio import JSONValue
from opd_fallback.store.engine import Store
from opd_fallback.store.patient_index import PatientHit
from opd_fallback.store.search import search


@dataclass(frozen=True)
class Hit:
    source: str  # this_counter | lan | central
    where: str  # "this counter" | "C03 at 09:14" | "central"
    name: str
    local_ref: str | None
    uhid: str | None
    sex: str | None
    age_years: int | None
    mobile: str | None
    device_id: str | None
    recorded_at: str | None
    match: str  # offline_no | uhid | visit_no | order_no | receipt_no | sample_id | mobile | mobile_start | mobile_end | name
    score: float
    name_local: str | None = None
    age_sex: str = ""
    guardian_name: str | None = None
    district: str | None = None

    def as_dict(self) -> dict[str, JSONValue]:
        return asdict(self)


def _hhmm(at: str | None) -> str:
    return at[11:16] if at and len(at) >= 16 else "?"


_SOURCE = {"local": "this_counter", "lan": "lan", "index": "central"}


def _of(h: PatientHit) -> Hit:
    source = _SOURCE[h.source]
    where = {"this_counter": "this counter", "central": "central"}.get(source) or f"{h.device_id} at {_hhmm(h.recorded_at)}"
    return Hit(source, where, h.name, h.local_ref, h.uhid, h.sex, h.age_years, h.mobile, h.device_id, h.recorded_at,
               h.match, round(float(h.score), 1), h.name_local, h.age_sex, h.guardian_name, h.district)


def find(store: Store, query: str, *, limit: int = 20) -> list[Hit]:
    """Patients by every key of ``store/search.py``, each saying where it came from."""
    with store.read() as s:
        return [_of(h) for h in search(s, query, limit=limit)]


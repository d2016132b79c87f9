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
from typing import Any

from rapidfuzz import fuzz
from sqlalchemy import text

from opd_fallback.domain import rules
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

    def as_dict(self) -> dict[str, Any]:
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


_LAN = ("SELECT local_ref, central_id, name, json_extract(detail, '$.name_local'), json_extract(detail, '$.sex'), "
        "json_extract(detail, '$.age_years'), mobile, device_id, recorded_at FROM shared_record "
        "WHERE kind='patient'")


def _lan_hit(row: Any, match: str, score: float) -> Hit:
    local_ref, uhid, name, name_local, sex, age, mobile, device, at = row
    return Hit("lan", f"{device} at {_hhmm(at)}", name or "", local_ref, uhid, sex,
               None if age is None else int(age), mobile, device, at, match, score, name_local)


DUPLICATE_NAME_SCORE = 85.0  # as central's possible_duplicate rule (same mobile, similar name, age within 2 years)
DUPLICATE_AGE_YEARS = 2


def possible_duplicates_on_lan(store: Store, fields: dict[str, Any], *, limit: int = 5) -> list[Hit]:
    """Before a new patient is saved: patients another counter of the LAN registered
    with the same mobile, a similar name and a close age. Each hit's ``words()`` is
    what the clerk sees ("possibly registered at C03 at 09:14 (C03-261130-000042)"),
    and its ``local_ref`` is the patient to take instead."""
    try:
        mobile = rules.mobile(None if fields.get("mobile") is None else str(fields.get("mobile")))
    except ValueError:
        return []
    name = rules.clean_text(str(fields.get("name") or "")).lower()
    if not mobile or not name:
        return []
    age = fields.get("age_years")
    out: list[Hit] = []
    with store.read() as s:
        rows = s.execute(text(f"{_LAN} AND mobile = :m ORDER BY recorded_at DESC LIMIT 50"), {"m": mobile}).all()
    for row in rows:
        score = fuzz.token_sort_ratio(name, (row[2] or "").lower())
        if score < DUPLICATE_NAME_SCORE:
            continue
        if age is not None and row[5] is not None and abs(int(age) - int(row[5])) > DUPLICATE_AGE_YEARS:
            continue
        out.append(_lan_hit(row, "possible_duplicate", round(float(score), 1)))
        if len(out) >= limit:
            break
    return out


def duplicate_words(hit: Hit) -> str:
    """One line for the clerk."""
    return f"possibly registered at {hit.where} ({hit.local_ref})"

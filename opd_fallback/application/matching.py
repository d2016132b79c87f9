"""Is this new patient already registered? Checked before a registration is
saved, so the clerk can take the existing patient instead of charging twice
and leaving central to flag a duplicate after sync.

The rule is :mod:`opd_fallback.domain.identity`'s, the very one central flags
``possible_duplicate`` by: the same mobile with a similar name and an age within
two years (the same ABHA number, where both sides know one). So the counter
warns about exactly what central would flag, no more and no less.

One function, :func:`possible_duplicates`, over any number of candidate
sources: this counter's registrations, the patient index (central's patients)
and the patients other counters of the LAN registered (pulled from the hub) by
default; a source is a callable ``(session, patient) -> hits``. Candidates come
by the mobile (indexed: fast at a million patients, F10 waits for this check);
:func:`opd_fallback.domain.identity.judge` decides. Central's index carries no
ABHA number, so at the counter the mobile is what finds a candidate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from sqlmodel import Session

from opd_fallback.domain import identity
from opd_fallback.store import patient_index
from opd_fallback.store.engine import Store
from opd_fallback.store.patient_index import PatientHit

Source = Callable[[Session, Mapping[str, object]], list[PatientHit]]


@dataclass(frozen=True)
class PossibleMatch:
    hit: PatientHit
    score: float  # name similarity, 0-100
    why: tuple[str, ...]  # "same mobile", "similar name", "same age"...


def _same_mobile(source: str, doc: str) -> Source:
    """A source over one kind of patient record: the patients with the same mobile."""
    def find(session: Session, patient: Mapping[str, object]) -> list[PatientHit]:
        mobile = patient.get("mobile")  # as identity.mobile_key wrote it
        return patient_index.with_mobile(session, source, str(mobile)) if mobile else []
    find.__doc__ = doc
    return find


this_counter = _same_mobile("local", "This counter's own registrations with the same mobile.")
patient_index_source = _same_mobile("index", "Central's patients (the offline index) with the same mobile.")
lan_counters = _same_mobile(
    "lan", "Patients other counters of the LAN registered (shared through the hub) with the same mobile: two "
    "counters never register one patient twice without the clerk seeing it.")

DEFAULT_SOURCES: tuple[Source, ...] = (this_counter, patient_index_source, lan_counters)


def _fields(hit: PatientHit) -> dict[str, str | int | None]:
    return {"name": hit.name, "mobile": hit.mobile, "sex": hit.sex, "age_years": hit.age_years,
            "age_months": hit.age_months, "age_days": hit.age_days}


def possible_duplicates(store: Store, patient: Mapping[str, object], *,
                        sources: Sequence[Source] = DEFAULT_SOURCES, limit: int = 5) -> list[PossibleMatch]:
    """Registered patients this new ``patient`` (name, age, mobile, ...) may be,
    best first; empty when none. Reads only (a worker calls it)."""
    if not str(patient.get("name") or "").strip():
        return []
    wanted = {**patient, "mobile": identity.mobile_key(patient.get("mobile"))}
    found: dict[tuple[str | None, str | None], PossibleMatch] = {}
    with store.read() as s:
        for source in sources:
            for hit in source(s, wanted):
                key = (hit.uhid, None) if hit.uhid else (None, hit.local_ref)
                if key in found:
                    continue
                verdict = identity.judge(wanted, _fields(hit))
                if verdict is None:
                    continue
                why = verdict.why
                if hit.source == "lan" and hit.local_ref:
                    why = (*why, f"registered at {hit.local_ref.split('-', 1)[0]}")  # an offline number starts with its counter
                found[key] = PossibleMatch(hit, verdict.score, why)
    ranked = sorted(found.values(), key=lambda m: (-len(m.why), -m.score))
    return ranked[:limit]

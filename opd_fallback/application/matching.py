"""Is this new patient already registered? Checked before a registration is
saved, so the clerk can take the existing patient instead of charging twice
and leaving central to flag a duplicate after sync.

One function, :func:`possible_duplicates`, over any number of candidate
sources: this counter's registrations, the patient index (central's
patients) and the patients other counters of the LAN registered (pulled from
the hub) by default; a source is a callable ``(session, patient) -> hits``. A candidate is a possible match
when it has the same mobile and a similar name or age, or a very similar name
with the same sex and a close age. Candidates come by mobile and by name
prefix (fast at a million patients: F10 waits for this check); the names are
then compared with rapidfuzz.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from opd_fallback.store import search as patient_search
from opd_fallback.store.engine import Store
from opd_fallback.store.patient_index import PatientHit
from opd_fallback.store.search import name_score

Source = Callable[[Session, dict[str, Any]], list[PatientHit]]

SIMILAR_NAME = 75  # name_score (0-100) for "similar" when the mobile is the same
SAME_NAME = 90  # without the same mobile, the name must be this close (and sex, age agree)
AGE_SLACK_YEARS = 2


@dataclass(frozen=True)
class PossibleMatch:
    hit: PatientHit
    score: float  # name similarity, 0-100
    why: tuple[str, ...]  # "same mobile", "similar name", "same age"...


def _same_mobile_or_name(src: patient_search.Source, doc: str) -> Source:
    """A source over one kind of patient record: same mobile (indexed), or a name like it."""
    def find(session: Session, patient: dict[str, Any]) -> list[PatientHit]:
        hits: list[PatientHit] = []
        if patient.get("mobile"):
            hits = patient_search.search(session, str(patient["mobile"]), limit=50, fuzzy=False)
        name = str(patient.get("name") or "")
        return [h for h in hits + patient_search.search(session, name, limit=30, fuzzy=False)
                if h.source == src.name]
    find.__doc__ = doc
    return find


this_counter = _same_mobile_or_name(
    patient_search.LOCAL, "This counter's own registrations with the same mobile, or a name like it.")
patient_index = _same_mobile_or_name(
    patient_search.INDEX, "Central's patients (the offline index) with the same mobile, or a name like it.")
lan_counters = _same_mobile_or_name(
    patient_search.LAN, "Patients other counters of the LAN registered (shared through the hub): two "
    "counters never register one patient twice without the clerk seeing it.")


DEFAULT_SOURCES: tuple[Source, ...] = (this_counter, patient_index, lan_counters)


def _judge(patient: dict[str, Any], hit: PatientHit) -> PossibleMatch | None:
    score = name_score(str(patient.get("name") or ""), hit.name)
    same_mobile = bool(patient.get("mobile")) and patient.get("mobile") == hit.mobile
    age, sex = patient.get("age_years"), patient.get("sex")
    close_age = age is not None and hit.age_years is not None and abs(int(age) - hit.age_years) <= AGE_SLACK_YEARS
    same_sex = not sex or not hit.sex or sex == hit.sex
    why = []
    if same_mobile:
        why.append("same mobile")
    if score >= SIMILAR_NAME:
        why.append("same name" if score >= 99 else "similar name")
    if close_age:
        why.append("same age" if age == hit.age_years else "similar age")
    if hit.source == "lan" and hit.local_ref:
        why.append(f"registered at {hit.local_ref.split('-', 1)[0]}")  # an offline number starts with its counter
    if same_mobile and (score >= SIMILAR_NAME or close_age) and same_sex:
        return PossibleMatch(hit, score, tuple(why))
    if score >= SAME_NAME and same_sex and close_age and (
            not patient.get("mobile") or not hit.mobile or same_mobile):
        return PossibleMatch(hit, score, tuple(why))
    return None


def possible_duplicates(store: Store, patient: dict[str, Any], *,
                        sources: Sequence[Source] = DEFAULT_SOURCES, limit: int = 5) -> list[PossibleMatch]:
    """Registered patients this new ``patient`` (name, sex, age_years, mobile)
    may be, best first; empty when none. Reads only (a worker calls it)."""
    if not str(patient.get("name") or "").strip():
        return []
    mobile = re.sub(r"\D", "", str(patient.get("mobile") or ""))[-10:] or None
    wanted = {**patient, "mobile": mobile}
    found: dict[tuple[str | None, str | None], PossibleMatch] = {}
    with store.read() as s:
        for source in sources:
            for hit in source(s, wanted):
                key = (hit.uhid, None) if hit.uhid else (None, hit.local_ref)
                if key in found:
                    continue
                match = _judge(wanted, hit)
                if match is not None:
                    found[key] = match
    ranked = sorted(found.values(), key=lambda m: (-len(m.why), -m.score))
    return ranked[:limit]

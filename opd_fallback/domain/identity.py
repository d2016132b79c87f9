"""Is this patient someone we already know? The one rule, for everyone.

Central flags a new registration as ``possible_duplicate`` by it
(``central/dedupe.py``), and the counter warns the clerk by it before saving
(``application/matching.py``, over this counter's patients, central's index
and the LAN's), so the counter warns about exactly what central would flag:

- the same ABHA number is the same person;
- otherwise the same mobile number with a similar name and an age within two
  years (or an age not known on one side) is *possibly* the same person. A
  family shares one phone, so the mobile alone is not enough, and without the
  same mobile a similar name is not either (India has many Sunita Devis of 35).

Names are compared after expanding the abbreviations clerks use (Mohd/Md ->
Mohammad, Kr -> Kumar...) and dropping titles, with rapidfuzz's token-sort
ratio, which ignores word order ("Devi Sita" is "Sita Devi"). Mobiles are
compared as :func:`opd_fallback.domain.rules.mobile` writes them (+91, spaces
and a leading 0 do not matter). Ages in whole years from ``age_years``, the
birth date, or months / days (an infant is 0).

Pure: no I/O. The callers find the candidates (by mobile, by ABHA) in their own
database; :func:`judge` decides.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import SupportsInt

from rapidfuzz import fuzz

from opd_fallback.domain import rules

NAME_THRESHOLD = 85.0
AGE_TOLERANCE_YEARS = 2

_ABBREVIATIONS = {
    "md": "mohammad",
    "mohd": "mohammad",
    "mohamad": "mohammad",
    "mohammed": "mohammad",
    "muhammad": "mohammad",
    "muhammed": "mohammad",
    "mohmmad": "mohammad",
    "kr": "kumar",
    "kum": "kumar",
    "kmr": "kumar",
    "pd": "prasad",
    "prsd": "prasad",
    "sh": "shri",
    "shree": "shri",
    "sri": "shri",
    "smt": "",
    "mr": "",
    "mrs": "",
    "ms": "",
    "km": "kumari",
    "ch": "chand",
    "chd": "chand",
}
_NON_LETTERS = re.compile(r"[^a-z ]+")
_NOT_DIGITS = re.compile(r"\D")


def normalise_name(name: str) -> str:
    """Lower-case, drop punctuation and titles, expand common abbreviations."""
    words = _NON_LETTERS.sub(" ", name.lower().replace(".", " ")).split()
    out = [_ABBREVIATIONS.get(w, w) for w in words]
    return " ".join(w for w in out if w)


def mobile_key(value: object) -> str | None:
    """A mobile as compared: as ``rules.mobile`` writes it; a number it refuses
    (an old record's) by its digits, so equal numbers still compare equal."""
    if value is None:
        return None
    try:
        return rules.mobile(str(value))
    except ValueError:
        return _NOT_DIGITS.sub("", str(value)) or None


def age_in_years(p: Mapping[str, object], today: date | None = None) -> int | None:
    """Whole years from age_years or birth_date; infants (months or days) count as 0."""
    years = p.get("age_years")
    if years is not None:
        if isinstance(years, str | SupportsInt):
            return int(years)
        raise TypeError(f"age_years must be a number, not {type(years).__name__}")
    bd = p.get("birth_date")
    if bd:
        born = bd if isinstance(bd, date) else date.fromisoformat(str(bd))
        today = today or date.today()
        return today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    if p.get("age_months") is not None or p.get("age_days") is not None:
        return 0
    return None


def name_score(a: str, b: str) -> float:
    """How alike two names are, 0-100, as the rule compares them."""
    na, nb = normalise_name(a), normalise_name(b)
    if not na or not nb:
        return 0.0
    return float(fuzz.token_sort_ratio(na, nb))


@dataclass(frozen=True, slots=True)
class Verdict:
    """Why ``old`` may be the patient ``new`` is: the name's score and the reasons in words."""

    score: float  # name similarity, 0-100
    why: tuple[str, ...]  # "same ABHA number", "same mobile", "similar name", "same age"...


def alike(new: Mapping[str, object], old: Mapping[str, object], *, today: date | None = None) -> Verdict | None:
    """The rule's second half, for two patients already known to share a mobile:
    a similar name and an age within two years (or not known on one side)."""
    score = name_score(str(new.get("name") or ""), str(old.get("name") or ""))
    if score < NAME_THRESHOLD:
        return None
    age_new, age_old = age_in_years(new, today), age_in_years(old, today)
    ages: tuple[str, ...] = ()
    if age_new is not None and age_old is not None:
        if abs(age_new - age_old) > AGE_TOLERANCE_YEARS:
            return None
        ages = ("same age" if age_new == age_old else "similar age",)
    return Verdict(score, ("same name" if score >= 99 else "similar name", *ages))


def judge(new: Mapping[str, object], old: Mapping[str, object], *, today: date | None = None) -> Verdict | None:
    """The rule: a :class:`Verdict` when ``old`` may be the same person as ``new``, else None.
    Each is a mapping of patient fields (name, mobile, abha_number, age_years,
    age_months, age_days, birth_date)."""
    abha = new.get("abha_number")
    if abha and abha == old.get("abha_number"):
        both = alike(new, old, today=today)
        score = both.score if both else name_score(str(new.get("name") or ""), str(old.get("name") or ""))
        return Verdict(score, ("same ABHA number", *(both.why if both else ())))
    mobile = mobile_key(new.get("mobile"))
    if mobile is None or mobile != mobile_key(old.get("mobile")):
        return None
    verdict = alike(new, old, today=today)
    return None if verdict is None else Verdict(verdict.score, ("same mobile", *verdict.why))

"""Is this newly registered patient someone we already know?

Same ABHA number is the same person. Otherwise the same mobile number with a
similar name and an age within two years is *possibly* the same person (a
family shares one phone, so mobile alone is not enough). Names are compared
after expanding the abbreviations clerks use (Mohd/Md -> Mohammad, Kr ->
Kumar...) with rapidfuzz's token-sort ratio, which ignores word order.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from rapidfuzz import fuzz

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


def normalise_name(name: str) -> str:
    """Lower-case, drop punctuation and titles, expand common abbreviations."""
    words = _NON_LETTERS.sub(" ", name.lower().replace(".", " ")).split()
    out = [_ABBREVIATIONS.get(w, w) for w in words]
    return " ".join(w for w in out if w)


def age_in_years(p: dict[str, Any], today: date | None = None) -> int | None:
    """Whole years from age_years or birth_date; infants count as 0."""
    if p.get("age_years") is not None:
        return int(p["age_years"])
    bd = p.get("birth_date")
    if bd:
        born = bd if isinstance(bd, date) else date.fromisoformat(str(bd))
        today = today or date.today()
        return today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    if p.get("age_months") is not None or p.get("age_days") is not None:
        return 0
    return None


def similar(new: dict[str, Any], old: dict[str, Any]) -> bool:
    """Same mobile is checked by the caller; here: similar name and close age."""
    a, b = normalise_name(new["name"]), normalise_name(old["name"])
    if not a or not b:
        return False
    if fuzz.token_sort_ratio(a, b) < NAME_THRESHOLD:
        return False
    age_new, age_old = age_in_years(new), age_in_years(old)
    if age_new is None or age_old is None:
        return True
    return abs(age_new - age_old) <= AGE_TOLERANCE_YEARS

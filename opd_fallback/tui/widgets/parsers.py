"""Turning what a clerk typed into canonical values, with the domain rules.

Short forms are accepted where a clerk would use them ("m" for M, "s" for
S/O, "b" for bpl, "u" for upi); every rejection is a ``ValueError`` whose
sentence the form shows (and translates).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from opd_fallback.domain import rules


def choice(options: Sequence[str], aliases: dict[str, str] | None = None) -> Callable[[str], str]:
    """A parser accepting an option, an alias, or a unique prefix (case-insensitive)."""

    def parse(text: str) -> str:
        t = text.strip().lower()
        if aliases and t in aliases:
            return aliases[t]
        for o in options:
            if t == o.lower():
                return o
        hits = [o for o in options if o.lower().startswith(t)]
        if len(hits) == 1:
            return hits[0]
        raise ValueError(f"must be one of {', '.join(options)}")

    return parse


sex = choice(rules.SEXES, {"male": "M", "female": "F", "other": "O"})
relation = choice(
    rules.GUARDIAN_RELATIONS,
    {"s": "S/O", "so": "S/O", "d": "D/O", "do": "D/O", "w": "W/O", "wo": "W/O", "c": "C/O", "co": "C/O"},
)
category = choice(rules.CATEGORIES)
mode = choice(rules.PAYMENT_MODES, {"c": "cash", "k": "card"})
# a lab order may be saved unpaid, to pay at the billing desk (no payment is recorded)
PAY_AT_BILLING = "billing"
lab_mode = choice((*rules.PAYMENT_MODES, PAY_AT_BILLING), {"c": "cash", "k": "card", "later": PAY_AT_BILLING})
priority = choice(rules.PRIORITIES)


def whole(lo: int, hi: int, what: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        t = text.strip()
        if not t.isdigit():
            raise ValueError("must be a whole number")
        value = int(t)
        if not lo <= value <= hi:
            raise ValueError(f"age in {what} must be between {lo} and {hi}")
        return value

    return parse


age_years = whole(0, rules.MAX_AGE_YEARS, "years")
age_months = whole(0, 11, "months")
age_days = whole(0, 31, "days")


def name(text: str) -> str:
    return rules.latin_name(text)


def name_local(text: str) -> str | None:
    return rules.local_name(text)


def text(text: str) -> str | None:
    return rules.optional_text(text)


def rupees(text: str) -> int:
    return rules.parse_rupees(text)


def pin(text: str) -> str:
    """A PIN's shape (4 to 8 digits); whose it is, is checked on save."""
    t = text.strip()
    if not (t.isdigit() and 4 <= len(t) <= 8):
        raise ValueError("must be 4 to 8 digits")
    return t

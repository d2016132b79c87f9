"""Field rules shared by the counter, the CSV import and the central server.

Each normaliser takes what a clerk typed and returns the canonical value, or
raises ``ValueError`` with a sentence a counter clerk understands. They are
plain functions so pydantic models, the CSV importer and the TUI's inline
validation all use exactly the same rule.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date

from opd_fallback.domain import registry

NAME_MAX = 100
_SPACES = re.compile(r"\s+")
# Latin letters (with accents), spaces and the punctuation found in Indian names
# as written in English: "Mohd. Ali", "D'Souza", "Ram-Prasad".
_LATIN_NAME = re.compile(r"^[A-Za-z\u00C0-\u024F][A-Za-z\u00C0-\u024F .'\-]*$")
_MOBILE_JUNK = re.compile(r"[\s\-().]")
_DIGITS = re.compile(r"^[0-9]+\Z")  # ASCII only: \d would accept Devanagari digits

SEXES = ("M", "F", "O")
GUARDIAN_RELATIONS = ("S/O", "D/O", "W/O", "C/O")
CATEGORIES = ("general", "bpl", "ayushman", "staff", "other")
PAYMENT_MODES = ("cash", "upi", "card", "waived")
MODES_NEEDING_REF = ("upi", "card")
VISIT_TYPES = ("new", "revisit")
PRIORITIES = ("routine", "urgent")
# the op kinds (declared in domain/registry.py, which loads no pydantic: `status` lists them)
OP_KINDS = registry.NAMES
MAX_AGE_YEARS = 130


def clean_text(value: str) -> str:
    """Trim, collapse inner white space and NFC-normalise (so the same name typed
    on two keyboards compares equal)."""
    return _SPACES.sub(" ", unicodedata.normalize("NFC", value)).strip()


def optional_text(value: str | None, *, max_len: int = 200) -> str | None:
    """Empty means 'not given'."""
    if value is None:
        return None
    text = clean_text(value)
    if not text:
        return None
    if len(text) > max_len:
        raise ValueError(f"is too long: at most {max_len} characters")
    return text


def latin_name(value: str) -> str:
    """The patient's name in Latin script, as the central system stores it."""
    text = clean_text(value)
    if not text:
        raise ValueError("is required")
    if len(text) > NAME_MAX:
        raise ValueError(f"is too long: at most {NAME_MAX} characters")
    if not _LATIN_NAME.match(text):
        raise ValueError(
            "must be written in English letters (A-Z); put the Hindi name in 'name in local script'"
        )
    return text


def local_name(value: str | None) -> str | None:
    """The name in any script (usually Devanagari); optional."""
    text = optional_text(value, max_len=NAME_MAX)
    if text is not None and any(unicodedata.category(c).startswith("C") for c in text):
        raise ValueError("contains characters that cannot be printed")
    return text


def mobile(value: str | None) -> str | None:
    """Indian mobile: accepts +91, 0091, 91, a leading 0, spaces and dashes;
    returns 10 digits starting with 6-9."""
    if value is None:
        return None
    text = _MOBILE_JUNK.sub("", str(value))
    if not text:
        return None
    if text.startswith("+91"):
        text = text[3:]
    elif text.startswith("0091"):
        text = text[4:]
    elif len(text) == 12 and text.startswith("91"):
        text = text[2:]
    elif len(text) == 11 and text.startswith("0"):
        text = text[1:]
    if not _DIGITS.match(text):
        raise ValueError("must contain only digits, e.g. 98765 43210")
    if len(text) != 10:
        raise ValueError(f"must have 10 digits (got {len(text)})")
    if text[0] not in "6789":
        raise ValueError("must start with 6, 7, 8 or 9")
    return text


def abha_number(value: str | None) -> str | None:
    """ABHA (Ayushman Bharat Health Account) number: 14 digits, dashes allowed."""
    if value is None:
        return None
    text = re.sub(r"[\s\-]", "", str(value))
    if not text:
        return None
    if not _DIGITS.match(text):
        raise ValueError("must contain only digits")
    if len(text) != 14:
        raise ValueError(f"must have 14 digits (got {len(text)})")
    return text


def pin_code(value: str | None) -> str | None:
    """Indian postal PIN code: 6 digits, first digit 1-9."""
    if value is None:
        return None
    text = re.sub(r"\s", "", str(value))
    if not text:
        return None
    if not _DIGITS.match(text) or len(text) != 6:
        raise ValueError("must be 6 digits, e.g. 226003")
    if text[0] == "0":
        raise ValueError("cannot start with 0")
    return text


def code(value: str, *, what: str = "code") -> str:
    """Master-data codes are short upper-case tokens; we upper-case for the clerk."""
    text = clean_text(str(value)).upper()
    if not text:
        raise ValueError("is required")
    if len(text) > 32 or not re.match(r"^[A-Z0-9][A-Z0-9_\-./]*$", text):
        raise ValueError(f"is not a valid {what}")
    return text


def age_parts(years: int | None, months: int | None, days: int | None) -> None:
    """Range checks for an age given as years / months / days."""
    if years is not None and not 0 <= years <= MAX_AGE_YEARS:
        raise ValueError(f"age in years must be between 0 and {MAX_AGE_YEARS}")
    if months is not None and not 0 <= months <= 11:
        raise ValueError("age in months must be between 0 and 11 (use years for more)")
    if days is not None and not 0 <= days <= 31:
        raise ValueError("age in days must be between 0 and 31 (use months for more)")


def birth_date(value: date, *, today: date | None = None) -> date:
    today = today or date.today()
    if value > today:
        raise ValueError("cannot be in the future")
    if today.year - value.year > MAX_AGE_YEARS:
        raise ValueError(f"means an age over {MAX_AGE_YEARS} years")
    return value


def format_paise(paise: int) -> str:
    """1250 -> '₹12.50'. Integer arithmetic only."""
    sign = "-" if paise < 0 else ""
    rupees, rest = divmod(abs(paise), 100)
    return f"{sign}₹{rupees:,}.{rest:02d}"


_RUPEES = re.compile(r"^(\d{1,9})(?:\.(\d{1,2}))?$")


def parse_rupees(text: str) -> int:
    """'12', '12.5', '₹12.50', '1,200' -> paise as int, without floats."""
    cleaned = str(text).replace("₹", "").replace(",", "").replace("Rs", "").strip()
    m = _RUPEES.match(cleaned)
    if not m:
        raise ValueError("must be an amount in rupees, e.g. 10 or 10.50")
    whole, frac = m.group(1), (m.group(2) or "").ljust(2, "0")
    return int(whole) * 100 + int(frac)


def age_label(years: int | None, months: int | None = None, days: int | None = None) -> str:
    """An age as printed and listed: ``42Y``, ``8M`` (an 8-month-old, not ``0D``),
    ``1Y 6M``, ``12D``; ``?`` when nothing is known."""
    if years is None and months is None and days is None:
        return "?"
    parts = [f"{v}{u}" for v, u in ((years, "Y"), (months, "M"), (days, "D")) if v]
    return " ".join(parts) or "0D"

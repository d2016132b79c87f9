"""Every field rule with good and bad values, and properties: no input, however
odd, raises anything but ValueError; a normalised value normalises to itself."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opd_fallback.domain import rules

ANY_TEXT = st.text(alphabet=st.characters(codec=None), max_size=60) | st.sampled_from(
    ["", " ", "\x00", "\u200b", "+91", "0091", "००९१", "९८७६५४३२१०", "１２３", "\n9876543210\n", "ǅ", "ß"]
)


# --- names -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("Ram Kumar", "Ram Kumar"),
        ("  ram   kumar ", "ram kumar"),
        ("Mohd. Ali", "Mohd. Ali"),
        ("D'Souza", "D'Souza"),
        ("Ram-Prasad", "Ram-Prasad"),
        ("Jose\u0301", "Jos\u00e9"),  # NFC: decomposed accent composed
    ],
)
def test_latin_name_good(raw: str, want: str) -> None:
    assert rules.latin_name(raw) == want


@pytest.mark.parametrize(
    ("raw", "reason"),
    [("", "required"), ("   ", "required"), ("राम", "English letters"), ("Ram2", "English letters"),
     ("-Ram", "English letters"), ("A" * 101, "too long"), ("Ram\tKumar\x00", "English letters")],
)
def test_latin_name_bad(raw: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        rules.latin_name(raw)


def test_local_name() -> None:
    assert rules.local_name("  राम   कुमार ") == "राम कुमार"
    assert rules.local_name("") is None and rules.local_name(None) is None
    assert rules.local_name("Ram") == "Ram"
    with pytest.raises(ValueError, match="cannot be printed"):
        rules.local_name("राम\u200bकुमार")
    with pytest.raises(ValueError, match="too long"):
        rules.local_name("र" * 101)


# --- mobile ------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    ["9876543210", "+919876543210", "+91 98765 43210", "0091-98765-43210", "09876543210",
     "919876543210", "98765-43210", "(98765) 43210", " 98765 43210 "],
)
def test_mobile_forms_normalise(raw: str) -> None:
    assert rules.mobile(raw) == "9876543210"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [("12345", "10 digits"), ("5876543210", "start with 6, 7, 8 or 9"), ("98765432101", "10 digits"),
     ("98765abc10", "only digits"), ("९८७६५४३२१०", "only digits"), ("+1 9876543210", "only digits"),
     ("+9198765", "10 digits")],
)
def test_mobile_bad(raw: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        rules.mobile(raw)


def test_mobile_empty_is_not_given() -> None:
    assert rules.mobile(None) is None and rules.mobile("") is None and rules.mobile(" - ") is None


@given(st.sampled_from("6789"), st.text(alphabet="0123456789", min_size=9, max_size=9),
       st.sampled_from(["", "+91", "+91 ", "0091", "0", "91"]), st.sampled_from(["", " ", "-"]))
def test_mobile_decorated_valid_numbers_round_trip(first: str, rest: str, prefix: str, sep: str) -> None:
    number = first + rest
    decorated = prefix + number[:5] + sep + number[5:]
    assert rules.mobile(decorated) == number
    assert rules.mobile(number) == number


# --- ABHA, PIN code, codes -------------------------------------------------------


def test_abha() -> None:
    assert rules.abha_number("12-3456-7890-1234") == "12345678901234"
    assert rules.abha_number("") is None
    for bad, reason in [("1234", "14 digits"), ("12-3456-7890-123X", "only digits"),
                        ("१२३४५६७८९०१२३४", "only digits")]:
        with pytest.raises(ValueError, match=reason):
            rules.abha_number(bad)


def test_pin_code() -> None:
    assert rules.pin_code("226 003") == "226003"
    assert rules.pin_code(None) is None
    for bad, reason in [("026003", "cannot start with 0"), ("22600", "6 digits"), ("2260031", "6 digits"),
                        ("२२६००३", "6 digits"), ("22600a", "6 digits")]:
        with pytest.raises(ValueError, match=reason):
            rules.pin_code(bad)


def test_codes() -> None:
    assert rules.code(" med ") == "MED"
    assert rules.code("med-u1") == "MED-U1"
    assert rules.code("PS-MP") == "PS-MP"
    for bad in ["", "  ", "-MED", "M E D", "मेड", "A" * 33, "MED;LFT"]:
        with pytest.raises(ValueError):
            rules.code(bad, what="department code")


# --- age, dates, money ----------------------------------------------------------


def test_age_parts() -> None:
    rules.age_parts(0, 0, 0)
    rules.age_parts(130, 11, 31)
    rules.age_parts(None, None, None)
    for args, reason in [((131, None, None), "years"), ((-1, None, None), "years"),
                         ((None, 12, None), "months"), ((None, None, 32), "days")]:
        with pytest.raises(ValueError, match=reason):
            rules.age_parts(*args)


def test_birth_date() -> None:
    today = date(2026, 11, 26)
    assert rules.birth_date(date(2000, 1, 1), today=today) == date(2000, 1, 1)
    assert rules.birth_date(today, today=today) == today
    with pytest.raises(ValueError, match="future"):
        rules.birth_date(today + timedelta(days=1), today=today)
    with pytest.raises(ValueError, match="over 130"):
        rules.birth_date(date(1890, 1, 1), today=today)


@pytest.mark.parametrize(("paise", "text"), [(0, "₹0.00"), (5, "₹0.05"), (1250, "₹12.50"),
                                             (12345678, "₹1,23,456.78".replace("1,23,456", "123,456")),
                                             (-1000, "-₹10.00")])
def test_format_paise(paise: int, text: str) -> None:
    assert rules.format_paise(paise) == text


@pytest.mark.parametrize(("text", "paise"), [("12", 1200), ("12.5", 1250), ("₹12.50", 1250), ("1,200", 120000),
                                             ("Rs 10", 1000), ("0.05", 5), (" 7 ", 700)])
def test_parse_rupees_good(text: str, paise: int) -> None:
    assert rules.parse_rupees(text) == paise
    assert isinstance(rules.parse_rupees(text), int)


@pytest.mark.parametrize("text", ["", "abc", "12.505", "-5", "1e3", "12.", ".5", "1234567890"])
def test_parse_rupees_bad(text: str) -> None:
    with pytest.raises(ValueError, match="amount in rupees"):
        rules.parse_rupees(text)


@given(st.integers(min_value=0, max_value=999_999_999_99))
def test_paise_round_trip(paise: int) -> None:
    assert rules.parse_rupees(rules.format_paise(paise)) == paise


# --- properties over odd input ------------------------------------------------------

TEXT_RULES = [rules.latin_name, rules.local_name, rules.mobile, rules.abha_number, rules.pin_code,
              rules.code, rules.optional_text, rules.parse_rupees]


@pytest.mark.parametrize("rule", TEXT_RULES, ids=lambda f: f.__name__)
@given(value=ANY_TEXT)
def test_odd_input_only_ever_raises_value_error(rule, value: str) -> None:
    try:
        out = rule(value)
    except ValueError as exc:
        assert str(exc)  # always says why
        return
    # whatever is accepted is already normal: normalising it again changes nothing
    if isinstance(out, str):
        assert rule(out) == out


@given(st.integers(min_value=-10**6, max_value=10**6) | st.none(),
       st.integers(min_value=-100, max_value=100) | st.none(),
       st.integers(min_value=-100, max_value=100) | st.none())
def test_age_parts_property(y: int | None, m: int | None, d: int | None) -> None:
    ok = (y is None or 0 <= y <= 130) and (m is None or 0 <= m <= 11) and (d is None or 0 <= d <= 31)
    try:
        rules.age_parts(y, m, d)
        assert ok
    except ValueError:
        assert not ok

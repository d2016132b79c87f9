"""One identity rule (domain/identity.py): central flags a registration as a
possible duplicate by it, and the counter warns the clerk by it before saving,
so the two agree: checked through both entry points (central over HTTP, the
counter's duplicate check over its patient index)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from opd_fallback.application.matching import possible_duplicates
from opd_fallback.domain import identity
from opd_fallback.store import open_store, patient_index
from tests.central.util import factory, one
from tests.helpers.central import run_central

# (already registered, being registered now, the same person?)
CASES: list[tuple[dict[str, Any], dict[str, Any], bool]] = [
    # the mobile as typed (+91, spaces), a misspelt name, a year apart
    ({"name": "Ram Kumar", "sex": "M", "age_years": 42, "mobile": "9876500001"},
     {"name": "Ram Kumaar", "sex": "M", "age_years": 41, "mobile": "+91 98765 00001"}, True),
    # clerks' abbreviations and word order
    ({"name": "Mohammad Ali", "sex": "M", "age_years": 61, "mobile": "9876500002"},
     {"name": "Ali Mohd.", "sex": "M", "age_years": 60, "mobile": "09876500002"}, True),
    # the sex is not part of the rule (a slip with the wrong box ticked is still the patient)
    ({"name": "Sunita Devi", "sex": "F", "age_years": 35, "mobile": "9876500003"},
     {"name": "Sunita Devi", "sex": "M", "age_years": 35, "mobile": "9876500003"}, True),
    # the age from the birth date
    ({"name": "Geeta Rani", "sex": "F", "age_years": 50, "mobile": "9876500004"},
     {"name": "Geeta Rani", "sex": "F", "age_years": None, "birth_date": f"{date.today().year - 50}-01-01",
      "mobile": "9876500004"}, True),
    # the same name and age without the same mobile: not flagged (the counter's old rule warned)
    ({"name": "Kamla Devi", "sex": "F", "age_years": 45, "mobile": "9876500005"},
     {"name": "Kamla Devi", "sex": "F", "age_years": 45}, False),
    # a family on one phone: the same mobile, another name (the counter's old rule warned on the age)
    ({"name": "Sita Devi", "sex": "F", "age_years": 40, "mobile": "9876500006"},
     {"name": "Ram Prasad", "sex": "M", "age_years": 41, "mobile": "9876500006"}, False),
    # the same name on the same phone, but a generation apart
    ({"name": "Ram Prasad", "sex": "M", "age_years": 70, "mobile": "9876500007"},
     {"name": "Ram Prasad", "sex": "M", "age_years": 40, "mobile": "9876500007"}, False),
]


@pytest.fixture(scope="module")
def central(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with run_central(tmp_path_factory.mktemp("central")) as server:
        yield server


def _clean(p: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in p.items() if v is not None}


def test_the_rule_in_words() -> None:
    assert identity.judge({"name": "Ali Mohd.", "mobile": "+91 98765 00002", "age_years": 60},
                          {"name": "Mohammad Ali", "mobile": "9876500002", "age_years": 61}
                          ) == identity.Verdict(100.0, ("same mobile", "same name", "similar age"))
    assert identity.judge({"name": "X Y", "abha_number": "12345678901234", "mobile": "9000000001"},
                          {"name": "Other Name", "abha_number": "12345678901234", "mobile": "9000000002"}
                          ).why == ("same ABHA number",)
    assert identity.age_in_years({"age_months": 8}) == 0 == identity.age_in_years({"age_days": 3})
    assert identity.mobile_key("+91 98765-43210") == "9876543210" == identity.mobile_key("098765 43210")
    assert identity.mobile_key("12345") == "12345"  # refused by rules.mobile: compared by its digits


@pytest.mark.parametrize(("old", "new", "same"), CASES,
                         ids=["typed-mobile", "abbreviation", "other-sex", "birth-date", "no-mobile", "family",
                              "generation"])
def test_the_counter_warns_exactly_when_central_flags(central: Any, tmp_path: Path, old: dict[str, Any],
                                                      new: dict[str, Any], same: bool) -> None:
    f = factory()
    with central.client() as http:
        first = one(http, f.register(**{"guardian_relation": None, "guardian_name": None, **old}))
        assert first["status"] == "applied", first
        second = one(http, f.register(**{"guardian_relation": None, "guardian_name": None, "mobile": None, **new}))
    flagged = second["status"] == "conflict" and second["error"]["code"] == "possible_duplicate"
    assert flagged == same, second
    if same:
        assert [c["uhid"] for c in second["error"]["candidates"]] == [first["result"]["uhid"]]

    store = open_store(tmp_path / "counter.db")
    try:
        with store.write() as s:
            patient_index.upsert_many(s, [{"uhid": first["result"]["uhid"], "version": 1, **old}])
        warned = possible_duplicates(store, _clean(new))
    finally:
        store.close()
    assert [m.hit.uhid for m in warned] == ([first["result"]["uhid"]] if same else [])

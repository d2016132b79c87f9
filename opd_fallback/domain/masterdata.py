"""Master data at the counter: departments, units, tests, fees, exemptions.

Kept from the last refresh. Codes are checked against it when the counter has
it; without it (a counter that never reached central) codes are accepted as
typed and central checks them on sync.

Exemptions (contract 1.1, optional in master data) say which patient
categories pay nothing for which fee codes. :func:`is_exempt` is the one rule
every screen and the waiver logic use; when central sends no exemptions it
falls back to :data:`DEFAULT_EXEMPTIONS` (BPL and staff patients pay no OPD
registration fee).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

from opd_fallback.domain.contract import Department, Exemption, Fee, MasterData, Test
from opd_fallback.domain.errors import DomainError

FEE_NEW = "OPD-NEW"
FEE_REVISIT = "OPD-REVISIT"
# Used when central's master data says nothing about exemptions (no
# ``exemptions`` key, as a 1.0 server sends): BPL and staff pay no OPD fee.
DEFAULT_EXEMPTIONS: tuple[Exemption, ...] = (
    Exemption(category="bpl", fee_codes=[FEE_NEW, FEE_REVISIT]),
    Exemption(category="staff", fee_codes=[FEE_NEW, FEE_REVISIT]),
)


def parse_exemptions(raw: object) -> tuple[Exemption, ...] | None:
    """Master data's ``exemptions`` as models (None when the key is absent or null).
    Fee codes are compared upper-case, categories lower-case, as the counter
    writes them."""
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise ValueError("exemptions must be a list of {category, fee_codes}")
    out = []
    for item in raw:
        e = item if isinstance(item, Exemption) else Exemption.model_validate(item)
        out.append(Exemption(category=e.category.strip().lower(),
                             fee_codes=[c.strip().upper() for c in e.fee_codes]))
    return tuple(out)


def is_exempt(category: str | None, fee_code: str, exemptions: Iterable[Exemption] | None = None) -> bool:
    """True when a patient of ``category`` pays nothing for ``fee_code``.

    ``exemptions`` is master data's list (None: central sent none, so the
    defaults apply; an empty list: nobody is exempt). Pure, so the counter UI
    can call it for every line it shows."""
    if not category:
        return False
    rules = DEFAULT_EXEMPTIONS if exemptions is None else exemptions
    cat, code = category.strip().lower(), fee_code.strip().upper()
    return any(e.category.strip().lower() == cat and code in {c.strip().upper() for c in e.fee_codes}
               for e in rules)


@dataclass(frozen=True)
class FeeQuote:
    code: str
    name: str
    price_paise: int  # the list price
    due_paise: int  # what this patient pays (0 when exempt)
    exempt: bool


@dataclass
class Catalog:
    """Fast lookups over one master data version."""

    data: MasterData

    @cached_property
    def departments(self) -> dict[str, Department]:
        return {d.code: d for d in self.data.departments}

    @cached_property
    def tests(self) -> dict[str, Test]:
        return {t.code: t for t in self.data.tests}

    @cached_property
    def fees(self) -> dict[str, Fee]:
        return {f.code: f for f in self.data.fees}

    def check_department(self, code: str, unit: str | None) -> None:
        dept = self.departments.get(code)
        if dept is None:
            raise DomainError.field("department", f"'{code}' is not a department here", code="unknown_department")
        if unit and dept.units and unit not in {u.code for u in dept.units}:
            raise DomainError.field("unit", f"'{unit}' is not a unit of {dept.name}", code="unknown_unit")

    def check_tests(self, codes: list[str]) -> None:
        unknown = [c for c in codes if c not in self.tests]
        if unknown:
            raise DomainError.field("tests", f"unknown test code: {', '.join(unknown)}", code="unknown_test")

    def tests_total(self, codes: list[str]) -> int:
        return sum(self.tests[c].price_paise for c in codes if c in self.tests)

    @cached_property
    def exemptions(self) -> tuple[Exemption, ...] | None:
        return parse_exemptions(self.data.exemptions)

    def is_exempt(self, category: str | None, fee_code: str) -> bool:
        return is_exempt(category, fee_code, self.exemptions)

    def opd_fee(self, visit_type: str, category: str = "general") -> FeeQuote | None:
        code = FEE_NEW if visit_type == "new" else FEE_REVISIT
        fee = self.fees.get(code) or self.fees.get(FEE_NEW)
        if fee is None:
            return None
        exempt = self.is_exempt(category, fee.code)
        return FeeQuote(fee.code, fee.name, fee.price_paise, 0 if exempt else fee.price_paise, exempt)

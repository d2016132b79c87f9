"""Master data at the counter: departments, units, tests, fees, exemptions.

Kept from the last refresh. Codes are checked against it when the counter has
it; without it (a counter that never reached central) codes are accepted as
typed and central checks them on sync.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from opd_fallback.domain.contract import Department, Fee, MasterData, Test
from opd_fallback.domain.errors import DomainError

# Used when central's master data says nothing about exemptions (contract v1 has none).
DEFAULT_EXEMPT_CATEGORIES = ("bpl", "staff")
FEE_NEW = "OPD-NEW"
FEE_REVISIT = "OPD-REVISIT"


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

    def is_exempt(self, category: str, fee_code: str) -> bool:
        if self.data.exemptions is not None:
            return any(e.category == category and fee_code in e.fee_codes for e in self.data.exemptions)
        return category in DEFAULT_EXEMPT_CATEGORIES

    def opd_fee(self, visit_type: str, category: str = "general") -> FeeQuote | None:
        code = FEE_NEW if visit_type == "new" else FEE_REVISIT
        fee = self.fees.get(code) or self.fees.get(FEE_NEW)
        if fee is None:
            return None
        exempt = self.is_exempt(category, fee.code)
        return FeeQuote(fee.code, fee.name, fee.price_paise, 0 if exempt else fee.price_paise, exempt)

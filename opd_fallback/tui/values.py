"""The values the counter screens handle, from below the UI: the one door from
``tui/screens`` and ``tui/widgets`` to ``application/`` and ``store/``
(import-linter forbids them any other; ``tui/ports.py`` is the backend they call).

Screens import these names from here, never from their home modules, so a move
below the UI changes this table, not the screens. Each name is loaded from its
home module the first time it is asked for (PEP 562 ``__getattr__``), not when
this module is: the login screen names ``PinRefused`` without the store
(SQLAlchemy) loading before its first paint, and the review screen's values
load when F11 opens it, as they did before the seam. mypy reads the imports
below; ``tests/tui/test_values.py`` checks every name of ``_HOME`` resolves.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opd_fallback.application.billing import Account, OrderLine
    from opd_fallback.application.clock import ClockReport
    from opd_fallback.application.collection import REASONS, CollectionDesk, Recorded
    from opd_fallback.application.daytotals import CashSummary
    from opd_fallback.application.matching import PossibleMatch
    from opd_fallback.application.review import (
        Decision,
        ReviewItem,
        ReviewService,
        Supervisor,
        age_words,
        parse_value,
    )
    from opd_fallback.application.services import PaymentInput
    from opd_fallback.store.engine import Store
    from opd_fallback.store.failures import StorageProblem, explain
    from opd_fallback.store.operators import PinRefused, validate_pin
    from opd_fallback.store.patient_index import PatientHit
    from opd_fallback.store.samples import Tube
    from opd_fallback.store.states import SYNCED

# name -> its home module
_HOME: dict[str, str] = {
    "Account": "opd_fallback.application.billing",
    "OrderLine": "opd_fallback.application.billing",
    "ClockReport": "opd_fallback.application.clock",
    "REASONS": "opd_fallback.application.collection",
    "CollectionDesk": "opd_fallback.application.collection",
    "Recorded": "opd_fallback.application.collection",
    "CashSummary": "opd_fallback.application.daytotals",
    "PossibleMatch": "opd_fallback.application.matching",
    "Decision": "opd_fallback.application.review",
    "ReviewItem": "opd_fallback.application.review",
    "ReviewService": "opd_fallback.application.review",
    "Supervisor": "opd_fallback.application.review",
    "age_words": "opd_fallback.application.review",
    "parse_value": "opd_fallback.application.review",
    "PaymentInput": "opd_fallback.application.services",
    "StorageProblem": "opd_fallback.store.failures",
    "explain": "opd_fallback.store.failures",
    "Store": "opd_fallback.store.engine",
    "PinRefused": "opd_fallback.store.operators",
    "validate_pin": "opd_fallback.store.operators",
    "PatientHit": "opd_fallback.store.patient_index",
    "Tube": "opd_fallback.store.samples",
    "SYNCED": "opd_fallback.store.states",
}

__all__ = [
    "REASONS", "SYNCED", "Account", "CashSummary", "ClockReport", "CollectionDesk", "Decision", "OrderLine",
    "PatientHit", "PaymentInput", "PinRefused", "PossibleMatch", "Recorded", "ReviewItem", "ReviewService",
    "StorageProblem", "Store", "Supervisor", "Tube", "age_words", "explain", "parse_value", "validate_pin",
]

if not TYPE_CHECKING:
    def __getattr__(name: str) -> object:
        home = _HOME.get(name)
        if home is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home), name)
        globals()[name] = value  # asked once
        return value

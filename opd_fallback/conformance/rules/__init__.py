"""The rules of the central sync contract (1.2), each checked from outside.

A rule is a function of the run's :class:`~opd_fallback.conformance.context.Ctx`
that returns when the server kept it and raises ``Failed`` (with what was sent
and what came back) or ``Skipped`` (with why). Rules run in the order written
here; a rule that needs a record another made (the test patient, its visit)
gets it from the context, made once, and is skipped if it could not be made.
Each rule's text is the contract's sentence it checks, in short.

The rules live in modules by subject (``protocol``, ``records``, ``server``),
imported here in the order they run; ``base`` holds ``Rule`` and ``RULES``.
"""

from opd_fallback.conformance.rules import protocol, records, server  # noqa: F401  (registers, in order)
from opd_fallback.conformance.rules.base import MAX_INT, RULES, Rule, rule

__all__ = ["MAX_INT", "RULES", "Rule", "rule"]

"""A rule: its id, the contract's sentence it checks and its check; ``RULES`` in
the order they are registered (and run); helpers reading an op's result."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from opd_fallback.conformance.context import Ctx
from opd_fallback.conformance.jsontypes import UncheckedObject

MAX_INT = 2**53 - 1


@dataclass(frozen=True)
class Rule:
    id: str
    text: str
    check: Callable[[Ctx], None]


RULES: list[Rule] = []


def rule(rule_id: str, text: str) -> Callable[[Callable[[Ctx], None]], Callable[[Ctx], None]]:
    def add(fn: Callable[[Ctx], None]) -> Callable[[Ctx], None]:
        RULES.append(Rule(rule_id, text, fn))
        return fn
    return add


def _fields(res: UncheckedObject) -> list[str]:
    err = res.get("error") if isinstance(res.get("error"), dict) else {}
    return [str(f.get("field")) for f in (err or {}).get("fields") or [] if isinstance(f, dict)]


def _error(res: UncheckedObject) -> UncheckedObject:
    err = res.get("error")
    return err if isinstance(err, dict) else {}


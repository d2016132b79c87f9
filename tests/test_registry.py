"""The op-kind registry (domain/registry.py): each kind declared once, and every
per-kind table of the code read from it or registered against it."""

from __future__ import annotations

import subprocess
import sys
from typing import get_args

import pytest

from opd_fallback.domain import payloads, registry, rules, shared


def test_every_table_is_the_registry_s() -> None:
    names = tuple(k.name for k in registry.KINDS)
    assert registry.NAMES == names == rules.OP_KINDS == payloads.OP_KINDS
    assert set(get_args(payloads.OpKind)) == set(names)
    assert {k: m.__name__ for k, m in payloads.PAYLOAD_MODELS.items()} == {k.name: k.model for k in registry.KINDS}
    assert shared.CREATES == {"patient.register": "patient", "visit.open": "visit", "lab.order": "lab_order",
                              "payment.record": "payment"}
    assert shared.CENTRAL_ID_KEYS == {"patient.register": "uhid", "visit.open": "visit_id",
                                      "lab.order": "order_id", "payment.record": "receipt_id"}
    assert shared.RECORD_KINDS == ("patient", "visit", "lab_order", "payment")
    assert registry.MONEY_KINDS == ("payment.record", "payment.void")
    # a kind that changes a record names it by a reference field that is a record kind
    assert {k.acts_on for k in registry.KINDS if k.acts_on} <= set(registry.RECORD_KINDS)


def test_every_concern_has_a_handler_for_every_kind() -> None:
    from opd_fallback.application.review import items
    from opd_fallback.central import apply
    from opd_fallback.store import writeback

    for table in (apply._HANDLERS, writeback.WRITEBACK, items.TITLES):
        assert set(table) == set(registry.NAMES), table.purpose


def test_a_kind_without_its_handler_fails_at_import_naming_it() -> None:
    table: registry.Handlers[object] = registry.Handlers("a test's table")
    for name in registry.NAMES[:-1]:
        table.register(name)(object())
    with pytest.raises(RuntimeError, match=r"a test's table: no handler registered for payment\.void"):
        table.complete()
    with pytest.raises(KeyError, match="not an op kind"):
        table.register("lab.sample_kollect")
    with pytest.raises(ValueError, match="registered twice"):
        table.register(registry.NAMES[0])


def test_a_kind_added_to_the_registry_alone_is_refused_until_its_handlers_exist() -> None:
    """A declaration without handlers: importing central's apply (or the write-back) raises."""
    code = (
        "from opd_fallback.domain import registry as r\n"
        "k = r.Kind('lab.sample_collect', 'sample collection', 'LabOrder')\n"
        "r.KINDS += (k,); r.BY_NAME[k.name] = k; r.NAMES += (k.name,)\n"
        "import opd_fallback.store.writeback\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode != 0
    assert "no handler registered for lab.sample_collect" in res.stderr

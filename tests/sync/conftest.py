"""Fixtures for sync tests: a counter store and its services."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from opd_fallback.application.services import CounterService
from opd_fallback.store import Store, open_store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(tmp_path / "counter.db")
    yield s
    s.close()


@pytest.fixture
def svc(store: Store) -> CounterService:
    return CounterService(store, "C07")

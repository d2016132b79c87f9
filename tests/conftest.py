"""Generic fixtures: a real counter database in tmp_path and its services.
Parts keep their own fixtures in their own test directories."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from argon2 import PasswordHasher

from opd_fallback.application.services import CounterService
from opd_fallback.domain.clock import now_iso
from opd_fallback.store import Store, open_store, operators
from opd_fallback.store.tables import MasterDataCache
from tests.helpers.postgres import PostgresServer, running_postgres, why_unavailable

PRODUCTION_PIN_HASHER = operators.HASHER  # as the module made it, before the cheap one below

SMALL_MASTER_DATA: dict[str, Any] = {
    "version": "test-1",
    "departments": [
        {"code": "MED", "name": "General Medicine", "units": [{"code": "MED-U1", "name": "Unit I"}]},
        {"code": "SURG", "name": "General Surgery", "units": []},
    ],
    "tests": [
        {"code": "CBC", "name": "Complete Blood Count", "sample_type": "EDTA", "price_paise": 15000},
        {"code": "LFT", "name": "Liver Function Tests", "sample_type": "Serum", "price_paise": 40000},
    ],
    "fees": [
        {"code": "OPD-NEW", "name": "OPD registration", "price_paise": 1000},
        {"code": "OPD-REVISIT", "name": "OPD revisit", "price_paise": 0},
    ],
}


def put_master_data(store: Store, data: dict[str, Any] | None = None) -> None:
    """What a refresh from central would leave in the store."""
    body = orjson.dumps(data or SMALL_MASTER_DATA).decode()
    version = (data or SMALL_MASTER_DATA)["version"]
    with store.write() as s:
        s.merge(MasterDataCache(id=1, version=version, etag=None, body=body, fetched_at=now_iso()))


@pytest.fixture(autouse=True, scope="session")
def _keys_in_a_scratch_config_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Database keys live in the platform config directory (cipher/keys.py): the
    tests' keys go to a scratch one, for this process and the ones it starts."""
    import os

    old = os.environ.get("XDG_CONFIG_HOME")
    os.environ["XDG_CONFIG_HOME"] = str(tmp_path_factory.mktemp("config-home"))
    yield
    if old is None:
        os.environ.pop("XDG_CONFIG_HOME", None)
    else:
        os.environ["XDG_CONFIG_HOME"] = old


_CHEAP_PIN_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture(autouse=True, scope="session")
def _cheap_pin_hashes() -> Iterator[None]:
    """PIN hashing is slow on purpose (~130 ms a hash or a check): in this test
    process it is a cheap argon2id instead. The parameters travel in each hash, so
    every check follows what was stored, and processes the tests start keep the
    production cost. Tests marked ``production_pin_cost`` get the real one
    (tests/store/test_operators.py asserts its parameters and that a guess is slow)."""
    real = operators.HASHER
    operators.HASHER = _CHEAP_PIN_HASHER
    operators._dummy_hash.cache_clear()
    yield
    operators.HASHER = real
    operators._dummy_hash.cache_clear()


@pytest.fixture(autouse=True)
def _production_pin_cost(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    if request.node.get_closest_marker("production_pin_cost") is None:
        yield
        return
    monkeypatch.setattr(operators, "HASHER", PRODUCTION_PIN_HASHER)
    operators._dummy_hash.cache_clear()
    yield
    operators._dummy_hash.cache_clear()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL per test process (an xdist worker), shared by every
    test that needs one (each makes its own database in it); initdb takes seconds."""
    reason = why_unavailable()
    if reason:
        pytest.skip(f"PostgreSQL half skipped: {reason}")
    with running_postgres() as server:
        yield server


@pytest.fixture
def store(tmp_path) -> Iterator[Store]:
    st = open_store(tmp_path / "counter.db")
    yield st
    st.close()


@pytest.fixture
def svc(store: Store) -> CounterService:
    return CounterService(store, "C07")


@pytest.fixture
def with_master_data() -> Callable[..., None]:
    return put_master_data

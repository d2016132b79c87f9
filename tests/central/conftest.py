"""Every central contract test runs twice: on SQLite and on a real PostgreSQL.

One throwaway PostgreSQL per test session (``tests/helpers/postgres.py``); each
server gets a new database in it. One reference server per test module and
backend (real HTTP on 127.0.0.1); fault tests start their own. Where
PostgreSQL cannot be started the PostgreSQL half is skipped, saying why.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers import central as central_helper
from tests.helpers.central import SQLITE, Backend, CentralHandle, run_central
from tests.helpers.postgres import PostgresServer, running_postgres, why_unavailable


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    reason = why_unavailable()
    if reason:
        pytest.skip(f"PostgreSQL half skipped: {reason}")
    with running_postgres() as server:
        yield server


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "sqlite":
        return SQLITE
    return Backend("postgresql", request.getfixturevalue("postgres"))


@pytest.fixture(autouse=True)
def _run_central_on(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    """``run_central`` inside a test starts its server on this module's backend."""
    monkeypatch.setattr(central_helper, "DEFAULT_BACKEND", backend)


@pytest.fixture(scope="module")
def central(tmp_path_factory: pytest.TempPathFactory, backend: Backend) -> Iterator[CentralHandle]:
    tmp = tmp_path_factory.mktemp("central")
    with run_central(tmp, devices=("C07", "L02", "X09"), database_url=backend.new_database_url(tmp)) as handle:
        yield handle

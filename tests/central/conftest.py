"""Every central contract test runs twice: on SQLite and on a real PostgreSQL.

One throwaway PostgreSQL per test process (``postgres`` in tests/conftest.py); each
server gets a new database in it. One reference server per backend and test
process (an xdist worker), shared by the modules (real HTTP on 127.0.0.1):
starting one costs seconds, and the tests on it do not collide (each makes its
own patients, mobiles and op ids through ``tests/central/util.py``'s factory).
A module whose tests fuzz or run whole-API drills on the server (schemathesis,
the conformance kit) sets ``OWN_CENTRAL = True`` and gets its own, as before.
Fault tests start their own (``run_central``). Where PostgreSQL cannot be
started the PostgreSQL half is skipped, saying why.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.helpers import central as central_helper
from tests.helpers.central import SQLITE, Backend, CentralHandle, run_central

DEVICES = ("C07", "L02", "X09")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "sqlite":
        return SQLITE
    return Backend("postgresql", request.getfixturevalue("postgres"))


@pytest.fixture(autouse=True)
def _run_central_on(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    """``run_central`` inside a test starts its server on this module's backend."""
    monkeypatch.setattr(central_helper, "DEFAULT_BACKEND", backend)


@pytest.fixture(scope="session")
def _shared_centrals() -> Iterator[dict[str, CentralHandle]]:
    """The servers ``central`` shares, by backend name; stopped at the end of the session."""
    with ExitStack() as stack:
        yield _SharedCentrals(stack)


class _SharedCentrals(dict[str, CentralHandle]):
    def __init__(self, stack: ExitStack) -> None:
        super().__init__()
        self.stack = stack

    def get_or_start(self, backend: Backend, tmp: Path) -> CentralHandle:
        if backend.name not in self:
            self[backend.name] = self.stack.enter_context(
                run_central(tmp, devices=DEVICES, database_url=backend.new_database_url(tmp)))
        handle = self[backend.name]
        if handle.proc is None or handle.proc.poll() is not None:  # a test stopped it: start it again
            handle.proc = None
            handle.start()
        return handle


@pytest.fixture(scope="module")
def central(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, backend: Backend,
            _shared_centrals: _SharedCentrals) -> Iterator[CentralHandle]:
    if getattr(request.module, "OWN_CENTRAL", False):
        tmp = tmp_path_factory.mktemp("central")
        with run_central(tmp, devices=DEVICES, database_url=backend.new_database_url(tmp)) as handle:
            yield handle
        return
    yield _shared_centrals.get_or_start(backend, tmp_path_factory.mktemp(f"central-{backend.name}"))

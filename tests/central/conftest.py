"""One reference server per test module (real HTTP on 127.0.0.1); fault tests start their own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers.central import CentralHandle, run_central


@pytest.fixture(scope="module")
def central(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CentralHandle]:
    with run_central(tmp_path_factory.mktemp("central"), devices=("C07", "L02", "X09")) as handle:
        yield handle

"""The test servers' ports (tests/helpers/ports.py): disjoint per xdist worker,
below the ephemeral range, and never one something listens on."""

from __future__ import annotations

import socket

from tests.helpers import ports


def test_each_worker_has_its_own_range_below_the_ephemeral_ports(monkeypatch) -> None:
    seen: list[range] = []
    for w in ("gw0", "gw1", "gw2"):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", w)
        lo, hi = ports._range()
        seen.append(range(lo, hi))
        assert hi <= 32768
    assert not set(seen[0]) & set(seen[1]) and not set(seen[1]) & set(seen[2])


def test_a_port_something_listens_on_is_skipped(monkeypatch) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw7")
    lo, _hi = ports._range()
    monkeypatch.setattr(ports, "_next", [lo])
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", lo))
        busy.listen()
        assert ports.free_port() == lo + 1

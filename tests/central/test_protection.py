"""Protection of a recovering server and injected faults, over real HTTP."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from opd_fallback.central.db import hash_token
from opd_fallback.central.db import stats as db_stats
from tests.central.util import factory, one, patient_ref, push, unique_mobile
from tests.helpers.central import Backend, run_central

CLI = [sys.executable, "-m", "opd_fallback.central"]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, check=True)


def test_maintenance_switch_from_the_cli_makes_everything_503(tmp_path: Path) -> None:
    with run_central(tmp_path) as central, central.client() as http:
        assert http.get("/health").status_code == 200
        cli("maintenance", "on", "--database-url", central.database_url)
        op = factory().register(mobile=unique_mobile())
        for method, path, body in (("GET", "/health", None), ("GET", "/devices/me", None),
                                   ("POST", "/ops:batch", {"ops": [op]})):
            r = http.request(method, path, json=body)
            assert r.status_code == 503, path
            assert int(r.headers["retry-after"]) >= 1 and "date" in r.headers
            assert r.json()["error"]["code"] == "maintenance"
        central.maintenance(False)
        assert http.get("/health").status_code == 200
        # nothing of the refused batch was applied
        assert http.get(f"/ops/{op['op_id']}").status_code == 404


def test_requests_beyond_max_in_flight_get_429_with_retry_after(tmp_path: Path) -> None:
    with run_central(tmp_path, max_in_flight=1, latency_ms=1500) as central:
        slow: list[int] = []

        def occupy() -> None:
            # The poller below may hold the one slot for a moment first: try again until in.
            with central.client() as http:
                for _ in range(200):
                    code = http.get("/devices/me").status_code
                    if code != 429:
                        break
                slow.append(code)

        t = threading.Thread(target=occupy)
        t.start()
        refused = None
        try:
            with central.client() as http:
                while t.is_alive() and refused is None:  # /health is not slowed; it waits in line
                    r = http.get("/health")
                    if r.status_code == 429:
                        refused = r
        finally:
            t.join()
        assert slow == [200]
        assert refused is not None, "no request was refused while one was in flight"
        assert int(refused.headers["retry-after"]) >= 1 and "date" in refused.headers
        assert refused.json()["error"]["code"] == "overloaded"
        with central.client() as http:  # the slot is free again
            assert http.get("/health").status_code == 200


def test_lost_response_op_is_applied_and_resend_is_duplicate_without_second_effect(tmp_path: Path) -> None:
    f = factory()
    reg = f.register(mobile=unique_mobile())
    pay = f.payment(patient_ref(reg), [("OPD-NEW", 1000)], depends_on=[reg["op_id"]])
    with run_central(tmp_path, lost_response_rate=1.0, seed=1) as central:
        with central.client() as http:
            with pytest.raises(httpx.TransportError):
                http.post("/ops:batch", json={"ops": [reg, pay]})
        central.restart()  # no faults now
        with central.client() as http:
            assert http.get("/devices/me").json()["ops_applied"] == 2  # applied although unanswered
            first = [http.get(f"/ops/{op['op_id']}").json() for op in (reg, pay)]
            res = push(http, reg, pay)
            assert [r["status"] for r in res] == ["duplicate", "duplicate"]
            assert [r["result"] for r in res] == [r["result"] for r in first]
            assert http.get("/devices/me").json()["ops_applied"] == 2
            assert len(http.get("/patients/changes").json()["patients"]) == 1
    counts = db_stats(central.database_url)
    assert counts["records"]["payments"] == 1 and counts["ops_remembered"] == 2  # type: ignore[index]


@pytest.mark.chaos  # a long run (> 10 s): make chaos
def test_injected_failures_apply_nothing_and_repeat_with_their_seed(tmp_path: Path) -> None:
    op = factory().register(mobile=unique_mobile())
    with run_central(tmp_path, fail_rate=1.0) as central:
        with central.client() as http:
            r = http.post("/ops:batch", json={"ops": [op]})
            assert r.status_code == 503 and r.headers["retry-after"] == "1"
            assert r.json()["error"]["code"] == "injected_failure"
            assert http.get("/health").status_code == 200  # health is spared, the harness can see it
        central.restart(reset_rate=1.0)
        with central.client() as http, pytest.raises(httpx.TransportError):
            http.post("/ops:batch", json={"ops": [op]})
        patterns = []
        for _ in range(2):
            central.restart(fail_rate=0.5, seed=42)
            with central.client() as http:
                patterns.append([http.get("/devices/me").status_code for _ in range(20)])
        assert set(patterns[0]) == {200, 503} and patterns[0] == patterns[1]
        central.restart()
        with central.client() as http:
            assert http.get(f"/ops/{op['op_id']}").status_code == 404  # none of it was applied
            assert one(http, op)["status"] == "applied"


def test_cli_add_device_prints_a_token_once_and_stats_counts(tmp_path: Path, backend: Backend) -> None:
    url = backend.new_database_url(tmp_path, "c.db")
    out = cli("add-device", "C09", "--database-url", url)
    token = out.stdout.strip()
    assert len(token) >= 40 and "shown only once" in out.stderr
    with run_central(tmp_path, devices=(), database_url=url) as central:
        assert central.query("SELECT token_hash FROM device") == [(hash_token(token),)]  # only the hash is kept
        if central.db_path is not None:
            assert token not in central.db_path.read_bytes().decode("latin-1")
        central.tokens["C09"] = token
        with central.client("C09") as http:
            assert http.get("/devices/me").json()["device_id"] == "C09"
            push(http, *factory("C09").day_of_opd(3))
    text = cli("stats", "--database-url", url).stdout
    assert "ops remembered: " in text and "patient.register   3" in text
    stats = db_stats(url)
    assert stats["applied_by_kind"]["patient.register"] == 3
    assert stats["records"]["visits"] == 3
    assert stats["payments_by_mode"]["cash"]["count"] >= 3


@pytest.mark.chaos  # a long run (> 10 s): make chaos
def test_the_in_flight_cap_holds_across_worker_processes(tmp_path: Path) -> None:
    """Two uvicorn workers, a cap of 2: of 6 slow requests at once, 2 are served and
    4 refused, wherever the kernel hands each connection (not 2 per worker)."""
    with run_central(tmp_path, workers=2, max_in_flight=2, latency_ms=3000) as central:
        start = threading.Barrier(6)
        codes: list[int] = []

        def one_request() -> None:
            with central.client(timeout=30) as http:
                start.wait()
                codes.append(http.get("/devices/me").status_code)

        threads = [threading.Thread(target=one_request) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(codes) == [200, 200, 429, 429, 429, 429]

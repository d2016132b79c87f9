"""Exactly once under faults: several counters push concurrently through a
server that fails, resets and loses answers; each resends until every op has
a final answer. Every record must then exist exactly once."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest

from opd_fallback.central.db import stats as db_stats
from tests.central.util import factory
from tests.helpers.central import CentralHandle, run_central


def _push_until_final(central: CentralHandle, device: str, ops: list[dict], batch: int,
                      errors: list[str]) -> None:
    pending = list(ops)
    deadline = time.monotonic() + 120
    with central.client(device, timeout=10) as http:
        while pending and time.monotonic() < deadline:
            chunk = pending[:batch]
            try:
                r = http.post("/ops:batch", json={"ops": chunk})
            except httpx.TransportError:
                continue  # cannot know what was applied: resend the same ops
            if r.status_code in (429, 503):
                time.sleep(0.01)
                continue
            if r.status_code != 200:
                errors.append(f"{device}: HTTP {r.status_code} {r.text[:200]}")
                return
            done = {x["op_id"] for x in r.json()["results"] if x["status"] in ("applied", "duplicate")}
            bad = [x for x in r.json()["results"] if x["status"] == "rejected"]
            if bad:
                errors.append(f"{device}: rejected {bad[0]}")
                return
            pending = [o for o in pending if o["op_id"] not in done]
    if pending:
        errors.append(f"{device}: {len(pending)} ops never got a final answer")


def _drill(tmp_path: Path, patients: int, batch: int, **faults: float) -> None:
    devices = ("C07", "C08", "L02")
    work = {d: factory(d).day_of_opd(patients) for d in devices}
    with run_central(tmp_path, devices=devices, seed=11, **faults) as central:
        errors: list[str] = []
        threads = [threading.Thread(target=_push_until_final, args=(central, d, work[d], batch, errors))
                   for d in devices]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
    counts = db_stats(central.database_url)
    every = [o for ops in work.values() for o in ops]
    by_kind: dict[str, int] = {}
    for o in every:
        by_kind[o["kind"]] = by_kind.get(o["kind"], 0) + 1
    assert counts["applied_by_kind"] == by_kind
    records = counts["records"]
    assert records["patients"] == by_kind["patient.register"]  # type: ignore[index]
    assert records["visits"] == by_kind["visit.open"]  # type: ignore[index]
    assert records["payments"] == by_kind["payment.record"]  # type: ignore[index]
    assert counts["ops_remembered"] == len(every)


def test_exactly_once_through_failures_resets_and_lost_answers(tmp_path: Path) -> None:
    _drill(tmp_path, patients=40, batch=25, fail_rate=0.2, reset_rate=0.15, lost_response_rate=0.25)


@pytest.mark.chaos
def test_exactly_once_long_drill(tmp_path: Path) -> None:
    _drill(tmp_path, patients=1500, batch=200, fail_rate=0.2, reset_rate=0.1, lost_response_rate=0.3)

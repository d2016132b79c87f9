"""A ``/patients/changes`` cursor never skips a patient committed late by another writer.

Two appliers on one database, in process: writer A registers a patient and is
held just before its COMMIT; writer B registers another and commits (on
PostgreSQL at once; on SQLite B waits for A's write lock). A reader that pages
in between, then goes on from its cursor after A commits, must see both.
Without the commit-ordered change numbers (PostgreSQL) A's patient, numbered
before B's but committed after, would be passed for ever.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from opd_fallback.central import reads
from opd_fallback.central.apply import Applier
from opd_fallback.central.db import add_device, create_schema, open_db
from opd_fallback.central.master import load_master
from tests.central.util import factory, unique_mobile
from tests.helpers.central import Backend


def test_a_change_committed_late_is_not_skipped(tmp_path: Path, backend: Backend,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    url = backend.new_database_url(tmp_path)
    create_schema(url)
    add_device(url, "C07")
    add_device(url, "L02")  # another counter: the two batches share no row
    master = load_master()
    slow, fast = Applier(open_db(url), master), Applier(open_db(url), master)
    reader = open_db(url)
    held, release = threading.Event(), threading.Event()
    real_finish = slow.series.finish

    def finish_later() -> None:  # the batch is written, its COMMIT not yet sent
        real_finish()
        held.set()
        assert release.wait(30)

    monkeypatch.setattr(slow.series, "finish", finish_later)
    f, g = factory("C07"), factory("L02")
    results: dict[str, Any] = {}
    a = threading.Thread(target=lambda: results.update(a=slow.apply_batch("C07", [f.register(mobile=unique_mobile())])))
    b = threading.Thread(target=lambda: results.update(b=fast.apply_batch("L02", [g.register(mobile=unique_mobile())])))
    a.start()
    assert held.wait(30)
    b.start()
    b.join(timeout=2)  # PostgreSQL: B commits now; SQLite: B waits for A's lock
    first = reads.patient_changes(reader, 0, 100)
    release.set()
    a.join(30)
    b.join(30)
    rest = reads.patient_changes(reader, int(first["next_cursor"]), 100)
    seen = {p["uhid"] for p in first["patients"] + rest["patients"]}
    assert seen == {results["a"][0]["result"]["uhid"], results["b"][0]["result"]["uhid"]}


def test_the_same_op_at_two_writers_at_once_is_applied_once(tmp_path: Path, backend: Backend,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Writer A has applied an op and not committed yet; writer B gets the same op:
    B waits for A (an advisory lock on the op_id on PostgreSQL, the write lock on
    SQLite), then answers duplicate with A's result."""
    url = backend.new_database_url(tmp_path)
    create_schema(url)
    add_device(url, "C07")
    master = load_master()
    slow, fast = Applier(open_db(url), master), Applier(open_db(url), master)
    held, release = threading.Event(), threading.Event()
    real_finish = slow.series.finish

    def finish_later() -> None:
        real_finish()
        held.set()
        assert release.wait(30)

    monkeypatch.setattr(slow.series, "finish", finish_later)
    f = factory()
    reg = f.register(mobile=unique_mobile())
    visit = f.visit({"local_ref": reg["payload"]["local_ref"]}, depends_on=[reg["op_id"]])
    results: dict[str, Any] = {}
    a = threading.Thread(target=lambda: results.update(a=slow.apply_batch("C07", [reg, visit])))
    b = threading.Thread(target=lambda: results.update(b=fast.apply_batch("C07", [reg, visit])))
    a.start()
    assert held.wait(30)
    b.start()
    b.join(timeout=1)
    assert b.is_alive(), "B must wait for A's COMMIT"
    release.set()
    a.join(30)
    b.join(30)
    assert [r["status"] for r in results["a"]] == ["applied", "applied"]
    assert [r["status"] for r in results["b"]] == ["duplicate", "duplicate"]
    assert [r["result"] for r in results["b"]] == [r["result"] for r in results["a"]]
    conn = open_db(url)
    assert conn.execute("SELECT COUNT(*) FROM patient").fetchone()[0] == 1
    assert conn.execute("SELECT COUNT(*) FROM visit").fetchone()[0] == 1

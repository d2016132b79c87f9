"""A database that went back in time (its -wal file deleted after a crash) never
hands out a number twice: not a seq, not an offline number, not a reserved id."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from sqlalchemy import text

from opd_fallback.application.services import CounterService, PaymentInput
from opd_fallback.store import marks, meta, open_store, reserved
from tests.helpers import db as db_helper


def _register(svc: CounterService, name: str) -> tuple[int, str, str, str]:
    reg = svc.register_new("op-1", {"name": name, "sex": "F", "age_years": 30}, department="MED",
                           payment=PaymentInput(mode="cash", amount_paise=1000))
    assert reg.payment is not None
    return (reg.payment.seq, reg.patient.local_ref, str(reg.patient.extra.get("uhid")),
            str(reg.payment.extra["receipt_no"]))


def test_deleted_wal_continues_above_every_number_already_handed_out(tmp_path: Path) -> None:
    db = tmp_path / "counter.db"
    store = open_store(db)
    with store.write() as s:
        reserved.add_block(s, "uhid", [f"U{i:04d}" for i in range(1, 11)])
        reserved.add_block(s, "receipt", [f"R{i:04d}" for i in range(1, 11)])
    svc = CounterService(store, "C07")
    first = _register(svc, "Asha Verma")
    con = db_helper.connect(db)  # everything so far goes into counter.db itself
    assert con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
    con.close()
    snapshot = tmp_path / "snapshot.db"
    shutil.copyfile(db, snapshot)  # counter.db as it is on disk: the next saves live only in counter.db-wal
    lost = [_register(svc, "Ram Kumar"), _register(svc, "Sita Devi")]
    store.close()
    # the crash, then a clean-up tool deletes counter.db-wal: the database goes back in time
    shutil.copyfile(snapshot, db)
    for extra in ("counter.db-wal", "counter.db-shm"):
        (tmp_path / extra).unlink(missing_ok=True)

    assert stat.S_IMODE(os.stat(marks.path_for(db)).st_mode) == 0o600
    store = open_store(db)
    svc = CounterService(store, "C07")
    with store.read() as s:
        assert s.execute(text("SELECT count(*) FROM payment")).scalar() == 1  # the lost saves are gone
    from opd_fallback.application import status

    before = status.collect(store, "C07")["went_back_in_time"]  # 'status' says so before any new work
    assert before and "older than numbers it already handed out" in before
    assert "WARNING" in status.render_text(status.collect(store, "C07"))
    new = [_register(svc, "Gita Rani"), _register(svc, "Mohan Lal")]
    used_seqs = {first[0]} | {x[0] for x in lost}
    for seq, local_ref, uhid, receipt in new:
        assert seq > max(used_seqs)
        assert local_ref not in {x[1] for x in [first, *lost]}
        assert uhid not in {x[2] for x in [first, *lost]}
        assert receipt not in {x[3] for x in [first, *lost]}
    with store.read() as s:
        warning = meta.get(s, marks.WENT_BACK)
        free = reserved.free_count(s, "uhid")
    assert warning and "went back in time" in warning and "paper slips" in warning
    assert free == 0  # ids that may have been used in the lost saves are never used again
    store.close()


def test_an_interrupted_save_is_not_taken_for_lost_data(tmp_path: Path) -> None:
    """Marks are written before the commit: a save that never committed only skips numbers."""
    db = tmp_path / "counter.db"
    store = open_store(db)
    svc = CounterService(store, "C07")
    seq, *_ = _register(svc, "Asha Verma")
    assert marks.settle()  # the committed mark is written after the commit, off the save's path
    m = marks.read(marks.path_for(db))
    assert m is not None and m.pending["seq"] == m.committed["seq"] == seq
    marks.write(marks.path_for(db), marks.Marks({**m.pending, "seq": seq + 3}, m.committed), durable=True)
    nxt, *_ = _register(svc, "Ram Kumar")
    assert nxt > seq + 3
    with store.read() as s:
        assert meta.get(s, marks.WENT_BACK) is None
    store.close()


def test_without_the_marks_file_centrals_max_seq_is_the_guard(tmp_path: Path) -> None:
    """The -wal and the marks file both gone: the next sync compares with central's devices/me."""
    from opd_fallback.sync.client import CentralClient
    from opd_fallback.sync.engine import SyncEngine
    from tests.helpers.central import run_central

    db = tmp_path / "counter.db"
    store = open_store(db)
    svc = CounterService(store, "C07")
    first = _register(svc, "Asha Verma")
    con = db_helper.connect(db)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    shutil.copyfile(db, tmp_path / "snapshot.db")
    lost = [_register(svc, "Ram Kumar"), _register(svc, "Sita Devi")]
    with run_central(tmp_path / "central") as central:
        with CentralClient(central.url, central.tokens["C07"]) as client:
            assert SyncEngine(store, client, give_up_after_s=10).run().exit_code == 0  # acknowledged
        store.close()
        shutil.copyfile(tmp_path / "snapshot.db", db)
        for extra in ("counter.db-wal", "counter.db-shm", "counter.db.marks"):
            (tmp_path / extra).unlink(missing_ok=True)
        store = open_store(db)
        with store.write() as s:
            reserved.add_block(s, "uhid", ["U9001", "U9002"])  # as if left free in the old copy
        with CentralClient(central.url, central.tokens["C07"]) as client:
            summary = SyncEngine(store, client, give_up_after_s=10).run()
    assert summary.exit_code == 0, summary.message  # the ops of the old copy were already there: duplicates
    with store.read() as s:
        warning = meta.get(s, marks.WENT_BACK)
        assert reserved.free_count(s, "uhid") == 0
    assert warning and "went back in time" in warning
    seq, local_ref, _, receipt = _register(CounterService(store, "C07"), "Gita Rani")
    assert seq > max(x[0] for x in [first, *lost])
    assert receipt not in {x[3] for x in [first, *lost]} and local_ref not in {x[1] for x in [first, *lost]}
    store.close()


def test_numbers_given_back_by_a_savepoint_are_not_taken_for_lost_data(tmp_path: Path) -> None:
    """A row rolled back to its savepoint inside a larger transaction (as an import does) returns its numbers."""
    from opd_fallback.store import numbers

    store = open_store(tmp_path / "counter.db")
    with store.write() as s:
        numbers.next_seq(s)
        nested = s.begin_nested()
        numbers.next_seq(s)
        numbers.next_seq(s)
        nested.rollback()
    with store.write() as s:
        assert numbers.next_seq(s) == 2
    with store.read() as s:
        assert meta.get(s, marks.WENT_BACK) is None
    store.close()


def test_the_counter_ui_checks_its_numbers_with_central_when_it_first_answers(tmp_path: Path) -> None:
    from opd_fallback.config import load_settings, write_config, write_token
    from opd_fallback.store import numbers
    from opd_fallback.sync.client import CentralClient
    from opd_fallback.sync.engine import SyncEngine
    from opd_fallback.tui.wiring import app_from_settings
    from tests.helpers.central import run_central

    data = tmp_path / "counter"
    store = open_store(data / "counter.db")
    svc = CounterService(store, "C07")
    done = [_register(svc, "Asha Verma"), _register(svc, "Ram Kumar")]
    with run_central(tmp_path / "central") as central:
        with CentralClient(central.url, central.tokens["C07"]) as client:
            assert SyncEngine(store, client, give_up_after_s=10).run().exit_code == 0
        with store.write() as s:  # the database went back (its -wal lost) and the marks file with it
            s.execute(text("UPDATE counter SET value = 3 WHERE name = 'seq'"))
        store.close()
        marks.path_for(data / "counter.db").unlink()
        s = load_settings(data)
        write_config(s, {"device_id": "C07", "hospital": "KGMU", "central_url": central.url})
        write_token(s, central.tokens["C07"])
        app = app_from_settings(load_settings(data), background_sync=False)
        assert app.probe is not None and app.probe()
    store = open_store(data / "counter.db")
    with store.read() as ses:
        assert numbers.peek(ses, numbers.SEQ) >= max(x[0] for x in done)
        assert "went back in time" in (meta.get(ses, marks.WENT_BACK) or "")
    store.close()

"""A database that went back in time (its -wal file deleted after a crash) never
hands out a number twice: not a seq, not an offline number, not a reserved id."""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
from pathlib import Path

from sqlalchemy import text

from opd_fallback.application.services import CounterService, PaymentInput
from opd_fallback.store import marks, meta, open_store, reserved


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
    con = sqlite3.connect(db)  # everything so far goes into counter.db itself
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
    m = marks.read(marks.path_for(db))
    assert m is not None and m.pending["seq"] == m.committed["seq"] == seq
    marks.write(marks.path_for(db), marks.Marks({**m.pending, "seq": seq + 3}, m.committed), durable=True)
    nxt, *_ = _register(svc, "Ram Kumar")
    assert nxt > seq + 3
    with store.read() as s:
        assert meta.get(s, marks.WENT_BACK) is None
    store.close()

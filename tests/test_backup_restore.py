"""Backup (online API, integrity check, rotation) and restore (refusals, readiness)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from opd_fallback.application.services import CounterService, PaymentInput
from opd_fallback.cipher import custody
from opd_fallback.cipher.keys import KeyProblem, key_from_code
from opd_fallback.domain.clock import IST
from opd_fallback.domain.errors import DomainError
from opd_fallback.store import backup, outbox, readiness
from opd_fallback.store.engine import Store, open_store
from tests.conftest import put_master_data
from tests.helpers import db

PATIENT = {"name": "Ram Kumar", "sex": "M", "age_years": 40}


def _register(store: Store, n: int, device: str = "C07") -> list[str]:
    svc = CounterService(store, device)
    refs = []
    for i in range(n):
        reg = svc.register_new("op-1", {**PATIENT, "name": f"Ram Kumar {chr(65 + i % 26)}"}, department="MED",
                               payment=PaymentInput(mode="cash", amount_paise=1000 + i))
        refs.append(reg.patient.local_ref)
    return refs


def _dump(path: Path) -> dict[str, list[tuple]]:
    """Every row of the tables that matter, to compare two databases."""
    conn = db.connect(path)
    try:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()
                for t in ("op", "patient", "visit", "payment", "counter", "id_reservation", "audit_log")}
    finally:
        conn.close()


def _mark_some_synced(store: Store, k: int) -> None:
    with store.write() as s:
        for op in outbox.pending(s, limit=k):
            op.state, op.last_status, op.synced_at = "synced", "applied", op.updated_at
            s.add(op)


def test_backup_round_trip_mid_queue_loses_nothing(tmp_path: Path) -> None:
    store = open_store(tmp_path / "counter.db")
    _register(store, 20)
    _mark_some_synced(store, 25)  # part of the queue synced, the rest pending
    with store.read() as s:
        states = outbox.counts_by_state(s)
    assert states["synced"] == 25 and states["pending"] == 35
    res = backup.backup(store.path, tmp_path / "backups", keep=3, device_id="C07")
    assert res.ok and res.integrity == "ok" and res.path.name.startswith("counter-C07-")
    assert res.facts.ops == 60 and res.facts.pending == 35 and res.facts.max_seq == 60
    before = _dump(store.path)
    store.close()

    # a new PC: no database at all
    new_db = tmp_path / "newpc" / "counter.db"
    out = backup.restore(res.path, new_db)
    assert out.replaced_saved_as is None
    restored = open_store(new_db)
    readiness.mark_restored(restored, source=str(res.path))
    after = _dump(new_db)
    for table in ("op", "patient", "visit", "payment", "counter", "id_reservation"):
        assert after[table] == before[table], table
    with restored.read() as s:
        assert outbox.counts_by_state(s)["pending"] == 35
        assert [o.seq for o in outbox.pending(s)] == list(range(26, 61))


def test_backup_while_the_counter_is_writing_is_consistent(tmp_path: Path) -> None:
    store = open_store(tmp_path / "counter.db")
    _register(store, 3)
    # an open write transaction that is not committed must not appear in the copy
    with store.write() as s:
        s.execute(text("INSERT INTO counter(name, value) VALUES ('uncommitted', 1)"))
        res = backup.backup(store.path, tmp_path / "backups", keep=2)
    assert res.ok and res.facts.ops == 9
    conn = db.connect(res.path)
    assert conn.execute("SELECT count(*) FROM counter WHERE name='uncommitted'").fetchone()[0] == 0
    conn.close()


def test_rotation_keeps_the_newest(tmp_path: Path) -> None:
    store = open_store(tmp_path / "counter.db")
    _register(store, 1)
    t0 = datetime(2026, 11, 1, 23, 30, tzinfo=IST)
    made = [backup.backup(store.path, tmp_path / "b", keep=3, when=t0 + timedelta(days=i)).path for i in range(5)]
    left = backup.list_backups(tmp_path / "b")
    assert left == made[-3:]
    assert not made[0].exists() and not made[1].exists()
    # a stray file in the folder is never touched by rotation
    (tmp_path / "b" / "notes.txt").write_text("keep me")
    backup.backup(store.path, tmp_path / "b", keep=1, when=t0 + timedelta(days=9))
    assert (tmp_path / "b" / "notes.txt").exists() and len(backup.list_backups(tmp_path / "b")) == 1


def test_damaged_backup_is_caught_and_refused(tmp_path: Path) -> None:
    store = open_store(tmp_path / "counter.db")
    _register(store, 30)
    res = backup.backup(store.path, tmp_path / "b", keep=2)
    store.close()
    raw = bytearray(res.path.read_bytes())
    for i in range(4096 * 3, len(raw), 997):  # scribble over pages after the header
        raw[i] = (raw[i] + 77) % 256
    bad = tmp_path / "bad.db"
    bad.write_bytes(bytes(raw))
    assert backup.integrity_check(bad) != "ok"
    with pytest.raises(backup.BackupError, match="damaged"):
        backup.restore(bad, tmp_path / "x" / "counter.db")
    assert not (tmp_path / "x" / "counter.db").exists()


def test_restore_refuses_to_overwrite_newer_work_without_force(tmp_path: Path) -> None:
    store = open_store(tmp_path / "counter.db")
    _register(store, 2)
    old = backup.backup(store.path, tmp_path / "b", keep=5).path
    _register(store, 1)  # newer work after the backup
    store.close()
    with pytest.raises(backup.BackupError, match="newer than the backup"):
        backup.restore(old, tmp_path / "counter.db")
    assert backup.facts(tmp_path / "counter.db").max_seq == 9
    out = backup.restore(old, tmp_path / "counter.db", force=True)
    assert backup.facts(tmp_path / "counter.db").max_seq == 6
    # the replaced database was saved first: nothing is lost even when forced
    assert out.replaced_saved_as is not None and backup.facts(out.replaced_saved_as).max_seq == 9
    assert backup.integrity_check(out.replaced_saved_as) == "ok"


def test_restore_over_a_damaged_database_needs_force_and_keeps_its_bytes(tmp_path: Path) -> None:
    store = open_store(tmp_path / "counter.db")
    _register(store, 30)
    good = backup.backup(store.path, tmp_path / "b", keep=2).path
    store.close()
    db = tmp_path / "counter.db"
    raw = bytearray(db.read_bytes())
    for i in range(4096 * 3, len(raw), 997):  # the live database is scribbled over
        raw[i] = (raw[i] + 77) % 256
    db.write_bytes(bytes(raw))
    assert backup.integrity_check(db) != "ok"
    with pytest.raises(backup.BackupError, match=r"damaged.*--force"):
        backup.restore(good, db)
    assert db.read_bytes() == bytes(raw)  # refused: untouched
    out = backup.restore(good, db, force=True)
    assert backup.integrity_check(db) == "ok" and out.facts.max_seq == backup.facts(good).max_seq == 90
    # the damaged database was kept byte for byte, for a person to look at
    assert out.replaced_saved_as is not None and out.replaced_saved_as.read_bytes() == bytes(raw)


def test_restore_over_the_same_or_older_database_needs_no_force(tmp_path: Path) -> None:
    store = open_store(tmp_path / "counter.db")
    _register(store, 1)
    b = backup.backup(store.path, tmp_path / "b", keep=5).path
    store.close()
    backup.restore(b, tmp_path / "counter.db")
    assert backup.facts(tmp_path / "counter.db").max_seq == 3


def test_restored_counter_refuses_work_until_checked(tmp_path: Path) -> None:
    store = open_store(tmp_path / "counter.db")
    _register(store, 1)
    with store.write() as s:
        from opd_fallback.store import reserved

        reserved.add_block(s, "receipt", ["R-1", "R-2"])
    b = backup.backup(store.path, tmp_path / "b", keep=5).path
    store.close()
    backup.restore(b, tmp_path / "pc2" / "counter.db")
    restored = open_store(tmp_path / "pc2" / "counter.db")
    assert readiness.is_ready(restored) == (True, "")
    assert readiness.mark_restored(restored, source=b.name) == 2
    ready, why = readiness.is_ready(restored)
    assert not ready and "restored from a backup" in why
    with pytest.raises(DomainError, match="restored from a backup"):
        _register(restored, 1)

    class FakeCentral:  # central says this device already used seq 40
        def device_me(self):
            from opd_fallback.domain.contract import DeviceInfo

            return DeviceInfo(device_id="C07", max_seq=40, ops_applied=40)

    with pytest.raises(readiness.WrongDevice):  # another device's token proves nothing about C07
        readiness.check_with_central(restored, FakeCentral(), device_id="C09")
    assert not readiness.is_ready(restored)[0]
    check = readiness.check_with_central(restored, FakeCentral(), device_id="C07")
    assert (check.central_max_seq, check.local_seq_before, check.local_seq_after) == (40, 3, 40)
    assert readiness.is_ready(restored)[0]
    reg = CounterService(restored, "C07").register_new("op-1", PATIENT, department="MED")
    assert reg.patient.seq == 41 and reg.patient.local_ref.endswith("-000041")


def test_move_to_new_device_when_central_cannot_be_reached(tmp_path: Path) -> None:
    store = open_store(tmp_path / "counter.db")
    _register(store, 1)
    readiness.mark_restored(store, source="x")
    with pytest.raises(ValueError):
        readiness.move_to_new_device(store, "C07", "C07", actor="sup")
    readiness.move_to_new_device(store, "C07", "C08", actor="sup")
    assert readiness.is_ready(store)[0]
    reg = CounterService(store, "C08").register_new("op-1", PATIENT, department="MED")
    assert reg.patient.local_ref.startswith("C08-")
    with pytest.raises(ValueError, match="used by this database before"):
        readiness.move_to_new_device(store, "C08", "C07", actor="sup")


# ---------------------------------------------------------------- with central over real HTTP
@pytest.mark.chaos  # a long run (> 10 s): make chaos
def test_counter_restored_from_old_backup_never_reuses_a_number(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from opd_fallback.application.reconcile import reconcile_day
    from opd_fallback.domain.clock import today_ist
    from opd_fallback.store import reserved
    from opd_fallback.sync.client import CentralClient
    from opd_fallback.sync.engine import sync_once
    from tests.helpers.central import run_central

    pc1 = open_store(tmp_path / "pc1" / "counter.db")
    pc1_code = custody.key_for(pc1.path).recovery_code  # what init printed for the IT cell's safe
    with run_central(tmp_path) as central, CentralClient(central.url, central.tokens["C07"]) as client:
        with pc1.write() as s:  # a block of real central receipt numbers, as refresh takes them
            reserved.add_block(s, "receipt", client.id_block("receipt", 5).ids)
        _register(pc1, 2)
        _lab(pc1)
        sync_once(pc1, client)
        old = backup.backup(pc1.path, tmp_path / "usb", keep=5, device_id="C07").path
        _register(pc1, 3)  # more work after the backup, synced: central is ahead of the backup
        _lab(pc1)
        assert sync_once(pc1, client).still_waiting == 0
        printed = _printed_numbers(pc1)
        pc1.close()
        central_max = client.device_me().max_seq
        assert central_max == 17

        # pc1 dies; the backup is restored on pc2 (another PC: its own config folder, no key of pc1's),
        # with pc1's recovery code (the USB stick holds no key)
        monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "pc2-config"))
        with pytest.raises(KeyProblem, match="no key on this PC opens"):
            backup.restore(old, tmp_path / "pc2" / "counter.db")
        backup.restore(old, tmp_path / "pc2" / "counter.db", keys=[key_from_code(pc1_code)])
        pc2 = open_store(tmp_path / "pc2" / "counter.db")
        readiness.mark_restored(pc2, source=old.name)
        with pytest.raises(DomainError):
            _register(pc2, 1)
        check = readiness.check_with_central(pc2, client)
        assert (check.local_seq_before, check.central_max_seq) == (7, central_max)
        _register(pc2, 3)
        _lab(pc2)
        summary = sync_once(pc2, client)
        assert summary.rejected == 0 and summary.conflict == 0 and summary.still_waiting == 0, summary.reasons
        with pc2.read() as s:
            states = outbox.counts_by_state(s)
        assert states["synced"] == 7 + 10 and states["pending"] == 0
        new_numbers = _printed_numbers(pc2) - _printed_numbers_upto(pc2, 7)
        # 3 x (patient, visit, payment, receipt) + the lab order and its two tubes' sample ids
        assert len(new_numbers) == 3 * 4 + 3 and not (new_numbers & printed), new_numbers & printed
        seqs = [re.search(r"[-RS](\d{6})(-\d)?$", n) for n in new_numbers]
        assert min(int(m.group(1)) for m in seqs if m) == central_max + 1
        assert client.device_me().max_seq == central_max + 10
        # the ops pc1 made after the backup are central's, and reconciliation says so
        rep = reconcile_day(pc2, client, "C07", today_ist())
        assert rep.exit_code == 1 and len(rep.unknown_here) == 10 and not rep.missing_centrally


def _lab(store: Store) -> None:
    """A lab order (its sample id is a printed number) for the latest patient and visit."""
    with store.read() as s:
        patient, visit = s.execute(text(
            "SELECT patient_local_ref, local_ref FROM visit ORDER BY id DESC LIMIT 1")).one()
    put_master_data(store)  # CBC (EDTA) and LFT (serum): two tubes, two sample ids
    CounterService(store, "C07").lab_request("op-1", patient, visit, ["CBC", "LFT"])


def _printed_numbers(store: Store) -> set[str]:
    return _printed_numbers_upto(store, 10**9)


def _printed_numbers_upto(store: Store, max_seq: int) -> set[str]:
    """Every number printed for a person (offline patient/visit/payment numbers, receipts)."""
    with store.read() as s:
        rows = s.execute(text(
            "SELECT p.local_ref FROM patient p JOIN op o ON o.op_id = p.op_id WHERE o.seq <= :m "
            "UNION ALL SELECT v.local_ref FROM visit v JOIN op o ON o.op_id = v.op_id WHERE o.seq <= :m "
            "UNION ALL SELECT y.local_ref FROM payment y JOIN op o ON o.op_id = y.op_id WHERE o.seq <= :m "
            "UNION ALL SELECT y.receipt_no FROM payment y JOIN op o ON o.op_id = y.op_id WHERE o.seq <= :m "
            "UNION ALL SELECT l.local_ref FROM lab_order l JOIN op o ON o.op_id = l.op_id WHERE o.seq <= :m "
            "UNION ALL SELECT json_extract(t.value, '$.sample_id') FROM op o, json_each(o.payload, '$.samples') t "
            "WHERE o.kind = 'lab.order' AND o.seq <= :m"),
            {"m": max_seq}).all()
    return {r[0] for r in rows}


def _cli(data_dir: Path, *args: str, input: str | None = None):
    from typer.testing import CliRunner

    from opd_fallback.cli import app

    return CliRunner().invoke(app, ["--data-dir", str(data_dir), *args], input=input)


@pytest.mark.chaos  # a long run (> 10 s): make chaos
def test_backup_and_restore_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from opd_fallback.store import operators
    from opd_fallback.sync.client import CentralClient
    from opd_fallback.sync.engine import sync_once
    from tests.helpers.central import run_central

    pc1, pc2, pc3, pc4 = tmp_path / "pc1", tmp_path / "pc2", tmp_path / "pc3", tmp_path / "pc4"
    monkeypatch.setenv("OPD_DATA_DIR", str(pc1))  # --data-dir sets it; undone after the test
    with run_central(tmp_path, devices=("C07", "C08")) as central:
        token = central.tokens["C07"]
        assert _cli(pc1, "init", "--device", "C07", "--hospital", "KGMU", "--server", central.url,
                    "--token", token).exit_code == 0
        store = open_store(pc1 / "counter.db")
        operators.add_operator(store, "sup1", "Supervisor", "654321", role="supervisor")
        _register(store, 2)
        store.close()
        r = _cli(pc1, "backup", "--json", "--keep", "2")
        assert r.exit_code == 0, r.output
        made = Path(__import__("json").loads(r.stdout)["path"])
        assert made.parent == pc1 / "backups" and backup.integrity_check(made) == "ok"
        store = open_store(pc1 / "counter.db")
        _register(store, 1)
        with CentralClient(central.url, token) as client:
            sync_once(store, client)  # central now holds seq 1..9
        store.close()

        # restoring over newer work is refused; the database is untouched
        r = _cli(pc1, "restore", str(made))
        assert r.exit_code == 1 and "newer than the backup" in r.output
        assert backup.facts(pc1 / "counter.db").max_seq == 9

        # a new PC with the server up: ready at once, above central's max_seq
        assert _cli(pc2, "init", "--device", "C07", "--hospital", "KGMU", "--server", central.url,
                    "--token", token).exit_code == 0
        (pc2 / "counter.db").unlink()
        r = _cli(pc2, "restore", str(made))
        assert r.exit_code == 0, r.output
        assert "continues at 10" in r.output and "Ready" in r.output
        st2 = open_store(pc2 / "counter.db")
        assert readiness.is_ready(st2)[0]
        st2.close()

        # a new PC while central is down: not ready (exit 3) until a supervisor moves it
        assert _cli(pc3, "init", "--device", "C07", "--hospital", "KGMU", "--server", "http://127.0.0.1:9",
                    "--token", token).exit_code == 0
        (pc3 / "counter.db").unlink()
        r = _cli(pc3, "restore", str(made))
        assert r.exit_code == 3 and "NOT READY" in r.output and "cannot reach" in r.output
        st3 = open_store(pc3 / "counter.db")
        assert not readiness.is_ready(st3)[0]
        st3.close()
        # the same situation on pc4, but a supervisor waits: the next nightly run checks the numbers
        assert _cli(pc4, "init", "--device", "C07", "--hospital", "KGMU", "--server", "http://127.0.0.1:9",
                    "--token", token).exit_code == 0
        (pc4 / "counter.db").unlink()
        assert _cli(pc4, "restore", str(made)).exit_code == 3
        assert _cli(pc4, "init", "--device", "C07", "--hospital", "KGMU", "--server", central.url).exit_code == 0
        r = _cli(pc4, "nightly", "--json")
        steps = {st["name"]: st for st in __import__("json").loads(r.stdout)["steps"]}
        assert steps["numbers"]["ok"] and "continues above central's seq 9" in steps["numbers"]["detail"]
        st4 = open_store(pc4 / "counter.db")
        assert readiness.is_ready(st4)[0]
        assert CounterService(st4, "C07").register_new("op-1", PATIENT, department="MED").patient.seq == 10
        st4.close()

        r = _cli(pc3, "restore", str(made), "--new-device-id", "C08", "--supervisor", "sup1", "--pin-stdin",
                 input="0000\n")
        assert r.exit_code == 1 and "Wrong operator ID or PIN" in r.output
        r = _cli(pc3, "restore", str(made), "--new-device-id", "C08", "--token", central.tokens["C08"],
                 "--supervisor", "sup1", "--pin-stdin", input="654321\n")
        assert r.exit_code == 0, r.output
        from opd_fallback.config import load_settings

        s3 = load_settings(pc3)
        assert s3.device_id == "C08" and s3.central_token == central.tokens["C08"]
        st3 = open_store(pc3 / "counter.db")
        assert readiness.is_ready(st3)[0]
        reg = CounterService(st3, "C08").register_new("op-1", PATIENT, department="MED")
        assert reg.patient.local_ref.startswith("C08-")
        st3.close()

"""Patient data encrypted at rest (issue 23): every file, key custody, the in-place
conversion, rotate-key; through the CLI a person uses, in real processes."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from opd_fallback.application.services import CounterService, PaymentInput
from opd_fallback.cipher import custody
from opd_fallback.cipher import db as cipher_db
from opd_fallback.cipher import keys as cipher_keys
from opd_fallback.store import open_store
from tests.helpers import db as db_helper

NAME = "Zarina Qureshi"  # a name to look for in the raw bytes of every file
PLAIN = b"SQLite format 3\x00"
TABLES = ("op", "patient", "visit", "payment", "counter", "audit_log")
ROOT = Path(__file__).resolve().parents[1]


def _env(data: Path, config_home: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPD_")}
    env["OPD_DATA_DIR"] = str(data)
    if config_home is not None:  # another PC: its own config folder, so none of this PC's keys
        env["XDG_CONFIG_HOME"] = str(config_home)
    return env


def _cli(data: Path, *args: str, stdin: str = "", config_home: Path | None = None,
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "opd_fallback", *args], env=_env(data, config_home),
                          input=stdin, capture_output=True, text=True, timeout=120, cwd=str(ROOT))


def _init(data: Path, config_home: Path | None = None) -> str:
    """A counter set up by ``init``; returns the recovery code it printed."""
    r = _cli(data, "init", "--device", "C07", "--hospital", "KGMU", config_home=config_home)
    assert r.returncode == 0, r.stderr
    codes = [line.split(": ", 1)[1] for line in r.stdout.splitlines() if line.startswith("recovery code: ")]
    assert len(codes) == 1 and "IT cell's safe" in r.stderr
    return codes[0]


def _register(db: Path, n: int = 3, name: str = NAME) -> None:
    store = open_store(db)
    try:
        svc = CounterService(store, "C07")
        for i in range(n):
            svc.register_new("op-1", {"name": f"{name} {chr(65 + i % 26)}", "sex": "F", "age_years": 30,
                                      "mobile": "9876543210"}, department="MED",
                             payment=PaymentInput(mode="cash", amount_paise=1000))
    finally:
        store.close()


def _unreadable_by_sqlite3(path: Path) -> None:
    """Not an SQLite file to anyone without the key: header, stdlib sqlite3, raw bytes."""
    raw = path.read_bytes()
    assert raw[:16] != PLAIN and NAME.encode() not in raw, path
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="not a database"):
            con.execute("SELECT count(*) FROM sqlite_master").fetchone()
    finally:
        con.close()


def _one_sentence(r: subprocess.CompletedProcess[str], code: int, words: str) -> None:
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: ") and words.lower() in lines[0].lower(), r.stderr
    assert "Traceback" not in r.stderr + r.stdout


def test_every_file_holding_patients_is_encrypted(tmp_path: Path) -> None:
    from tests.helpers.hub import run_hub

    data = tmp_path / "counter"
    with run_hub(tmp_path / "hub", devices=("C07",)) as hub:
        r = _cli(data, "init", "--device", "C07", "--hospital", "KGMU", "--hub", hub.url, "--hub-pairing-stdin",
                 stdin=hub.pairing("C07") + "\n")
        assert r.returncode == 0, r.stderr
        db = data / "counter.db"
        store = open_store(db)  # kept open: its -wal holds the latest pages, encrypted too
        try:
            CounterService(store, "C07").register_new("op-1", {"name": NAME, "sex": "F", "age_years": 30},
                                                      department="MED", payment=PaymentInput(mode="cash", amount_paise=1000))
            wal = Path(str(db) + "-wal")
            assert wal.exists() and wal.stat().st_size > 0
            assert NAME.encode() not in wal.read_bytes()
            r = _cli(data, "share")
            assert r.returncode == 0, r.stderr
            from opd_fallback.printing.document import Document
            from opd_fallback.printing.spool import Spool

            spool = Spool(data / "spool")
            spool.add(Document(kind="slip", ref="C07-261126-000001", title="OPD slip").text(NAME))
            r = _cli(data, "backup")
            assert r.returncode == 0, r.stderr
        finally:
            store.close()
        hub_db = hub.db_path
        for side in ("", "-wal"):
            if Path(str(hub_db) + side).exists():
                assert NAME.encode() not in Path(str(hub_db) + side).read_bytes()
        assert db_helper.rows(hub_db, "record")["record"], "the hub holds the shared patient"
    (backup_file,) = (data / "backups").iterdir()
    for path in (db, backup_file, data / "spool" / "spool.db", hub_db):
        _unreadable_by_sqlite3(path)
    assert any(NAME in str(row) for row in db_helper.rows(db, "patient")["patient"])
    # the keys live outside the data folder, owner-only
    for kf in cipher_keys.all_key_files():
        assert data not in kf.parents and oct(kf.stat().st_mode & 0o777) == "0o600"


def test_a_backup_on_another_pc_opens_only_with_the_key(tmp_path: Path) -> None:
    pc1, pc2 = tmp_path / "pc1", tmp_path / "pc2"
    code = _init(pc1)
    _register(pc1 / "counter.db", 4)
    assert _cli(pc1, "backup").returncode == 0
    (made,) = (pc1 / "backups").iterdir()
    stick = tmp_path / "usb" / made.name  # the backup copied to a stick, then to a new PC
    stick.parent.mkdir()
    stick.write_bytes(made.read_bytes())
    before = db_helper.rows(pc1 / "counter.db", *TABLES)
    other_pc = tmp_path / "pc2-config"

    _init(pc2, other_pc)
    (pc2 / "counter.db").unlink()
    r = _cli(pc2, "restore", str(stick), config_home=other_pc)
    _one_sentence(r, 8, "no key on this PC opens")
    assert not (pc2 / "counter.db").exists()
    wrong = cipher_keys.new_key().recovery_code
    r = _cli(pc2, "restore", str(stick), "--recovery-code-stdin", stdin=wrong + "\n", config_home=other_pc)
    _one_sentence(r, 8, "does not open")
    r = _cli(pc2, "restore", str(stick), "--recovery-code-stdin", stdin=code + "\n", config_home=other_pc)
    assert r.returncode == 3, r.stderr  # restored; not ready until central checks its numbers (no central here)
    assert "restored" in r.stdout and "Traceback" not in r.stderr
    # pc2 now opens it with its own key file (the backup's key, adopted)
    env = {"XDG_CONFIG_HOME": str(other_pc)}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        after = db_helper.rows(pc2 / "counter.db", *TABLES)
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    for t in ("op", "patient", "visit", "payment", "counter"):
        assert after[t] == before[t], t

    # and with the key file instead of the code, on a third PC
    pc3, third = tmp_path / "pc3", tmp_path / "pc3-config"
    key_file = custody.key_for(pc1 / "counter.db").source
    assert key_file is not None
    r = _cli(pc3, "restore", str(stick), "--key-file", str(key_file), config_home=third)
    assert r.returncode == 3 and "restored" in r.stdout, r.stderr


def test_a_wrong_or_missing_key_is_one_sentence_and_exit_8(tmp_path: Path) -> None:
    data = tmp_path / "counter"
    _init(data)
    _register(data / "counter.db", 1)
    key_file = custody.key_for(data / "counter.db").source
    assert key_file is not None
    good = key_file.read_bytes()
    cipher_keys.write_key_file(key_file, cipher_keys.new_key())  # another counter's key put in its place
    for args in (["status"], ["status", "--json"], ["backup"], ["operator", "list"]):
        _one_sentence(_cli(data, *args), 8, "does not open the database")
    key_file.unlink()
    _one_sentence(_cli(data, "status"), 8, "is not on this PC")
    key_file.write_bytes(good)
    assert _cli(data, "status").returncode == 0
    # recover-key: the recovery code brings a lost key file back
    code = cipher_keys.recovery_code(cipher_keys.parse_code(good.decode()))
    key_file.unlink()
    r = _cli(data, "recover-key", "--recovery-code-stdin", stdin="AAAA-" + code[5:] + "\n")
    assert r.returncode in (1, 8) and "Traceback" not in r.stderr
    r = _cli(data, "recover-key", "--recovery-code-stdin", stdin=code.lower() + "\n")
    assert r.returncode == 0, r.stderr
    assert _cli(data, "status").returncode == 0


def test_an_older_plain_database_is_encrypted_in_place_on_first_open(tmp_path: Path) -> None:
    data = tmp_path / "counter"
    _init(data)
    db = data / "counter.db"
    _register(db, 5)
    before = db_helper.rows(db, *TABLES)
    # what an older version left: a plain database, no key yet
    plain = tmp_path / "plain.db"
    db_helper.plain_copy(db, plain)
    for p in (db, Path(str(db) + "-wal"), Path(str(db) + "-shm"), cipher_keys.ref_path(db)):
        p.unlink(missing_ok=True)
    for kf in cipher_keys.all_key_files():
        kf.unlink()
        cipher_keys.shown_path(kf).unlink(missing_ok=True)
    os.replace(plain, db)
    assert db.read_bytes()[:16] == PLAIN
    r = _cli(data, "status")  # the first open after the upgrade
    assert r.returncode == 0, r.stderr
    _unreadable_by_sqlite3(db)
    assert db_helper.rows(db, *TABLES) == before
    assert sorted(p.name for p in data.iterdir() if p.name.startswith("counter.db")) == [
        "counter.db", "counter.db.keyref", "counter.db.marks"]
    r = _cli(data, "recovery-code")
    assert r.returncode == 0 and r.stdout.startswith("recovery code: "), r.stderr
    r = _cli(data, "recovery-code")
    assert r.returncode == 1 and "already shown" in r.stderr  # once only
    assert _cli(data, "encrypt").stdout.strip().endswith("is already encrypted")


def test_rotate_key(tmp_path: Path) -> None:
    data = tmp_path / "counter"
    old_code = _init(data)
    db = data / "counter.db"
    _register(db, 2)
    assert _cli(data, "backup").returncode == 0
    (old_backup,) = (data / "backups").iterdir()
    before = db_helper.rows(db, *TABLES)
    r = _cli(data, "rotate-key")
    assert r.returncode == 0, r.stderr
    new_code = r.stdout.split("recovery code: ", 1)[1].split()[0]
    assert new_code != old_code
    assert db_helper.rows(db, *TABLES) == before
    assert not cipher_db.opens(db, cipher_keys.key_from_code(old_code))
    assert cipher_db.opens(db, cipher_keys.key_from_code(new_code))
    assert cipher_db.opens(old_backup, cipher_keys.key_from_code(old_code))  # old backups keep their key...
    assert _cli(data, "status").returncode == 0
    r = _cli(data, "restore", str(old_backup), "--force")  # ...and still restore on this PC (retired key)
    assert "restored" in r.stdout and "Traceback" not in r.stderr, r.stderr


# ------------------------------------------------------------------------------------------ kill -9
_CONVERT = """
import sys
from pathlib import Path
from opd_fallback.store import open_store
open_store(Path(sys.argv[1])).close()
print("done", flush=True)
"""
_ROTATE = """
import sys
from pathlib import Path
from opd_fallback.cipher import custody
custody.rotate(Path(sys.argv[1]))
print("done", flush=True)
"""


def _kill_at_random(script: str, db: Path, delay: float) -> bool:
    """Run ``script`` on ``db`` in a child and kill -9 it after ``delay`` s; True if it finished first."""
    proc = subprocess.Popen([sys.executable, "-c", script, str(db)], cwd=str(ROOT), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=60)
    assert "Traceback" not in err, err
    return "done" in out


def _template(tmp_path: Path, n: int) -> tuple[Path, dict[str, list[tuple]]]:
    src = tmp_path / "template" / "counter.db"
    _register(src, n)
    return src, db_helper.rows(src, *TABLES)


def _timed(script: str, db: Path) -> float:
    t0 = time.perf_counter()
    assert _kill_at_random(script, db, 120)
    return time.perf_counter() - t0


def _conversion_survives_kills(tmp_path: Path, rounds: int, patients: int) -> None:
    src, want = _template(tmp_path, patients)
    rng = random.Random(23)
    plain = tmp_path / "plain.db"
    db_helper.plain_copy(src, plain)
    key = custody.key_for(src)
    duration = None
    outcomes = set()
    for i in range(rounds):
        db = tmp_path / f"run{i}" / "counter.db"
        db.parent.mkdir()
        db.write_bytes(plain.read_bytes())
        custody.adopt(db, key)  # the key this PC has for it, named beside the database
        if duration is None:
            probe = tmp_path / "probe" / "counter.db"
            probe.parent.mkdir()
            probe.write_bytes(plain.read_bytes())
            duration = _timed(_CONVERT, probe)
        finished = _kill_at_random(_CONVERT, db, rng.uniform(0, duration))
        # one good database: the plain one or the encrypted one, whole
        plain_now = cipher_db.is_plain(db)
        outcomes.add("finished" if finished else ("plain" if plain_now else "encrypted"))
        assert db_helper.rows(db, *TABLES) == want, (i, plain_now)
        assert cipher_db.quick_check(db, None if plain_now else key) == "ok"
        store = open_store(db)  # and the next open finishes the job
        store.close()
        assert not cipher_db.is_plain(db) and db_helper.rows(db, *TABLES) == want
        assert not Path(str(db) + cipher_db.ENCRYPTING_SUFFIX).exists()
    assert outcomes - {"finished"}, "no kill landed before the end: the test proved nothing"


def _rotation_survives_kills(tmp_path: Path, rounds: int, patients: int) -> None:
    src, want = _template(tmp_path, patients)
    rng = random.Random(7)
    duration = None
    landed = 0
    for i in range(rounds):
        data = tmp_path / f"rot{i}"
        db = data / "counter.db"
        data.mkdir()
        db_helper.plain_copy(src, db)
        open_store(db).close()  # encrypted with this folder's own key
        if duration is None:
            probe = tmp_path / "rprobe" / "counter.db"
            probe.parent.mkdir()
            db_helper.plain_copy(src, probe)
            open_store(probe).close()
            duration = _timed(_ROTATE, probe)
        finished = _kill_at_random(_ROTATE, db, rng.uniform(0, duration))
        landed += not finished
        store = open_store(db)  # opens with the old or the new key, whichever the file holds
        store.close()
        assert db_helper.rows(db, *TABLES) == want, i
        kf = custody.key_for(db).source
        assert kf is not None and not cipher_keys.next_path(kf).exists()
    assert landed, "no kill landed before the end: the test proved nothing"


def test_conversion_survives_kill_9_a_few_times(tmp_path: Path) -> None:
    _conversion_survives_kills(tmp_path, rounds=4, patients=150)


def test_rotate_key_survives_kill_9_a_few_times(tmp_path: Path) -> None:
    _rotation_survives_kills(tmp_path, rounds=3, patients=150)


@pytest.mark.chaos
def test_conversion_survives_kill_9_at_random_moments(tmp_path: Path) -> None:
    _conversion_survives_kills(tmp_path, rounds=40, patients=1500)


@pytest.mark.chaos
def test_rotate_key_survives_kill_9_at_random_moments(tmp_path: Path) -> None:
    _rotation_survives_kills(tmp_path, rounds=30, patients=1500)

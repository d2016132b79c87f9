"""``hub backup`` and ``hub restore``: the hub's database copied while it runs, and put back.

- A backup uses SQLite's online backup API (the hub keeps serving; the copy is
  one consistent snapshot, WAL included), is written 0600 beside its final
  name and renamed only after ``PRAGMA integrity_check`` says ok.
- A restore checks the backup the same way, copies it beside the live file,
  starts a new epoch in the copy (hub/identity.py: the counters then send the
  hub whatever it lacks and pull what they lack), keeps the file it replaces
  as ``hub.db.replaced-<time>`` and only then renames the copy into place.
  Stop the hub first: a running hub notices its file was replaced and refuses
  to store more until it is restarted.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from opd_fallback.domain.clock import now_iso, now_ist
from opd_fallback.domain.exits import OpdError
from opd_fallback.hub import identity
from opd_fallback.hub.db import SCHEMA, connect, hub_key

PAGES_PER_STEP = 4096


class BackupProblem(OpdError):
    """The backup or restore was not done; the message says why and what to do."""


@dataclass
class Facts:
    ops: int
    devices: int
    kept_as: str = ""


def _private(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))


def _open(path: Path, key_of: Path) -> sqlite3.Connection:
    """``path`` opened with the key of the hub database ``key_of`` (a copy is encrypted as the file it
    came from or will become: opd_fallback/cipher)."""
    from opd_fallback.cipher import db as cipher_db

    conn: sqlite3.Connection = cipher_db.connect(path, hub_key(key_of), isolation_level=None,
                                                 check_same_thread=False, timeout=30)
    return conn


def _copy(src_path: Path, dst_path: Path, key_of: Path) -> None:
    _private(dst_path)
    src = connect(src_path)
    dst = _open(dst_path, key_of)
    try:
        src.backup(dst, pages=PAGES_PER_STEP)
        dst.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        dst.close()
        src.close()


def _check(path: Path, key_of: Path | None = None) -> Facts:
    try:
        conn = connect(path) if key_of is None else _open(path, key_of)
        try:
            rows = [str(r[0]) for r in conn.execute("PRAGMA integrity_check").fetchall()]
            if rows != ["ok"]:
                raise BackupProblem(f"{path} is damaged ({'; '.join(rows[:2])}); use another backup")
            names = {str(r[0]) for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if not {"op", "device", "central_id"} <= names:
                raise BackupProblem(f"{path} is not a hub database (no op, device and central_id tables)")
            ops = int(conn.execute("SELECT count(*) FROM op").fetchone()[0])
            devices = int(conn.execute("SELECT count(DISTINCT device_id) FROM op").fetchone()[0])
        finally:
            conn.close()
    except Exception as exc:  # sqlite3's or the cipher driver's DatabaseError
        if "DatabaseError" not in {c.__name__ for c in type(exc).__mro__}:
            raise
        raise BackupProblem(f"{path} is not a usable hub database ({exc}); use another backup") from None
    return Facts(ops, devices)


def backup(db: Path, out: Path) -> Facts:
    if not db.exists():
        raise BackupProblem(f"no hub database at {db} (give it with --db)")
    if out.resolve() == db.resolve():
        raise BackupProblem("the backup must be another file than the hub's database")
    tmp = out.with_name(out.name + ".part")
    try:
        _copy(db, tmp, db)
        facts = _check(tmp, db)
        os.replace(tmp, out)
    except sqlite3.Error as exc:
        raise BackupProblem(f"the backup of {db} to {out} failed ({exc}); nothing was written") from None
    except OSError as exc:
        raise BackupProblem(f"the backup of {db} to {out} failed ({exc.strerror or exc}); nothing was written") \
            from None
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + "-wal"), tmp.with_name(tmp.name + "-shm")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
    return facts


def restore(backup_file: Path, db: Path) -> Facts:
    if not backup_file.exists():
        raise BackupProblem(f"no backup file at {backup_file}")
    if db.exists() and backup_file.resolve() == db.resolve():
        raise BackupProblem("the backup is the hub's database itself")
    _check(backup_file)
    tmp = db.with_name(db.name + ".restoring")
    try:
        _copy(backup_file, tmp, db)
        conn = _open(tmp, db)
        try:
            for stmt in SCHEMA:  # an older backup gets this version's tables (and a db_id if it had none)
                conn.execute(stmt)
            identity.ensure(conn)
            identity.new_epoch(conn, f"put back from the backup {backup_file.name} at {now_iso()}")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
        facts = _check(tmp, db)
        if db.exists():
            kept = db.with_name(f"{db.name}.replaced-{now_ist().strftime('%Y%m%dT%H%M%S')}")
            os.replace(db, kept)
            for ext in ("-wal", "-shm"):
                side = db.with_name(db.name + ext)
                if side.exists():
                    os.replace(side, kept.with_name(kept.name + ext))
            facts.kept_as = str(kept)
        os.replace(tmp, db)
        fd = os.open(db.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except sqlite3.Error as exc:
        raise BackupProblem(f"restoring {db} from {backup_file} failed ({exc}); the hub's file is unchanged") \
            from None
    except OSError as exc:
        raise BackupProblem(f"restoring {db} from {backup_file} failed ({exc.strerror or exc})") from None
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + "-wal"), tmp.with_name(tmp.name + "-shm")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
    return facts

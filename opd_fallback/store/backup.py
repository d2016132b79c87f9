"""Backups of the counter database, and bringing one back on a new PC.

A backup is taken with SQLite's online backup API, so the counter may keep
working while it runs and the copy is one consistent snapshot (WAL included).
Every copy is checked with ``PRAGMA integrity_check`` before it counts, and
only then do older copies get rotated away, so a bad night never costs the
last good backup.

Restore never silently throws data away: it refuses to put an older copy over
a database holding newer work unless forced, and even then the replaced
database is first saved beside it. A restored database is older than what
central holds from this device, so restore marks it ``needs_seq_check``
(see :mod:`opd_fallback.store.readiness`) and abandons its free reserved ids.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from opd_fallback.config import private_dir, tighten_file
from opd_fallback.domain.clock import now_ist
from opd_fallback.domain.exits import OpdError
from opd_fallback.store.engine import make_private_db_file

BACKUP_PREFIX = "counter-"
BACKUP_SUFFIX = ".db"
_NAME = re.compile(r"^counter-(?:(?P<dev>[A-Z0-9]{1,16})-)?(?P<ts>\d{8}T\d{6}(?:-\d+)?)\.db$")
PAGES_PER_STEP = 4096  # copy in steps so a writer at the counter is never blocked for long


class BackupError(OpdError):
    """A backup or restore could not be done; the message says why in words."""


@dataclass(frozen=True)
class DbFacts:
    """What a database holds, to compare a backup with a live database."""

    path: str
    ops: int
    max_seq: int
    seq_counter: int
    last_recorded_at: str | None
    last_updated_at: str | None
    pending: int

    def newer_than(self, other: DbFacts) -> bool:
        """True if this database holds work the other does not (more seq, later writes)."""
        if self.max_seq > other.max_seq or self.seq_counter > other.seq_counter:
            return True
        mine, theirs = self.last_updated_at, other.last_updated_at
        return bool(mine and (theirs is None or _ts(mine) > _ts(theirs)))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class BackupResult:
    path: Path
    size_bytes: int
    integrity: str  # "ok" or SQLite's complaint
    facts: DbFacts
    removed: tuple[Path, ...]
    seconds: float

    @property
    def ok(self) -> bool:
        return self.integrity == "ok"

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "size_bytes": self.size_bytes,
            "integrity": self.integrity,
            "ok": self.ok,
            "facts": self.facts.as_dict(),
            "removed": [str(p) for p in self.removed],
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class RestoreResult:
    path: Path
    source: Path
    replaced_saved_as: Path | None
    facts: DbFacts

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "source": str(self.source),
            "replaced_saved_as": None if self.replaced_saved_as is None else str(self.replaced_saved_as),
            "facts": self.facts.as_dict(),
        }


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _connect_ro(path: Path) -> sqlite3.Connection:
    if not path.exists():
        raise BackupError(f"{path} does not exist")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=15)
    conn.execute("PRAGMA busy_timeout=15000")
    return conn


def integrity_check(path: Path | str) -> str:
    """``"ok"`` if SQLite finds the file sound, else its first complaints."""
    p = Path(path)
    try:
        conn = _connect_ro(p)
    except (sqlite3.Error, BackupError) as exc:
        return f"cannot open: {exc}"
    conn.text_factory = lambda b: b.decode("utf-8", errors="replace")  # complaints may quote garbage
    try:
        rows = [str(r[0]) for r in conn.execute("PRAGMA integrity_check(20)").fetchall()]
    except (sqlite3.Error, ValueError) as exc:
        return f"not a sound database: {exc}"
    finally:
        conn.close()
    return "ok" if rows == ["ok"] else "; ".join(rows)


def facts(path: Path | str) -> DbFacts:
    """Counts and high-water marks of a counter database (read-only)."""
    p = Path(path)
    conn = _connect_ro(p)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "op" not in tables:
            raise BackupError(f"{p} is not a counter database (no outbox table)")
        n, max_seq, last_rec, last_upd = conn.execute(
            "SELECT count(*), coalesce(max(seq), 0), max(recorded_at), max(updated_at) FROM op"
        ).fetchone()
        pending = conn.execute("SELECT count(*) FROM op WHERE state='pending'").fetchone()[0]
        seq_counter = 0
        if "counter" in tables:
            row = conn.execute("SELECT value FROM counter WHERE name='seq'").fetchone()
            seq_counter = int(row[0]) if row else 0
    except (sqlite3.Error, ValueError) as exc:  # ValueError: garbled text in a damaged file
        raise BackupError(f"{p} cannot be read as a counter database: {exc}") from exc
    finally:
        conn.close()
    return DbFacts(str(p), int(n), int(max_seq), seq_counter, last_rec, last_upd, int(pending))


def _copy(src_path: Path, dst_path: Path) -> None:
    """Online backup of ``src_path`` into a fresh ``dst_path`` (a consistent snapshot)."""
    src = sqlite3.connect(str(src_path), timeout=15)
    try:
        src.execute("PRAGMA busy_timeout=15000")
        make_private_db_file(Path(dst_path))  # patient data: 0600 from the first byte
        dst = sqlite3.connect(str(dst_path))
        try:
            src.backup(dst, pages=PAGES_PER_STEP)
            dst.execute("PRAGMA journal_mode=DELETE")  # a backup is one self-contained file
            dst.commit()
        finally:
            dst.close()
    finally:
        src.close()
    _fsync(dst_path)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        dfd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def backup_name(device_id: str | None = None, when: datetime | None = None) -> str:
    stamp = (when or now_ist()).strftime("%Y%m%dT%H%M%S")
    dev = f"{device_id}-" if device_id else ""
    return f"{BACKUP_PREFIX}{dev}{stamp}{BACKUP_SUFFIX}"


def list_backups(backups_dir: Path | str) -> list[Path]:
    """Backups in the folder, oldest first (by the time in their name)."""
    d = Path(backups_dir)
    if not d.is_dir():
        return []
    found = [(m.group("ts"), p) for p in d.iterdir() if p.is_file() and (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def rotate(backups_dir: Path | str, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` backups; returns what was removed."""
    if keep < 1:
        raise BackupError("keep at least one backup")
    olds = list_backups(backups_dir)[:-keep]
    for p in olds:
        p.unlink(missing_ok=True)
    return olds


def backup(
    db_path: Path | str, backups_dir: Path | str, *, keep: int = 14, device_id: str | None = None,
    when: datetime | None = None,
) -> BackupResult:
    """Copy the database into ``backups_dir``, check it, then rotate old copies.

    A copy that fails ``integrity_check`` is kept as ``*.db.bad`` for a person
    to look at, does not count as a backup, and nothing is rotated away.
    """
    import time

    started = time.perf_counter()
    src = Path(db_path)
    if not src.exists():
        raise BackupError(f"there is no database at {src} to back up")
    d = private_dir(backups_dir)
    name = backup_name(device_id, when)
    final = d / name
    n = 1
    while final.exists():
        final = d / name.replace(BACKUP_SUFFIX, f"-{n}{BACKUP_SUFFIX}")
        n += 1
    tmp = final.with_name(final.name + ".part")
    tmp.unlink(missing_ok=True)
    try:
        _copy(src, tmp)
    except sqlite3.Error as exc:
        tmp.unlink(missing_ok=True)
        raise BackupError(f"backup of {src} failed: {exc}") from exc
    verdict = integrity_check(tmp)
    if verdict != "ok":
        bad = final.with_name(final.name + ".bad")
        os.replace(tmp, bad)
        return BackupResult(bad, bad.stat().st_size, verdict, facts(src), (), time.perf_counter() - started)
    os.replace(tmp, final)
    _fsync(final)
    removed = tuple(rotate(d, keep))
    return BackupResult(final, final.stat().st_size, verdict, facts(final), removed, time.perf_counter() - started)


def restore(backup_path: Path | str, db_path: Path | str, *, force: bool = False) -> RestoreResult:
    """Put ``backup_path`` in place as the counter database at ``db_path``.

    Refuses a damaged backup, and refuses to replace a database that holds newer
    work than the backup, or is itself damaged, unless ``force``; a replaced
    database is always saved first as ``<db>.replaced-<time>`` (a damaged one
    byte for byte, with its WAL). Stop the counter app before restoring.
    The caller marks the result not ready (:func:`opd_fallback.store.readiness.mark_restored`).
    """
    src = Path(backup_path)
    dst = Path(db_path)
    if not src.exists():
        raise BackupError(f"there is no backup at {src}")
    if src.resolve() == dst.resolve():
        raise BackupError("the backup and the database are the same file")
    verdict = integrity_check(src)
    if verdict != "ok":
        raise BackupError(f"the backup {src} is damaged ({verdict}); choose another backup")
    incoming = facts(src)
    saved: Path | None = None
    if dst.exists():
        saved = dst.with_name(f"{dst.name}.replaced-{now_ist().strftime('%Y%m%dT%H%M%S')}")
        damage = integrity_check(dst)
        if damage != "ok":
            if not force:
                raise BackupError(
                    f"the database at {dst} is damaged ({damage[:200]}); use --force to replace it with the "
                    "backup (it is saved beside it first)"
                )
            for side in ("", "-wal"):  # SQLite may not read it: keep the bytes as they are
                if Path(str(dst) + side).exists():
                    shutil.copyfile(str(dst) + side, str(saved) + side)
                    tighten_file(str(saved) + side)
        else:
            current = facts(dst)
            if current.newer_than(incoming) and not force:
                raise BackupError(
                    f"the database at {dst} is newer than the backup (it has ops up to seq {current.max_seq}, "
                    f"last written {current.last_updated_at}; the backup has up to seq {incoming.max_seq}, "
                    f"{incoming.last_updated_at}). Restoring would put older data over newer: "
                    "use --force only if that database is known to be bad"
                )
            _copy(dst, saved)
    private_dir(dst.parent)
    tmp = dst.with_name(dst.name + ".restoring")
    tmp.unlink(missing_ok=True)
    _copy(src, tmp)
    for side in ("-wal", "-shm"):
        Path(str(dst) + side).unlink(missing_ok=True)
    os.replace(tmp, dst)
    _fsync(dst)
    return RestoreResult(dst, src, saved, facts(dst))

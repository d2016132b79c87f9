"""Backups of the counter database, and bringing one back on a new PC.

A backup is taken with SQLite's online backup API, so the counter may keep
working while it runs and the copy is one consistent snapshot (WAL included).
The copy is encrypted with the counter's own key (SQLCipher copies page by
page between two files keyed alike), so a backup stick opens only with this
counter's key file or its recovery code (cipher/keys.py).
Every copy is checked with ``PRAGMA integrity_check`` (with the key) before it counts, and
only then do older copies get rotated away, so a bad night never costs the
last good backup.

Restore never silently throws data away: it refuses to put an older copy over
a database holding newer work unless forced, and even then the replaced
database is first saved beside it. A restored database is older than what
central holds from this device, so restore marks it ``needs_seq_check``
(see :mod:`opd_fallback.store.readiness`) and abandons its free reserved ids.

Which key opens a file: the one given (a recovery code typed at ``restore``),
else each key this PC keeps, their rotations' retired keys included
(:func:`known_keys`): a backup stick taken to another PC opens only with the
recovery code or the key file. A restored database keeps its backup's key, which
becomes the data directory's key; the key it replaces is retired, not lost.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from opd_fallback.cipher import custody
from opd_fallback.cipher import db as cipher_db
from opd_fallback.cipher import keys as cipher_keys
from opd_fallback.cipher.keys import Key, KeyProblem
from opd_fallback.config import private_dir, tighten_file
from opd_fallback.domain.clock import now_ist
from opd_fallback.domain.exits import OpdError
from opd_fallback.store.engine import make_private_db_file
from opd_fallback.store.states import PENDING

if TYPE_CHECKING:
    from opd_fallback.cipher.db import DBConnection
    from opd_fallback.domain.jsonio import JSONObject

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

    def as_dict(self) -> JSONObject:
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

    def as_dict(self) -> JSONObject:
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

    def as_dict(self) -> JSONObject:
        return {
            "path": str(self.path),
            "source": str(self.source),
            "replaced_saved_as": None if self.replaced_saved_as is None else str(self.replaced_saved_as),
            "facts": self.facts.as_dict(),
        }


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


_DB_ERRORS = (sqlite3.Error, cipher_db.Error)


def known_keys(path: Path | str) -> list[Key]:
    """Keys this PC keeps that may open ``path`` (see the module docstring), likeliest first."""
    found: list[Key] = []
    files = cipher_keys.all_key_files()
    named = cipher_keys.default_key_file(path)
    if named is not None:
        files.insert(0, named)
    for kf in files:
        for k in [*cipher_keys.candidates(kf), *cipher_keys.retired(kf)]:
            if all(k.secret != f.secret for f in found):
                found.append(k)
    return found


def key_of(path: Path | str, given: Iterable[Key] = ()) -> Key:
    """The key that opens the encrypted file at ``path``: one of ``given``, else
    one of :func:`known_keys`; KeyProblem with the sentence when none does."""
    p = Path(path)
    tried = [*given] or known_keys(p)
    for k in tried:
        if cipher_db.opens(p, k):
            return k
    if given:
        raise KeyProblem("wrong", f"the recovery code or key file given does not open {p}")
    raise KeyProblem("missing", f"no key on this PC opens {p} (it was made on another PC or counter): give its "
                                "recovery code with --recovery-code-stdin, or its key file with --key-file")


def _connect_ro(path: Path, key: Key | None = None) -> DBConnection:
    if not path.exists():
        raise BackupError(f"{path} does not exist")
    k = None if cipher_db.is_plain(path) else (key or key_of(path))
    conn = cipher_db.connect(path, k, readonly=True, timeout=15)
    conn.execute("PRAGMA busy_timeout=15000")
    return conn


def integrity_check(path: Path | str, key: Key | None = None) -> str:
    """``"ok"`` if SQLite finds the file sound, else its first complaints."""
    p = Path(path)
    try:
        conn = _connect_ro(p, key)
    except (*_DB_ERRORS, BackupError, KeyProblem) as exc:
        return f"cannot open: {exc}"
    conn.text_factory = lambda b: b.decode("utf-8", errors="replace")  # complaints may quote garbage
    try:
        rows = [str(r[0]) for r in conn.execute("PRAGMA integrity_check(20)").fetchall()]
    except (*_DB_ERRORS, ValueError) as exc:
        return f"not a sound database: {exc}"
    finally:
        conn.close()
    return "ok" if rows == ["ok"] else "; ".join(rows)


def facts(path: Path | str, key: Key | None = None) -> DbFacts:
    """Counts and high-water marks of a counter database (read-only)."""
    p = Path(path)
    try:
        conn = _connect_ro(p, key)
    except KeyProblem as exc:
        raise BackupError(str(exc)) from None
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "op" not in tables:
            raise BackupError(f"{p} is not a counter database (no outbox table)")
        n, max_seq, last_rec, last_upd = conn.execute(
            "SELECT count(*), coalesce(max(seq), 0), max(recorded_at), max(updated_at) FROM op"
        ).fetchone()
        pending = conn.execute("SELECT count(*) FROM op WHERE state=?", (PENDING,)).fetchone()[0]
        seq_counter = 0
        if "counter" in tables:
            row = conn.execute("SELECT value FROM counter WHERE name='seq'").fetchone()
            seq_counter = int(row[0]) if row else 0
    except (*_DB_ERRORS, ValueError) as exc:  # ValueError: garbled text in a damaged file
        raise BackupError(f"{p} cannot be read as a counter database: {exc}") from exc
    finally:
        conn.close()
    return DbFacts(str(p), int(n), int(max_seq), seq_counter, last_rec, last_upd, int(pending))


def _copy(src_path: Path, dst_path: Path, key: Key) -> None:
    """Online backup of ``src_path`` into a fresh ``dst_path`` (a consistent
    snapshot), both encrypted with ``key``."""
    src = cipher_db.connect(src_path, key, timeout=15)
    try:
        src.execute("PRAGMA busy_timeout=15000")
        make_private_db_file(Path(dst_path))  # patient data: 0600 from the first byte
        dst = cipher_db.dbapi2.connect(str(dst_path))
        try:
            cipher_db.apply_key(dst, key)
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
    key = custody.key_for(src)
    try:
        _copy(src, tmp, key)
    except _DB_ERRORS as exc:
        tmp.unlink(missing_ok=True)
        raise BackupError(f"backup of {src} failed: {exc}") from exc
    verdict = integrity_check(tmp, key)
    if verdict != "ok":
        bad = final.with_name(final.name + ".bad")
        os.replace(tmp, bad)
        return BackupResult(bad, bad.stat().st_size, verdict, facts(src, key), (), time.perf_counter() - started)
    os.replace(tmp, final)
    _fsync(final)
    removed = tuple(rotate(d, keep))
    return BackupResult(final, final.stat().st_size, verdict, facts(final, key), removed,
                        time.perf_counter() - started)


def restore(backup_path: Path | str, db_path: Path | str, *, force: bool = False,
            keys: Iterable[Key] = ()) -> RestoreResult:
    """Put ``backup_path`` in place as the counter database at ``db_path``.

    Refuses a damaged backup, and refuses to replace a database that holds newer
    work than the backup, or is itself damaged, unless ``force``; a replaced
    database is always saved first as ``<db>.replaced-<time>`` (a damaged one
    byte for byte, with its WAL). Stop the counter app before restoring.
    The caller marks the result not ready (:func:`opd_fallback.store.readiness.mark_restored`).
    ``keys``: the backup's key (from its recovery code or key file) when this PC has none that opens it.
    """
    src = Path(backup_path)
    dst = Path(db_path)
    if not src.exists():
        raise BackupError(f"there is no backup at {src}")
    if src.resolve() == dst.resolve():
        raise BackupError("the backup and the database are the same file")
    in_key = None if cipher_db.is_plain(src) else key_of(src, keys)  # KeyProblem: no key opens it
    verdict = integrity_check(src, in_key)
    if verdict != "ok":
        raise BackupError(f"the backup {src} is damaged ({verdict}); choose another backup")
    incoming = facts(src, in_key)
    saved: Path | None = None
    if dst.exists() and dst.stat().st_size == 0:
        dst.unlink()  # an empty file (made and never written): nothing to keep
    dst_key: Key | None = None
    if dst.exists():
        saved = dst.with_name(f"{dst.name}.replaced-{now_ist().strftime('%Y%m%dT%H%M%S')}")
        dst_key = custody.key_for(dst)
        damage = integrity_check(dst, dst_key)
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
            current = facts(dst, dst_key)
            if current.newer_than(incoming) and not force:
                raise BackupError(
                    f"the database at {dst} is newer than the backup (it has ops up to seq {current.max_seq}, "
                    f"last written {current.last_updated_at}; the backup has up to seq {incoming.max_seq}, "
                    f"{incoming.last_updated_at}). Restoring would put older data over newer: "
                    "use --force only if that database is known to be bad"
                )
            _copy(dst, saved, dst_key)
    private_dir(dst.parent)
    tmp = dst.with_name(dst.name + ".restoring")
    tmp.unlink(missing_ok=True)
    if in_key is None:  # a plain backup of an older version: encrypted with this counter's key on the way in
        in_key = custody.key_for(dst) if dst_key is None else dst_key
        shutil.copyfile(src, tmp)
        tighten_file(tmp)
        cipher_db.encrypt_in_place(tmp, in_key)
    else:
        _copy(src, tmp, in_key)
    custody.adopt(dst, in_key)
    for side in ("-wal", "-shm"):
        Path(str(dst) + side).unlink(missing_ok=True)
    os.replace(tmp, dst)
    _fsync(dst)
    return RestoreResult(dst, src, saved, facts(dst, in_key))



"""One place that turns a failing disk or database into one plain sentence.

A full disk, a read-only folder, a damaged ``counter.db`` or a failing disk
reach us as ``sqlite3`` errors (with SQLite's result code), SQLAlchemy's
``OperationalError`` / ``DatabaseError`` wrapping them, or ``OSError`` from our
own file writes. ``explain`` reads the code (not the English text, except as a
last resort), and answers a ``StorageProblem``: what is wrong, what to do, and
the exit status the CLI documents in README. The full traceback goes to a
0600 log file (``<data dir>/logs/errors.log``), never to the terminal; the
sentence names only paths, never a record (SQL parameters are hidden by the
engine, see ``store/engine.py``).

The counter UI (``tui/app.py``) and the CLI (``cli/__init__.py``) both call
``explain``, so the words are the same everywhere.

The database is SQLCipher's (``sqlcipher3.dbapi2`` errors, the same result
codes as ``sqlite3``'s, mapped the same way). A key that is missing or does
not open the file is its own kind, ``key``, with the sentence of
:class:`opd_fallback.cipher.keys.KeyProblem` and exit status 8
(:data:`EXIT_KEY`, 8: ``ExitCode.DATABASE_KEY``); a wrong key is never called damage.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import traceback
from dataclasses import dataclass
from pathlib import Path

from opd_fallback.cipher import db as cipher_db
from opd_fallback.cipher.keys import KeyProblem
from opd_fallback.config import open_private, private_dir
from opd_fallback.domain.clock import now_iso
from opd_fallback.domain.exits import ExitCode, OpdError

# Exit statuses (domain/exits.py, the README's "Exit statuses")
EXIT_BUSY = ExitCode.DATABASE_BUSY  # another program holds the database (was 4, which is the sync lease)
EXIT_STORAGE = ExitCode.DISK  # full disk, read-only folder, cannot open, I/O error
EXIT_DAMAGED = ExitCode.DAMAGED  # the database file is damaged: restore a backup
EXIT_KEY = ExitCode.DATABASE_KEY  # the database's key is missing or does not open it (issue 23)

_DB_ERRORS = (sqlite3.Error, cipher_db.Error)

# SQLite primary result codes (extended codes keep them in the low byte).
SQLITE_BUSY, SQLITE_LOCKED, SQLITE_READONLY, SQLITE_IOERR = 5, 6, 8, 10
SQLITE_CORRUPT, SQLITE_FULL, SQLITE_CANTOPEN, SQLITE_NOTADB = 11, 13, 14, 26

_BY_CODE = {
    SQLITE_FULL: "full",
    SQLITE_READONLY: "readonly",
    SQLITE_CORRUPT: "damaged",
    SQLITE_NOTADB: "damaged",
    SQLITE_CANTOPEN: "cantopen",
    SQLITE_IOERR: "io",
    SQLITE_BUSY: "busy",
    SQLITE_LOCKED: "busy",
}
_BY_ERRNO = {
    errno.ENOSPC: "full",
    errno.EDQUOT: "full",
    errno.EROFS: "readonly",
    errno.EACCES: "readonly",
    errno.EPERM: "readonly",
    errno.EIO: "io",
}
# Only when an error carries no code (older drivers, wrapped messages).
_BY_TEXT = (
    ("database or disk is full", "full"),
    ("no space left on device", "full"),
    ("attempt to write a readonly database", "readonly"),
    ("read-only file system", "readonly"),
    ("file is not a database", "damaged"),
    ("database disk image is malformed", "damaged"),
    ("unable to open database file", "cantopen"),
    ("disk i/o error", "io"),
    ("database is locked", "busy"),
)


@dataclass
class StorageProblem(OpdError):
    """The disk or the database stopped an action. ``str()`` is the sentence."""

    kind: str  # full | readonly | damaged | cantopen | io | busy | key | convert
    sentence: str
    exit_code: int
    log_path: Path | None = None

    def __str__(self) -> str:
        if self.log_path is None:
            return self.sentence
        return f"{self.sentence} (Details for IT: {self.log_path}.)"


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop(0)
        if e is None or any(e is s for s in seen) or len(seen) > 20:
            continue
        seen.append(e)
        todo += [getattr(e, "orig", None), e.__cause__, e.__context__]
    return seen


def kind_of(exc: BaseException) -> str | None:
    """What kind of storage failure ``exc`` is, or None if it is something else."""
    chain = _chain(exc)
    for e in chain:
        if isinstance(e, StorageProblem):
            return e.kind
        if isinstance(e, KeyProblem):
            return "key"
        if isinstance(e, cipher_db.ConversionFailed):
            return "convert"
        if isinstance(e, _DB_ERRORS):
            code = getattr(e, "sqlite_errorcode", None)
            if isinstance(code, int) and (code & 0xFF) in _BY_CODE:
                return _BY_CODE[code & 0xFF]
        if isinstance(e, OSError) and e.errno in _BY_ERRNO:
            return _BY_ERRNO[e.errno]
    for e in chain:
        if isinstance(e, _DB_ERRORS) or type(e).__module__.startswith("sqlalchemy"):
            text = str(e).lower()
            for needle, kind in _BY_TEXT:
                if needle in text:
                    return kind
    return None


def sentence(kind: str, db_path: Path) -> tuple[str, int]:
    """The sentence for a kind of failure of the database at ``db_path``, and its exit status."""
    folder = db_path.parent
    if kind == "key":
        return (f"The key of the counter's database at {db_path} is missing or does not open it: copy this "
                "counter's key file back (or set OPD_DB_KEY_FILE), or run `opd-fallback recover-key "
                "--recovery-code-stdin` with its recovery code; nothing was saved for this action.", EXIT_KEY)
    if kind == "convert":
        return (f"The counter's database at {db_path} could not be encrypted (the encrypted copy did not check "
                "out); the unencrypted database is untouched and was not used: free disk space and try again, "
                "or report it with the error log.", EXIT_STORAGE)
    if kind == "damaged":
        return (f"The counter's database at {db_path} is damaged: restore the last backup with "
                f"`opd-fallback restore BACKUP` (backups are in {folder / 'backups'}); "
                "nothing was saved for this action.", EXIT_DAMAGED)
    if kind == "full":
        return (f"The disk holding {folder} is full: free space on it and try again; "
                "nothing was saved for this action.", EXIT_STORAGE)
    if kind == "readonly":
        return (f"The counter's data folder {folder} cannot be written (a read-only disk or wrong "
                "permissions): make it writable for this user and try again; nothing was saved for this action.",
                EXIT_STORAGE)
    if kind == "cantopen":
        return (f"The counter's database at {db_path} cannot be opened (the folder is missing, not "
                "readable, or on a read-only disk): check the folder and try again.", EXIT_STORAGE)
    if kind == "busy":
        return (f"Another program is holding the counter's database at {db_path} (a sync, a backup "
                "or a stuck process): wait a minute and try again; nothing was saved for this action.",
                EXIT_BUSY)
    return (f"The disk holding {folder} reported an error while reading or writing: check the disk "
            "(it may be failing or unplugged); if this repeats, restore the last backup on a good disk. "
            "Nothing was saved for this action.", EXIT_STORAGE)


def _no_space(folder: Path) -> bool:
    try:
        st = os.statvfs(folder)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < 64 * 1024


def _read_only_folder(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY) or not os.access(folder, os.W_OK)
    except OSError:
        return False


def write_log(exc: BaseException, data_dir: Path | None, *, where: str = "") -> Path | None:
    """Append the traceback to ``<data_dir>/logs/errors.log`` (0600, folder 0700),
    or, when that disk cannot take it, to the user's log folder. None if neither can."""
    import platformdirs

    text = "".join(traceback.format_exception(exc))
    record = f"--- {now_iso()} pid {os.getpid()} {where}\n{text}\n"
    places = [data_dir / "logs"] if data_dir is not None else []
    places.append(Path(platformdirs.user_log_dir("opd-fallback", appauthor=False)))
    for folder in places:
        try:
            private_dir(folder)
            path = folder / "errors.log"
            with open_private(path, "a") as fh:
                fh.write(record)
            return path
        except OSError:
            continue
    return None


def explain(exc: BaseException, db_path: Path | None, *, where: str = "", log: bool = True) -> StorageProblem | None:
    """A ``StorageProblem`` for ``exc`` (its traceback logged), or None when
    ``exc`` is not a disk or database failure."""
    if isinstance(exc, StorageProblem):
        return exc
    kind = kind_of(exc)
    if kind is None:
        return None
    path = db_path or Path("counter.db")
    said = next((e for e in _chain(exc) if isinstance(e, KeyProblem)), None)
    if said is not None:  # its own sentence names the key file; the traceback is not worth a log
        text = said.sentence[:1].upper() + said.sentence[1:]
        return StorageProblem("key", f"{text}; nothing was saved for this action.", EXIT_KEY, None)
    if kind in ("io", "cantopen") and _no_space(path.parent):
        kind = "full"  # SQLite says "disk I/O error" when it cannot grow its -shm file
    elif kind == "cantopen" and _read_only_folder(path.parent):
        kind = "readonly"  # SQLite cannot make its -shm file there: say the real cause
    text, code = sentence(kind, path)
    log_path = _logged(exc, kind, path, where) if log else None
    return StorageProblem(kind, text, code, log_path)


_last_logged: dict[tuple[str, str], tuple[float, Path | None]] = {}
LOG_EVERY_S = 60.0  # a counter polling a broken disk logs its traceback once a minute, not every tick


def _logged(exc: BaseException, kind: str, path: Path, where: str) -> Path | None:
    import time

    key = (kind, str(path))
    now = time.monotonic()
    seen = _last_logged.get(key)
    if seen is not None and now - seen[0] < LOG_EVERY_S:
        return seen[1]
    log_path = write_log(exc, path.parent, where=where)
    _last_logged[key] = (now, log_path)
    return log_path

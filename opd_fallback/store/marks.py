"""High-water marks kept outside the database, so a database that went back in
time cannot hand out a number twice.

SQLite keeps the latest commits in ``counter.db-wal``; if that file is lost
after a crash (deleted by a clean-up tool, or an old copy of ``counter.db`` put
back), the database silently returns to an older state: its ``seq`` counter
is lower than numbers already printed on slips, receipts and sample labels, and
reserved central ids it already used look free again.

So every transaction that takes a number (:func:`opd_fallback.store.numbers.next_value`)
also records, in a small 0600 file beside the database (``counter.db.marks``),
the highest value of each counter it handed out:

* ``pending``: written and fsynced *before* the commit, so the file is always
  at or above anything the database ever committed;
* ``committed``: written after the commit (no fsync: it only sharpens the
  message), by a background thread of this process (:func:`settle` waits for
  it; ``Store.close`` does), so the save that committed does not wait for a
  second file write (issue 21 item 4: F10 to commit).

The ``pending`` write stays on the save's path, before its commit: that is the
guarantee (measured on this project's ext4 disk: its fsync ~2.5 ms and rename
~1.3 ms of a save's F10 to commit; the ``committed`` write took another ~1.8 ms
and is the part moved off the path). Writing ``pending`` ahead (a block of
numbers at once) was weighed and left out: a database at or below ``pending``
is how a database that went back is recognised, so a mark written ahead would
make every number look like one handed out before. In this process the writes
of the file take turns (one lock), so a late ``committed`` write never puts
back an older ``pending`` (each merges what is in the file by the highest
value).

Before handing out a number, the counter compares its value with the file.
Below ``pending``: the database is behind numbers that may have been printed,
so every counter in the file is raised above its mark, free reserved ids are
abandoned (they may have been used in the lost changes), and an audit entry is
written; below ``committed`` (changes that were saved are gone, not just one
interrupted save) a warning also stays in ``meta`` for ``status`` until a
person has looked. New numbers therefore continue above everything known;
none is reused. Central's ``max_seq`` is the second guard
(:func:`opd_fallback.store.readiness.check_with_central`).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:  # SQLAlchemy is imported where used: `status` reads the marks without it
    from sqlmodel import Session

SUFFIX = ".marks"
WENT_BACK = "went_back_in_time"  # meta key: the warning in words, until a person clears it
_INFO_KEY = "opd_marks"
_LISTENING = "opd_marks_listening"
_KEEP_TOKEN_DAYS = 3  # token counters (per department per day) older than this are dropped from the file


@dataclass
class Marks:
    pending: dict[str, int] = field(default_factory=dict)
    committed: dict[str, int] = field(default_factory=dict)


def path_for(db_path: Path | str) -> Path:
    p = Path(db_path)
    return p.with_name(p.name + SUFFIX)


def db_path_of(session: Session) -> Path | None:
    """The database file under a session, None for an in-memory database."""
    name = session.get_bind().engine.url.database
    if not name or name == ":memory:" or name.startswith("file::memory:"):
        return None
    return Path(name)


def read(path: Path) -> Marks | None:
    """The marks file, None when it is missing or unreadable (then only central can tell)."""
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    if not isinstance(data, dict):
        return None

    def ints(d: object) -> dict[str, int]:
        return {str(k): int(v) for k, v in d.items() if isinstance(v, int)} if isinstance(d, dict) else {}

    return Marks(ints(data.get("pending")), ints(data.get("committed")))


def _prune(values: dict[str, int]) -> dict[str, int]:
    tokens = sorted({k.rsplit(":", 1)[-1] for k in values if k.startswith("token:")})
    keep = set(tokens[-_KEEP_TOKEN_DAYS:])
    return {k: v for k, v in values.items() if not k.startswith("token:") or k.rsplit(":", 1)[-1] in keep}


def write(path: Path, marks: Marks, *, durable: bool) -> None:
    """Replace the file atomically (a private temporary file in the same folder, then rename)."""
    body = orjson.dumps({"version": 1, "pending": _prune(marks.pending), "committed": _prune(marks.committed)})
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # O_EXCL, 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(body)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@dataclass
class _TxMarks:
    """What one transaction handed out, and the file as it was when it began."""

    path: Path
    before: Marks
    handed_out: dict[str, int] = field(default_factory=dict)


def _tx(session: Session) -> _TxMarks | None:
    state: _TxMarks | None = session.info.get(_INFO_KEY)
    if state is not None:
        return state
    db = db_path_of(session)
    if db is None:
        return None
    path = path_for(db)
    state = _TxMarks(path, read(path) or Marks())
    session.info[_INFO_KEY] = state
    if not session.info.get(_LISTENING):  # once per session (listeners cannot be removed while they run)
        session.info[_LISTENING] = True
        from sqlalchemy import event

        event.listen(session, "before_commit", _before_commit)
        event.listen(session, "after_commit", _after_commit)
        event.listen(session, "after_rollback", _forget)
    return state


def _merged(before: dict[str, int], new: dict[str, int]) -> dict[str, int]:
    out = dict(before)
    for k, v in new.items():
        out[k] = max(out.get(k, 0), v)
    return out


_FILE_TURN = threading.Lock()  # one read-merge-write of a marks file at a time in this process
_LATER: dict[Path, dict[str, int]] = {}  # committed marks to write, by file (merged: the last wins)
_LATER_CV = threading.Condition()
_writer: threading.Thread | None = None


def _write_committed(path: Path, handed_out: dict[str, int], before: Marks) -> None:
    with _FILE_TURN:
        fresh = read(path) or before
        with contextlib.suppress(OSError):  # only sharpens a later message; the pending mark is what guards
            write(path, Marks(_merged(fresh.pending, handed_out), _merged(fresh.committed, handed_out)),
                  durable=False)


def _committed_writer() -> None:
    while True:
        with _LATER_CV:
            while not _LATER:
                _LATER_CV.wait()
            path = next(iter(_LATER))
            values = _LATER[path]
        _write_committed(path, values, Marks())
        with _LATER_CV:
            if _LATER.get(path) is values:  # nothing newer came meanwhile
                del _LATER[path]
            _LATER_CV.notify_all()


def _later(path: Path, handed_out: dict[str, int]) -> None:
    global _writer
    with _LATER_CV:
        _LATER[path] = _merged(_LATER.get(path, {}), handed_out)
        if _writer is None or not _writer.is_alive():
            _writer = threading.Thread(target=_committed_writer, name="marks-committed", daemon=True)
            _writer.start()
        _LATER_CV.notify_all()


def settle(timeout_s: float = 5.0) -> bool:
    """Wait until the ``committed`` marks of this process's commits are in their files."""
    with _LATER_CV:
        return _LATER_CV.wait_for(lambda: not _LATER, timeout_s)


def _before_commit(session: Session) -> None:
    from sqlalchemy import text

    state = session.info.get(_INFO_KEY)
    if state is None or not state.handed_out:
        return
    # what this commit will hold (a savepoint rolled back inside it gave its numbers back)
    names = sorted(state.handed_out)
    params = {f"n{i}": n for i, n in enumerate(names)}
    rows = session.execute(text(
        f"SELECT name, value FROM counter WHERE name IN ({', '.join(':' + k for k in params)})"), params).all()
    state.handed_out = {str(name): int(value) for name, value in rows}
    with _FILE_TURN:
        fresh = read(state.path) or state.before  # another process may have written meanwhile
        write(state.path, Marks(_merged(fresh.pending, state.handed_out), fresh.committed), durable=True)


def _after_commit(session: Session) -> None:
    state = session.info.pop(_INFO_KEY, None)
    if state is None or not state.handed_out:
        return
    _later(state.path, state.handed_out)  # off the save's path (see the module's docstring)


def _forget(session: Session) -> None:
    session.info.pop(_INFO_KEY, None)


def floor_for(session: Session, name: str) -> tuple[int, int] | None:
    """``(pending, committed)`` marks of counter ``name`` known outside the database, or None."""
    state = _tx(session)
    if state is None:
        return None
    return state.before.pending.get(name, 0), state.before.committed.get(name, 0)


def all_pending(session: Session) -> dict[str, int]:
    state = _tx(session)
    return dict(state.before.pending) if state is not None else {}


def note(session: Session, name: str, value: int) -> None:
    """Counter ``name`` handed out ``value`` in this transaction (written to the file before commit)."""
    state = _tx(session)
    if state is not None:
        state.handed_out[name] = max(state.handed_out.get(name, 0), value)


def behind_words(session: Session, db_path: Path | str) -> str | None:
    """In words, why this database is older than numbers it already handed out
    (read-only: for ``status`` before any new work), or None."""
    from opd_fallback.store import numbers

    return went_back_words(db_path, lambda name: numbers.peek(session, name))


def went_back_words(db_path: Path | str, peek: Callable[[str], int]) -> str | None:
    """:func:`behind_words` with ``peek(name)`` giving the database's current
    value of a counter (so ``status`` can ask with plain ``sqlite3``)."""
    known = read(path_for(db_path))
    if known is None:
        return None
    for name, mark in sorted(known.committed.items()):
        have = peek(name)
        if have < mark:
            return (f"this counter's database is older than numbers it already handed out ({name} {have} here, "
                    f"{mark} saved before): its latest changes were lost (was counter.db-wal deleted, or an old "
                    "copy put back?); new numbers will continue above them, and the lost records must be entered "
                    "again from their paper slips")
    return None

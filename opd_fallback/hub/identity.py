"""Who the hub's database is, which history of it, and whether it is still the file we opened.

Decisions (after Morango's database id and per-instance counters; no code of it):

- ``db_id`` is made once, with the file. A re-created file is another
  database: counters that see a new ``db_id`` send it everything again.
- ``epoch`` names one unbroken history of that file. It changes whenever the
  data went back or was replaced: ``hub restore`` of a backup, a start that
  finds the file holding less than this hub last served (the ``.seen`` file
  beside it), or a counter telling the hub at an exchange that it holds less
  than it acknowledged. A counter that sees a new epoch compares what the hub
  holds with what it has, sends what is missing and pulls what it lacks.
- ``PRAGMA quick_check`` at start: a damaged file is refused in one sentence,
  never served. While running, the path's (device, inode) and the ``db_id``
  inside are compared with those at start, so a deleted or replaced file is
  noticed instead of acknowledging into a file nobody will read again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from opd_fallback.domain.clock import now_iso
from opd_fallback.domain.exits import OpdError

log = logging.getLogger("opd_fallback.hub")


class HubDatabaseProblem(OpdError):
    """The hub's database cannot be used; ``str()`` is the sentence for a person."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Identity:
    db_id: str
    epoch: str
    epoch_at: str
    epoch_reason: str


def _get(conn: sqlite3.Connection, name: str) -> str | None:
    row = conn.execute("SELECT value FROM hub_meta WHERE name=?", (name,)).fetchone()
    return None if row is None else str(row[0])


def _put(conn: sqlite3.Connection, name: str, value: str) -> None:
    conn.execute("INSERT INTO hub_meta(name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value=excluded.value",
                 (name, value))


def ensure(conn: sqlite3.Connection) -> None:
    """A db_id and an epoch for a new (or older) file, and the held table filled once."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        if _get(conn, "db_id") is None:
            _put(conn, "db_id", secrets.token_hex(8))
        if _get(conn, "epoch") is None:
            _put(conn, "epoch", secrets.token_hex(4))
            _put(conn, "epoch_at", now_iso())
            _put(conn, "epoch_reason", "new hub database")
        if _get(conn, "held_filled") is None:
            conn.execute("DELETE FROM held")
            conn.execute("INSERT INTO held(device_id, max_seq, ops) SELECT device_id, max(seq), count(*) FROM op "
                         "GROUP BY device_id")
            _put(conn, "held_filled", "1")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # SQLite already rolled back after a full disk or I/O error
            conn.execute("ROLLBACK")
        raise


def read(conn: sqlite3.Connection) -> Identity:
    rows = dict(conn.execute("SELECT name, value FROM hub_meta WHERE name IN "
                             "('db_id','epoch','epoch_at','epoch_reason')").fetchall())
    return Identity(str(rows.get("db_id", "")), str(rows.get("epoch", "")), str(rows.get("epoch_at", "")),
                    str(rows.get("epoch_reason", "")))


def new_epoch(conn: sqlite3.Connection, reason: str) -> str:
    """Start a new history (inside the caller's transaction, or on its own)."""
    epoch = secrets.token_hex(4)
    own = not conn.in_transaction
    if own:
        conn.execute("BEGIN IMMEDIATE")
    try:
        _put(conn, "epoch", epoch)
        _put(conn, "epoch_at", now_iso())
        _put(conn, "epoch_reason", reason)
        if own:
            conn.execute("COMMIT")
    except BaseException:
        if own and conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return epoch


def hub_seq(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT coalesce(max(value), 0) FROM hub_counter").fetchone()
    return int(row[0])


# --- checks of the file ---------------------------------------------------------------
def damaged_words(path: Path, detail: str) -> str:
    return (f"the hub's database {path} is damaged ({detail}); the hub does not serve a damaged file. "
            f"Stop the hub, move {path.name} aside and put back the last backup ('opd-fallback hub restore "
            f"BACKUP --db {path}'), or start on an empty file: the counters fill it again")


def quick_check(path: Path) -> None:
    """Raise ``HubDatabaseProblem`` unless SQLite's quick_check says ok."""
    if not path.exists():
        return
    from opd_fallback.hub.db import connect  # opened as the hub opens it (its key, if encrypted)

    try:
        conn = connect(path)
        try:
            rows = [str(r[0]) for r in conn.execute("PRAGMA quick_check").fetchall()]
        finally:
            conn.close()
    except Exception as exc:  # sqlite3's or the cipher driver's DatabaseError
        if "DatabaseError" not in {c.__name__ for c in type(exc).__mro__}:
            raise
        raise HubDatabaseProblem("hub_db_damaged", damaged_words(path, str(exc))) from None
    if rows != ["ok"]:
        first = " ".join(" ".join(rows[:3]).replace("*** in database main ***", "").split())
        raise HubDatabaseProblem("hub_db_damaged", damaged_words(path, first[:160] or "quick_check failed"))


def file_key(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino)


def replaced_words(path: Path) -> str:
    return (f"the hub's database {path} was deleted or replaced while the hub was running, so nothing more is "
            f"stored; restart the hub ('opd-fallback hub serve --db {path}'): the counters send it what it lacks")


# --- what this hub last served, beside the file (to notice a file put back while stopped) -----
def seen_path(path: Path) -> Path:
    return path.with_name(path.name + ".seen")


def write_seen(path: Path, ident: Identity, top: int) -> None:
    """Best effort, no fsync: losing it only means a counter notices instead of the hub."""
    tmp = seen_path(path).with_suffix(".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({"db_id": ident.db_id, "epoch": ident.epoch, "hub_seq": top}, fh)
        os.replace(tmp, seen_path(path))
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def check_seen(path: Path, conn: sqlite3.Connection) -> str | None:
    """At start: if this file holds less than this hub last served, start a new epoch; returns why."""
    try:
        seen = json.loads(seen_path(path).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(seen, dict):
        return None
    ident = read(conn)
    top = hub_seq(conn)
    if seen.get("db_id") == ident.db_id and seen.get("epoch") == ident.epoch and int(seen.get("hub_seq") or 0) > top:
        why = (f"the database holds less than this hub had served (hub sequence {top} < {seen['hub_seq']}): "
               "it was put back from an older copy")
        new_epoch(conn, why)
        return why
    return None

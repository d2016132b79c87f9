"""The print spool: every document is kept before it is printed, with whether
it printed, so a failed print is visible and any slip, receipt or label can be
reprinted, even after a restart.

The documents hold patient names, so the spool is an encrypted SQLite file
(``<spool dir>/spool.db``, SQLCipher through the one opener
:func:`opd_fallback.cipher.db.connect`) keyed with the counter database's own
key (the data directory's ``counter.db`` beside the spool folder), so one
recovery code covers the counter. A spool of JSON files from an older version
is moved into it on first use and its plain files removed. The file is opened
for each step and closed after (rollback journal, ``synchronous=FULL``), so
nothing stays open in a printing thread and the folder holds one file at rest.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from opd_fallback.cipher import custody
from opd_fallback.cipher import db as cipher_db
from opd_fallback.cipher.keys import Key, KeyProblem
from opd_fallback.config import private_dir
from opd_fallback.printing.base import Printer, PrintError
from opd_fallback.printing.document import Document

if TYPE_CHECKING:
    from opd_fallback.cipher.db import DBConnection
    from opd_fallback.domain.jsonio import JSONObject

SPOOL_DB = "spool.db"
COUNTER_DB = "counter.db"  # datadir.DB_FILE: the database whose key the spool shares
_SCHEMA = """CREATE TABLE IF NOT EXISTS doc (
    id INTEGER PRIMARY KEY, name TEXT UNIQUE, created_at TEXT NOT NULL, kind TEXT NOT NULL, ref TEXT NOT NULL,
    title TEXT NOT NULL, body TEXT NOT NULL, printed INTEGER NOT NULL DEFAULT 0, error TEXT, marked_at TEXT)"""


@dataclass(frozen=True, slots=True)
class SpoolEntry:
    path: int  # the spooled copy's id (what load() and mark() take)
    kind: str
    ref: str
    title: str
    created_at: str
    printed: bool
    error: str | None


class Spool:
    """One encrypted file under ``directory``; ``add`` gives the id that ``mark`` and ``load`` take."""

    def __init__(self, directory: Path, key: Key | None = None) -> None:
        self.directory = Path(directory)
        self._key = key

    @property
    def db_path(self) -> Path:
        return self.directory / SPOOL_DB

    def _main_key(self) -> Key:
        return self._key or custody.key_for(self.directory.parent / COUNTER_DB)

    @contextlib.contextmanager
    def _db(self) -> Iterator[DBConnection]:
        private_dir(self.directory)
        path, key = self.db_path, self._main_key()
        if not path.exists():  # 0600 before SQLite opens it (its journal takes the same mode)
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600))
        try:
            conn = cipher_db.connect(path, key, isolation_level=None)
        except KeyProblem:  # a rotate-key cut short before it reached the spool: bring it to the current key
            if key.source is None:
                raise
            old = custody.key_for_secondary(path, key.source)
            cipher_db.rekey(path, old, key)
            conn = cipher_db.connect(path, key, isolation_level=None)
        try:
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA busy_timeout=15000")
            conn.execute(_SCHEMA)
            self._adopt_json_files(conn)
            yield conn
        finally:
            conn.close()

    def _adopt_json_files(self, conn: DBConnection) -> None:
        """Move an older version's plain JSON spool files in, then remove them."""
        olds = sorted(self.directory.glob("*.json"))
        if not olds:
            return
        for path in olds:
            try:
                doc = self.load_document(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            status: JSONObject = {}
            with contextlib.suppress(OSError, ValueError):
                status = json.loads(path.with_suffix(".status").read_text(encoding="utf-8"))
            conn.execute("INSERT OR IGNORE INTO doc(name, created_at, kind, ref, title, body, printed, error) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         (path.name, doc.created_at, doc.kind, doc.ref, doc.title, doc.to_json(),
                          int(bool(status.get("printed"))), status.get("error", "not printed yet")))
        for path in olds:  # after the rows are committed: a kill in between only repeats the (ignored) inserts
            path.unlink(missing_ok=True)
            path.with_suffix(".status").unlink(missing_ok=True)

    @staticmethod
    def load_document(text: str) -> Document:
        return Document.from_json(text)

    def add(self, doc: Document) -> int:
        with self._db() as conn:
            cur = conn.execute("INSERT INTO doc(created_at, kind, ref, title, body, error) VALUES (?, ?, ?, ?, ?, ?)",
                               (doc.created_at, doc.kind, doc.ref, doc.title, doc.to_json(), "not printed yet"))
            assert cur.lastrowid is not None  # an INSERT's row
            return int(cur.lastrowid)

    def mark(self, entry: int, error: str | None) -> None:
        with self._db() as conn:
            conn.execute("UPDATE doc SET printed=?, error=?, marked_at=? WHERE id=?",
                         (int(error is None), error, datetime.now().isoformat(timespec="seconds"), int(entry)))

    def load(self, entry: int) -> Document:
        with self._db() as conn:
            row = conn.execute("SELECT body FROM doc WHERE id=?", (int(entry),)).fetchone()
        if row is None:
            raise LookupError("the spooled copy is no longer there")
        return self.load_document(str(row[0]))

    def entries(self, *, query: str = "", limit: int = 200) -> list[SpoolEntry]:
        """Newest first; ``query`` matches the ref or title (case-insensitive)."""
        if not self.directory.exists():
            return []
        q = f"%{query.strip().lower()}%"
        with self._db() as conn:
            rows = conn.execute(
                "SELECT id, kind, ref, title, created_at, printed, error FROM doc "
                "WHERE lower(ref) LIKE ? OR lower(title) LIKE ? OR lower(kind) LIKE ? ORDER BY id DESC LIMIT ?",
                (q, q, q, limit)).fetchall()
        return [SpoolEntry(int(i), str(k), str(r), str(t), str(c), bool(p), e) for i, k, r, t, c, p, e in rows]


def print_with_spool(printer: Printer, spool: Spool | None, docs: list[Document]) -> list[str]:
    """Spool then print each document; returns the errors (empty when all
    printed). Never raises for a printer problem: the record is already saved."""
    errors: list[str] = []
    for doc in docs:
        entry: int | None = None
        if spool is not None:
            try:
                entry = spool.add(doc)
            except (OSError, cipher_db.Error, KeyProblem) as exc:
                errors.append(f"{doc.title}: could not keep a copy for reprint ({getattr(exc, 'strerror', None) or exc})")
        try:
            printer.print_document(doc)
            err = None
        except PrintError as exc:
            err = str(exc)
        except Exception as exc:  # a driver bug must not take the counter down
            err = f"printer error: {exc}"
        if err:
            errors.append(f"{doc.title}: {err}")
        if entry is not None:
            try:
                spool.mark(entry, err)  # type: ignore[union-attr]
            except (OSError, cipher_db.Error, KeyProblem):
                pass
    return errors

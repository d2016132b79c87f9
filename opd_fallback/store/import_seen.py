"""The slip keys a back-entry import has met so far in its file, and the line of
each, kept on disk so an import's memory is bounded by its batch, not its file.

Decision: a private temporary SQLite database of its own (``sqlite3.connect("")``),
not a table of the counter's database: the counter keeps its temporary tables in
memory (``PRAGMA temp_store=MEMORY``, store/engine.py), which is what this must
not do, and the keys are no record of the counter's. SQLite makes the file in
the system's temporary folder and unlinks it as soon as it is open, so it is
gone when the import ends, even after a ``kill -9``; only its page cache (2 MB)
is in memory. It holds device ids, visit dates and slip numbers, no patient data.
One query and one ``executemany`` per batch (``lines_of``, ``add``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

_CHUNK = 500  # keys per SELECT ... IN (...)
_CACHE_KIB = 2048


class SeenKeys:
    """Keys (one string each) and the first line of the file they were on."""

    def __init__(self) -> None:
        self._db = sqlite3.connect("", isolation_level=None)
        for pragma in ("PRAGMA temp_store=FILE", "PRAGMA journal_mode=OFF", "PRAGMA synchronous=OFF",
                       f"PRAGMA cache_size=-{_CACHE_KIB}"):
            self._db.execute(pragma)
        self._db.execute("CREATE TABLE seen (key TEXT PRIMARY KEY, line INTEGER NOT NULL) WITHOUT ROWID")

    def lines_of(self, keys: Iterable[str]) -> dict[str, int]:
        """The keys already added among ``keys``, with their lines."""
        wanted = sorted(set(keys))
        found: dict[str, int] = {}
        for i in range(0, len(wanted), _CHUNK):
            part = wanted[i:i + _CHUNK]
            marks = ",".join("?" * len(part))
            found.update(self._db.execute(f"SELECT key, line FROM seen WHERE key IN ({marks})", part))
        return found

    def add(self, items: list[tuple[str, int]]) -> None:
        """Keys not added before, with their lines (a key added twice keeps its first line)."""
        if not items:
            return
        self._db.execute("BEGIN")
        self._db.executemany("INSERT INTO seen (key, line) VALUES (?, ?) ON CONFLICT (key) DO NOTHING", items)
        self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()

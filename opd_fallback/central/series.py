"""Where central's numbers come from: uhid, visit, lab order, receipt, sample, change cursor.

Two ways, one interface (:class:`Series`), chosen by the database:

- SQLite (:class:`CounterSeries`): the ``counter`` table, read at the start of
  each write transaction and written back before COMMIT. SQLite's writers take
  turns (``BEGIN IMMEDIATE``), even across several worker processes, so the
  numbers have no gaps and a rolled-back batch gives its numbers back.
- PostgreSQL (:class:`SequenceSeries`): one database sequence per series.
  Writers in several workers and servers run at once and a sequence never
  hands the same number out twice; numbers taken by a batch that rolls back,
  or reserved and not used, are skipped (gaps, never overlaps). A batch
  reserves what it may need in one round trip (``reserve``).
"""

from __future__ import annotations

from typing import Protocol

from opd_fallback.central.tables import SERIES
from opd_fallback.serverdb import Connection


class Series(Protocol):
    def start(self) -> None:
        """Called first in every write transaction."""

    def reserve(self, wanted: dict[str, int]) -> None:
        """A hint: this transaction may take up to ``wanted[name]`` numbers of each series."""

    def take(self, name: str, count: int = 1) -> list[int]:
        """``count`` numbers of series ``name`` never handed out before, ascending."""
        ...

    def finish(self) -> None:
        """Called last in every write transaction, before COMMIT."""


class CounterSeries:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.values: dict[str, int] = {}
        self.dirty: set[str] = set()

    def start(self) -> None:
        self.values = dict(self.conn.execute("SELECT name, value FROM counter").fetchall())
        self.dirty.clear()

    def reserve(self, wanted: dict[str, int]) -> None:
        pass

    def take(self, name: str, count: int = 1) -> list[int]:
        first = self.values.get(name, 0) + 1
        self.values[name] = first + count - 1
        self.dirty.add(name)
        return list(range(first, first + count))

    def finish(self) -> None:
        if self.dirty:
            self.conn.executemany(
                "INSERT INTO counter(name, value) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET value=excluded.value",
                [(n, self.values[n]) for n in sorted(self.dirty)],
            )
            self.dirty.clear()


class SequenceSeries:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.pool: dict[str, list[int]] = {}

    def start(self) -> None:
        self.pool = {}

    def reserve(self, wanted: dict[str, int]) -> None:
        parts = [(n, c) for n, c in sorted(wanted.items()) if c > 0 and n in SERIES]
        if not parts:
            return
        sql = " UNION ALL ".join(
            f"SELECT '{n}', nextval('central_{n}_seq') FROM generate_series(1, ?)" for n, _ in parts
        )
        for name, value in self.conn.execute(sql, [c for _, c in parts]).fetchall():
            self.pool.setdefault(name, []).append(int(value))
        for values in self.pool.values():
            values.sort(reverse=True)  # pop() from the end gives the smallest first

    def take(self, name: str, count: int = 1) -> list[int]:
        if name not in SERIES:
            raise ValueError(f"no series {name}")
        pool = self.pool.get(name, [])
        if len(pool) < count:
            pool.extend(
                int(r[0]) for r in self.conn.execute(
                    f"SELECT nextval('central_{name}_seq') FROM generate_series(1, ?)", (count - len(pool),)
                ).fetchall()
            )
            pool.sort(reverse=True)
            self.pool[name] = pool
        return sorted(pool.pop() for _ in range(count))

    def finish(self) -> None:
        self.pool = {}


def series_for(conn: Connection) -> Series:
    return CounterSeries(conn) if conn.is_sqlite else SequenceSeries(conn)

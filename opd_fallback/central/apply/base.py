"""The applier's connection and its write buffering: writes of an op wait in
order until the next read (or the end of the batch) and go as one
``executemany`` per statement; every read flushes first, so it sees them."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from opd_fallback.central.apply.common import Params
from opd_fallback.central.apply.state import _BatchState
from opd_fallback.central.master import MasterIndex
from opd_fallback.central.series import series_for
from opd_fallback.serverdb import Connection


class ApplierBase:
    """The connection, the number series and the batch's state, shared by the
    mixins (prefetch, shared checks, handlers) that make :class:`Applier`."""

    _b: _BatchState
    _now: str
    _wrote: bool

    def __init__(self, conn: Connection, master: MasterIndex) -> None:
        self.conn = conn
        self.master = master
        self.lock = threading.Lock()
        self.series = series_for(conn)
        self._pending: list[tuple[str, Params]] = []

    def _next(self, name: str) -> int:
        """The next number of a series (see :mod:`opd_fallback.central.series`)."""
        return self.series.take(name)[0]

    def _w(self, sql: str, params: Params) -> None:
        """A write of the current op: after it, the op can no longer end otherwise than applied.
        Writes wait in order until the next read (or the end of the batch) and are then sent
        together, runs of the same statement as one ``executemany``."""
        self._wrote = True
        self._pending.append((sql, params))

    def _flush(self) -> None:
        """Send the waiting writes, one ``executemany`` per statement in the order each was
        first used. Reordering is safe because an op that changes a row written earlier in
        the batch (an update, a void, a reserved id) reads it first, and a read flushes."""
        pending, self._pending = self._pending, []
        by_sql: dict[str, list[Params]] = {}
        for sql, params in pending:
            by_sql.setdefault(sql, []).append(params)
        for sql, rows in by_sql.items():
            if len(rows) == 1:
                self.conn.execute(sql, rows[0])
            else:
                self.conn.executemany(sql, rows)

    def _q(self, sql: str, params: Sequence[object] = ()) -> Any:  # the driver's cursor
        """A read during the batch: it sees the batch's own writes, sent first."""
        if self._pending:
            self._flush()
        return self.conn.execute(sql, params)


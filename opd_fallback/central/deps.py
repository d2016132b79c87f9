"""What every route needs: the app's database resources (:class:`Central`) and the
device behind the bearer token (:data:`Device`).

Writers and readers come from small pools of connections. On SQLite there is
one applier (the file has one writer at a time anyway, and ``BEGIN IMMEDIATE``
makes writers in other worker processes wait their turn); on PostgreSQL there
are ``settings.writers`` appliers per worker process, each on its own
connection, so batches are applied side by side. A connection that the
database dropped (a PostgreSQL restart) is replaced instead of being handed out
again.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Request

from opd_fallback.central.apply import Applier, OpResult
from opd_fallback.central.db import database, hash_token, is_maintenance, open_db
from opd_fallback.central.errors import ApiError
from opd_fallback.central.master import MasterIndex, load_master
from opd_fallback.central.settings import CentralSettings
from opd_fallback.serverdb import Connection

T = TypeVar("T")


class Pool(Generic[T]):
    """At most ``size`` objects made by ``make``, lent one at a time (last returned first)."""

    def __init__(self, make: Callable[[], T], size: int, broken: Callable[[T], bool]) -> None:
        self.make, self.broken = make, broken
        self.free: queue.LifoQueue[T | None] = queue.LifoQueue()
        for _ in range(size):
            self.free.put(None)  # made on first use

    @contextmanager
    def lend(self) -> Iterator[T]:
        item = self.free.get(timeout=60)
        try:
            if item is None or self.broken(item):
                item = self.make()
            yield item
        finally:
            self.free.put(None if item is None or self.broken(item) else item)


class Central:
    """The applier and reader pools and the master data of one app (one worker process)."""

    def __init__(self, settings: CentralSettings) -> None:
        self.settings = settings
        self.db = database(settings.database())
        self.master: MasterIndex = load_master(settings.master_data)
        writers = 1 if self.db.is_sqlite else settings.writers
        self.appliers: Pool[Applier] = Pool(
            lambda: Applier(open_db(self.db), self.master), writers, lambda a: a.conn.broken)
        self.readers: Pool[Connection] = Pool(lambda: open_db(self.db), settings.readers, lambda c: c.broken)
        self._flag_conn: Connection | None = None

    def apply_batch(self, device_id: str, ops: Sequence[object]) -> list[OpResult]:
        with self.appliers.lend() as applier:
            return applier.apply_batch(device_id, ops)

    def issue_ids(self, device_id: str, kind: str, count: int) -> list[str]:
        with self.appliers.lend() as applier:
            return applier.issue_ids(device_id, kind, count)

    @contextmanager
    def reader(self) -> Iterator[Connection]:
        with self.readers.lend() as conn:
            yield conn

    def maintenance(self) -> bool:
        """Called by the Guard on the event loop thread only (its own connection)."""
        if self._flag_conn is None or self._flag_conn.broken:
            self._flag_conn = open_db(self.db)
        return is_maintenance(self._flag_conn)

    def device_for(self, token: str) -> str | None:
        with self.reader() as conn:
            row = conn.execute("SELECT device_id FROM device WHERE token_hash=?", (hash_token(token),)).fetchone()
        return row[0] if row else None


def _central(request: Request) -> Central:
    central: Central = request.app.state.central
    return central


def _device(request: Request) -> str:
    """The device owning the bearer token, else 401."""
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    dev = _central(request).device_for(token.strip()) if scheme.lower() == "bearer" and token.strip() else None
    if dev is None:
        raise ApiError(401, "unauthorized", "a valid device token is required (Authorization: Bearer ...)",
                       {"WWW-Authenticate": "Bearer"})
    return dev


Device = Annotated[str, Depends(_device)]
CentralDep = Annotated[Central, Depends(_central)]

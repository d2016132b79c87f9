"""Counting requests in flight, for the cap that answers 429 (see :mod:`.guard`).

One process: a plain integer (the Guard runs on the event loop thread only).
Several uvicorn workers (``serve --workers N``): the cap is for the server as a
whole, so the count lives in a small file the parent creates and every worker
maps into memory. Each worker keeps its own count in its own slot (found by
its pid; a slot of a dead worker is taken over and its count dropped), and
adds up all slots under an exclusive ``flock`` to decide. That is a few
microseconds per request, and a worker that dies never leaks slots for ever.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import struct
from pathlib import Path
from typing import Protocol

from opd_fallback.central.settings import CentralSettings

SLOTS = 128
_SLOT = struct.Struct("<qq")  # pid, in flight
SIZE = SLOTS * _SLOT.size


class InFlight(Protocol):
    def try_enter(self, cap: int) -> bool:
        """Count one more request unless ``cap`` are already in flight."""
        ...

    def leave(self) -> None: ...


class LocalInFlight:
    def __init__(self) -> None:
        self.count = 0

    def try_enter(self, cap: int) -> bool:
        if self.count >= cap:
            return False
        self.count += 1
        return True

    def leave(self) -> None:
        self.count -= 1


def create_shared_file(path: Path) -> None:
    """Made by the parent before it starts the workers (0600: it holds only counts)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, b"\0" * SIZE)
    finally:
        os.close(fd)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SharedInFlight:
    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_RDWR)
        self.map = mmap.mmap(self.fd, SIZE)
        self.pid = os.getpid()
        self.slot = self._claim()

    def _claim(self) -> int:
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        try:
            free = None
            for i in range(SLOTS):
                pid, _ = _SLOT.unpack_from(self.map, i * _SLOT.size)
                if pid == self.pid:
                    return i
                if free is None and (pid == 0 or not _alive(pid)):
                    free = i
            if free is None:
                raise RuntimeError(f"more than {SLOTS} worker processes share one in-flight count")
            _SLOT.pack_into(self.map, free * _SLOT.size, self.pid, 0)
            return free
        finally:
            fcntl.flock(self.fd, fcntl.LOCK_UN)

    def try_enter(self, cap: int) -> bool:
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        try:
            total = sum(_SLOT.unpack_from(self.map, i * _SLOT.size)[1] for i in range(SLOTS))
            if total >= cap:
                return False
            off = self.slot * _SLOT.size
            pid, mine = _SLOT.unpack_from(self.map, off)
            _SLOT.pack_into(self.map, off, pid, mine + 1)
            return True
        finally:
            fcntl.flock(self.fd, fcntl.LOCK_UN)

    def leave(self) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        try:
            off = self.slot * _SLOT.size
            pid, mine = _SLOT.unpack_from(self.map, off)
            _SLOT.pack_into(self.map, off, pid, max(0, mine - 1))
        finally:
            fcntl.flock(self.fd, fcntl.LOCK_UN)


def in_flight_counter(settings: CentralSettings) -> InFlight:
    if settings.in_flight_file is not None:
        return SharedInFlight(settings.in_flight_file)
    return LocalInFlight()

"""The seam between the sync engine and central: what the engine needs of a
server. :class:`~opd_fallback.sync.client.CentralClient` is the real one; tests
put a scripted server here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypedDict

from opd_fallback.domain.contract import DeviceInfo

# one op's answer from central as JSON (``op_id``, ``status``, ``result``, ``error``: the contract's
# OpResult), read with .get and checked where it is read
Answer = dict[str, object]
# query parameters of a request
Params = dict[str, str | int]


class PatientChanges(TypedDict):
    """A page of ``GET /patients/changes``, read raw (fast: millions of rows); its rows go to the index as they are."""

    patients: list[dict[str, object]]
    next_cursor: str | None
    done: bool


class CentralForSync(Protocol):
    """What the engine needs of central: the seam where tests put a scripted server.

    :class:`~opd_fallback.sync.client.CentralClient` is the real one.
    """

    on_warning: Callable[[str], None] | None
    clock_warning: str | None
    # the run's limit (time.monotonic() seconds); the engine sets it so no request outlasts --give-up-after
    deadline: Callable[[], float | None] | None

    def health(self) -> object: ...

    def device_me(self) -> DeviceInfo: ...

    def push_batch_raw(self, body: bytes) -> list[Answer]: ...

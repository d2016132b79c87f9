"""The seam between the sync engine and central: what the engine needs of a
server. :class:`~opd_fallback.sync.client.CentralClient` is the real one; tests
put a scripted server here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from opd_fallback.domain.contract import DeviceInfo


class CentralForSync(Protocol):
    """What the engine needs of central: the seam where tests put a scripted server.

    :class:`~opd_fallback.sync.client.CentralClient` is the real one.
    """

    on_warning: Callable[[str], None] | None
    clock_warning: str | None
    # the run's limit (time.monotonic() seconds); the engine sets it so no request outlasts --give-up-after
    deadline: Callable[[], float | None] | None

    def health(self) -> Any: ...

    def device_me(self) -> DeviceInfo: ...

    def push_batch_raw(self, body: bytes) -> list[dict[str, Any]]: ...

"""What one sync run did (``SyncSummary``), its outcomes, and the meta keys it is
recorded under for ``opd-fallback status``.

Decision: the summary is a plain dataclass (printed as JSON by ``sync --json``
and stored in ``meta``); its exit code comes from ``domain/exits.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from opd_fallback.domain.exits import ExitCode
from opd_fallback.store import meta

Progress = Callable[[int, int], None]

LAST_SYNC_AT = meta.LAST_SYNC_AT
LAST_SYNC_OK_AT = meta.LAST_SYNC_OK_AT
LAST_SYNC_OUTCOME = meta.LAST_SYNC_OUTCOME

OK, NEEDS_PERSON, UNREACHABLE, UNAUTHORIZED, BUSY, STOPPED, ERROR = (
    "ok", "needs_person", "unreachable", "unauthorized", "busy", "stopped", "error")

@dataclass
class SyncSummary:
    """What one run did, and where the outbox stands afterwards."""

    outcome: str = OK
    message: str = ""
    total: int = 0  # pending when the run started
    applied: int = 0
    duplicate: int = 0
    rejected: int = 0
    conflict: int = 0
    deferred: int = 0  # answers 'deferred' (an op may be counted once per round)
    waited_too_long: int = 0  # deferred past the limit: flagged for a person
    held_back: int = 0  # not sent: a dependency is flagged or did not apply
    quarantined: int = 0  # damaged in this database: flagged for a person, never sent
    still_waiting: int = 0  # pending in the outbox after the run
    needs_person: int = 0  # rejected + conflict in the outbox after the run
    batches: int = 0
    rounds: int = 0
    retries: int = 0
    probes: int = 0
    reasons: list[str] = field(default_factory=list)  # the first few, in words
    warnings: list[str] = field(default_factory=list)
    started_at: str = ""
    finished_at: str = ""
    elapsed_s: float = 0.0
    started_unix: float = 0.0  # precise, for comparing runs of several counters
    finished_unix: float = 0.0

    @property
    def synced(self) -> int:
        return self.applied + self.duplicate

    @property
    def ops_per_s(self) -> float:
        return self.synced / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def exit_code(self) -> int:
        """0 all synced, 1 some ops need a person or still wait, 3 server
        unreachable or token refused, 4 another sync holds the lease."""
        if self.outcome in (UNREACHABLE, UNAUTHORIZED):
            return ExitCode.UNREACHABLE
        if self.outcome == BUSY:
            return ExitCode.SYNC_RUNNING
        if self.outcome in (ERROR, STOPPED):
            return ExitCode.REFUSED
        return ExitCode.OK if self.still_waiting == 0 and self.needs_person == 0 else ExitCode.REFUSED

    def as_dict(self) -> dict[str, Any]:  # main: dict[str, JSONValue] (domain.jsonio) once merged
        d = asdict(self)
        d["synced"] = self.synced
        d["ops_per_s"] = round(self.ops_per_s, 1)
        d["exit_code"] = self.exit_code
        return d

    def add_reason(self, words: str, limit: int = 10) -> None:
        if len(self.reasons) < limit:
            self.reasons.append(words)

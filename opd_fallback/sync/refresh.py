"""Refresh what a counter needs while offline, also when there is nothing to push.

* master data with ``If-None-Match`` into ``MasterDataCache`` (a 304 costs nothing);
* the patient index from ``/patients/changes``, each page stored with its
  cursor in ONE transaction, so a killed refresh resumes where it stopped;
* id blocks (``uhid``, ``receipt``, ``sample``) topped up so registrations made
  offline carry real central numbers until a block runs out.

Each part runs even if another failed; the summary says what happened.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any, Protocol, TypeVar

from opd_fallback.domain.clock import now_iso
from opd_fallback.store import meta, patient_index, reserved
from opd_fallback.store.engine import Store
from opd_fallback.store.tables import MasterDataCache
from opd_fallback.sync.client import CentralClient, TransientError, Unauthorized, Unavailable
from opd_fallback.sync.retry import CircuitBreaker, Patience, ServerDown, call_with_retries

T = TypeVar("T")


class Caller(Protocol):
    """How a refresh step asks central: ``call(fn)`` runs ``fn`` with the run's retries and breaker."""

    def __call__(self, fn: Callable[[], T]) -> T: ...


INDEX_CURSOR = "patient_index_cursor"
INDEX_REFRESHED_AT = "patient_index_refreshed_at"
PAGE = 5000
ID_TARGET = 1000  # ids of each kind to hold after a top-up
ID_LOW_WATER = 300  # top up when fewer than this are free


@dataclass
class RefreshSummary:
    master_data: str = "not checked"  # updated | unchanged | failed
    master_version: str | None = None
    patients_received: int = 0
    index_pages: int = 0
    index_done: bool = False
    ids_added: dict[str, int] = field(default_factory=dict)
    ids_free: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    unauthorized: bool = False
    unreachable: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def message(self) -> str:
        if self.errors:
            return "; ".join(self.errors)
        ids = ", ".join(f"{k} {v}" for k, v in self.ids_free.items())
        return (f"master data {self.master_data} ({self.master_version}); "
                f"{self.patients_received} patient(s) indexed; ids free: {ids}")

    def as_dict(self) -> dict[str, Any]:  # main: dict[str, JSONValue] (domain.jsonio) once merged
        d = asdict(self)
        d["ok"] = self.ok
        d["message"] = self.message
        return d


def refresh_master_data(store: Store, client: CentralClient, call: Caller) -> tuple[str, str | None]:
    with store.read() as s:
        row = s.get(MasterDataCache, 1)
        etag = row.etag if row else None
        version = row.version if row else None
    md, new_etag, raw = call(lambda: client.master_data(etag))
    if md is None or raw is None:
        return "unchanged", version
    with store.write() as s:
        s.merge(MasterDataCache(id=1, version=md.version, etag=new_etag, body=raw.decode("utf-8"),
                                fetched_at=now_iso()))
    return "updated", md.version


def refresh_patient_index(
    store: Store, client: CentralClient, call: Caller, *,
    page: int = PAGE, max_pages: int | None = None, progress: Callable[[int], None] | None = None,
) -> tuple[int, int, bool]:
    """Pull changes since the stored cursor; returns (patients, pages, done)."""
    with store.read() as s:
        cursor = meta.get(s, INDEX_CURSOR)
    received = pages = 0
    while True:
        data = call(partial(client.patient_changes_raw, cursor, page))
        patients = data["patients"]
        nxt = data.get("next_cursor") or cursor
        with store.write() as s:
            patient_index.upsert_many(s, patients)
            if nxt:
                meta.put(s, INDEX_CURSOR, nxt)
            if data.get("done"):
                meta.put(s, INDEX_REFRESHED_AT, now_iso())
        received += len(patients)
        pages += 1
        if progress:
            progress(received)
        if data.get("done") or not data.get("next_cursor") or (max_pages and pages >= max_pages):
            return received, pages, bool(data.get("done"))
        if nxt == cursor:  # a server bug would otherwise keep this loop asking for the same page
            raise RuntimeError(f"the server's patient changes do not advance past cursor {cursor!r}")
        cursor = nxt


def top_up_ids(
    store: Store, client: CentralClient, call: Caller, *,
    target: int = ID_TARGET, low_water: int = ID_LOW_WATER,
) -> tuple[dict[str, int], dict[str, int]]:
    added: dict[str, int] = {}
    free: dict[str, int] = {}
    for kind in reserved.KINDS:
        with store.read() as s:
            have = reserved.free_count(s, kind)
        if have < low_water:
            want = min(1000, target - have)
            block = call(partial(client.id_block, kind, want))
            with store.write() as s:
                added[kind] = reserved.add_block(s, kind, block.ids)
            have += added[kind]
        free[kind] = have
    return added, free


def refresh_all(
    store: Store, client: CentralClient, settings: object = None, *,
    give_up_after_s: float | None = 30.0, index: bool = True, ids: bool = True,
    id_target: int = ID_TARGET, id_low_water: int = ID_LOW_WATER,
    stop: threading.Event | None = None, progress: Callable[[int], None] | None = None,
) -> RefreshSummary:
    """Master data, patient index and id blocks; never raises for server trouble."""
    summary = RefreshSummary()
    patience = Patience(give_up_after_s)  # bounds every request, retry and wait of this refresh
    breaker = CircuitBreaker(client.health, stop=stop, patience=patience)
    previous_deadline = getattr(client, "deadline", None)
    client.deadline = patience.deadline
    try:
        return _refresh_steps(store, client, summary, breaker, give_up_after_s, index=index, ids=ids,
                              id_target=id_target, id_low_water=id_low_water, progress=progress)
    finally:
        client.deadline = previous_deadline


def _refresh_steps(
    store: Store, client: CentralClient, summary: RefreshSummary, breaker: CircuitBreaker,
    give_up_after_s: float | None, *, index: bool, ids: bool, id_target: int, id_low_water: int,
    progress: Callable[[int], None] | None,
) -> RefreshSummary:

    def call(fn: Callable[[], T]) -> T:
        return call_with_retries(fn, breaker, max_elapsed_s=give_up_after_s)

    steps: list[tuple[str, Callable[[], None]]] = []

    def md() -> None:
        summary.master_data, summary.master_version = refresh_master_data(store, client, call)

    def idx() -> None:
        summary.patients_received, summary.index_pages, summary.index_done = refresh_patient_index(
            store, client, call, progress=progress)

    def blocks() -> None:
        summary.ids_added, summary.ids_free = top_up_ids(store, client, call, target=id_target,
                                                         low_water=id_low_water)

    steps.append(("master data", md))
    if index:
        steps.append(("patient index", idx))
    if ids:
        steps.append(("id blocks", blocks))
    for name, step in steps:
        try:
            step()
        except Unauthorized as exc:
            summary.unauthorized = True
            summary.errors.append(f"{name}: {exc}")
            break  # the same token will be refused for the rest
        except (ServerDown, TransientError, Unavailable) as exc:
            summary.unreachable = True
            summary.errors.append(f"{name}: {exc}")
            break  # one give-up is enough: the server is not there
        except Exception as exc:
            summary.errors.append(f"{name}: {exc}")
            if name == "master data":
                summary.master_data = "failed"
    return summary


"""Sharing with the LAN hub: push this counter's new ops, pull every other counter's.

One exchange (``share_once``):
1. push this counter's ops above the last pushed ``seq``, in ``seq`` order, in
   pages, with the central ids it has learned from central's answers since
   the last exchange; the pushed watermark moves only after the hub answered
   (the hub answers after commit), so an op is never counted as shared
   unless the hub has it on disk;
2. pull everything after this counter's hub cursor, page by page; each page
   and the cursor after it are stored in one transaction (store/shared.py).

The hub never becomes an authority: pulled records are other counters' and
never enter this counter's outbox; each counter syncs its own ops to central.
Saving never waits on this: it runs from ``opd-fallback share`` or the UI's
background worker, and a hub that is down only means the LAN is not shared.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from sqlmodel import col, select

from opd_fallback.domain import shared as shared_domain
from opd_fallback.domain.clock import now_iso
from opd_fallback.domain.exits import ExitCode
from opd_fallback.store import meta, outbox, reads
from opd_fallback.store import shared as shared_store
from opd_fallback.store.engine import Store
from opd_fallback.store.tables import Op
from opd_fallback.sync.hub_client import HubError, HubRefused

PUSH_PAGE = 500
PULL_PAGE = 1000
MAX_PAGES = 10_000  # a guard: a hub whose cursor never reaches done is an error, not an endless loop

OK, UNREACHABLE, UNAUTHORIZED = "ok", "unreachable", "unauthorized"


class HubApi(Protocol):
    def push(self, ops: Any, central_ids: Any = (), withdrawn: Any = ()) -> dict[str, Any]: ...
    def changes(self, cursor: int, *, limit: int = 500, include_own: bool = False) -> dict[str, Any]: ...


@dataclass
class ShareResult:
    outcome: str = OK
    pushed: int = 0  # ops the hub stored now
    already_there: int = 0  # ops the hub had already
    refused: int = 0  # ops the hub refused (see message)
    central_ids_sent: int = 0
    pulled_records: int = 0  # new records of other counters
    pulled_updates: int = 0
    pulled_central_ids: int = 0
    records_here: int = 0  # records of other counters this counter holds after the exchange
    message: str = ""
    elapsed_s: float = 0.0
    problems: list[str] = field(default_factory=list)
    clock: dict[str, Any] | None = None  # this PC's clock against the hub's (application/clock.py)

    @property
    def exit_code(self) -> int:
        if self.outcome == OK and self.clock and self.clock.get("off_by_a_day"):
            return ExitCode.REFUSED  # a person must set the date: every number printed carries it
        return ExitCode.OK if self.outcome == OK else ExitCode.UNREACHABLE

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["exit_code"] = self.exit_code
        return out


def _own_ops_after(store: Store, seq: int, limit: int) -> list[dict[str, Any]]:
    with store.read() as s:
        rows = s.exec(select(Op).where(Op.seq > seq).order_by(col(Op.seq)).limit(limit)).all()
        return [outbox.envelope(op) for op in rows]


def _learned_ids(store: Store, since: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """Central ids from this counter's synced ops (synced at or after ``since``)."""
    with store.read() as s:
        rows = reads.synced_results_since(s, since or "")
    ids: list[dict[str, Any]] = []
    top = since
    for kind, ref, result, synced_at in rows:
        cid = shared_domain.central_id_of(str(kind), outbox.loads(result))
        if cid:
            ids.append({"local_ref": str(ref), "kind": shared_domain.CREATES[str(kind)], "central_id": cid})
        top = max(top or "", str(synced_at))
    return ids, top


def _push(store: Store, client: HubApi, result: ShareResult, stop: threading.Event | None) -> None:
    with store.read() as s:
        pushed = int(meta.get(s, meta.HUB_PUSHED_SEQ) or 0)
        ids_since = meta.get(s, meta.HUB_IDS_SENT_AT)
    ids, ids_top = _learned_ids(store, ids_since)
    while not (stop and stop.is_set()):
        ops = _own_ops_after(store, pushed, PUSH_PAGE)
        batch_ids, ids = ids[:5000], ids[5000:]
        if not ops and not batch_ids:
            break
        answer = client.push(ops, batch_ids)
        for r in answer["results"]:
            status = r.get("status")
            if status == "stored":
                result.pushed += 1
            elif status == "duplicate":
                result.already_there += 1
            else:
                result.refused += 1
                err = r.get("error") or {}
                result.problems.append(f"the hub refused op {r.get('op_id')}: {err.get('message') or err.get('code')}")
        result.central_ids_sent += len(batch_ids)
        with store.write() as s:
            if ops:
                pushed = int(ops[-1]["seq"])
                meta.put(s, meta.HUB_PUSHED_SEQ, str(pushed))
            if not ids and ids_top:
                meta.put(s, meta.HUB_IDS_SENT_AT, ids_top)
        if len(ops) < PUSH_PAGE and not ids:
            break
    if stop and stop.is_set():
        return
    # a person's decision on a flagged op (a resolution) goes to the hub too, so a restore resends it with it
    with store.read() as s:
        since = meta.get(s, meta.HUB_RESOLVED_AT) or ""
        decided = s.exec(select(Op).where(col(Op.resolution).is_not(None), Op.updated_at >= since,
                                          Op.seq <= pushed).order_by(col(Op.updated_at))).all()
    for i in range(0, len(decided), PUSH_PAGE):
        chunk = decided[i:i + PUSH_PAGE]
        client.push([outbox.envelope(op) for op in chunk], [])
        with store.write() as s:
            meta.put(s, meta.HUB_RESOLVED_AT, chunk[-1].updated_at)
    # ops a supervisor cancelled (never to reach central): after the ops themselves, so the hub holds them
    with store.read() as s:
        since = meta.get(s, meta.HUB_WITHDRAWN_AT) or ""
        rows = reads.cancelled_since(s, since, up_to_seq=pushed)
    for i in range(0, len(rows), 5000):
        cancelled = rows[i:i + 5000]
        client.push([], [], [str(r[0]) for r in cancelled])
        with store.write() as s:
            meta.put(s, meta.HUB_WITHDRAWN_AT, str(cancelled[-1][1]))


def _pull(store: Store, client: HubApi, device_id: str, result: ShareResult,
          stop: threading.Event | None) -> None:
    with store.read() as s:
        cursor = int(meta.get(s, meta.HUB_CURSOR) or 0)
    for _ in range(MAX_PAGES):
        if stop and stop.is_set():
            return
        page = client.changes(cursor, limit=PULL_PAGE)
        nxt = int(page["next_cursor"])
        with store.write() as s:
            got = shared_store.store_page(s, device_id, page.get("ops") or [], page.get("central_ids") or [],
                                          page.get("withdrawn") or [])
            meta.put(s, meta.HUB_CURSOR, str(nxt))
        result.pulled_records += got.records
        result.pulled_updates += got.updates
        result.pulled_central_ids += got.central_ids
        result.pulled_updates += got.withdrawn
        if page.get("done"):
            return
        if nxt == cursor:
            raise HubError("the hub's changes did not advance; pulling stopped")
        cursor = nxt
    raise HubError(f"the hub still had more after {MAX_PAGES} pages; pulling stopped")


def share_once(store: Store, client: HubApi, device_id: str, *, stop: threading.Event | None = None) -> ShareResult:
    """One exchange with the hub; never raises for a hub problem (see ``outcome``)."""
    started = time.monotonic()
    result = ShareResult()
    try:
        _push(store, client, result, stop)
        _pull(store, client, device_id, result, stop)
        if hasattr(client, "keep_put") and not (stop and stop.is_set()):
            # what a restore of this counter needs (hub/keep.py)
            from opd_fallback.application import hub_keep

            hub_keep.send(store, client)  # type: ignore[arg-type]
        result.message = (f"shared {result.pushed} new ops, {result.pulled_records} new records from other counters")
        if result.refused:
            result.message += f"; the hub refused {result.refused} ops"
    except HubRefused as exc:
        result.outcome, result.message = UNAUTHORIZED, str(exc)
    except HubError as exc:
        result.outcome, result.message = UNREACHABLE, str(exc)
    skew = getattr(client, "clock_skew_s", None)
    if isinstance(skew, (int, float)):
        from opd_fallback.application import clock

        rep = clock.observe(store, "hub", float(skew))
        result.clock = rep.as_dict()
        if rep.off:
            result.problems.insert(0, rep.message)
    result.elapsed_s = round(time.monotonic() - started, 3)
    with store.read() as s:
        result.records_here = sum(shared_store.counts(s).values())
    _remember(store, result)
    return result


def _remember(store: Store, result: ShareResult) -> None:
    now = now_iso()
    with store.write() as s:
        meta.put(s, meta.HUB_LAST_AT, now)
        if result.outcome == OK:
            meta.put(s, meta.HUB_LAST_OK_AT, now)
        meta.put(s, meta.HUB_LAST_OUTCOME, outbox.dumps(result.as_dict()))


def watch(store: Store, client: HubApi, device_id: str, *, interval_s: float, stop: threading.Event,
          on_result: Any = None) -> None:
    """Share every ``interval_s`` until ``stop`` is set (the hub being down is just a result)."""
    while not stop.is_set():
        res = share_once(store, client, device_id, stop=stop)
        if on_result is not None:
            on_result(res)
        stop.wait(interval_s)


def hub_status(store: Store, *, configured: bool, stale_after_s: float = 60.0) -> dict[str, Any]:
    """The ``hub`` object of ``status --json`` (docs/status-json.md): read as
    ``status`` reads it, with plain SQL (application/status.py ``hub_section``)."""
    from opd_fallback.application.status import hub_section
    from opd_fallback.store.readonly import snapshot

    with snapshot(store.path) as conn:
        return hub_section(conn, configured=configured, stale_after_s=stale_after_s)


# restore --from-hub lives in application/restore_from_hub.py (re-exported here for old callers)
from opd_fallback.application.restore_from_hub import HubRestore, RestoreRefused, restore_from_hub  # noqa: E402,F401

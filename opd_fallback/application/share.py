"""Sharing with the LAN hub: push this counter's new ops, pull every other counter's.

One exchange (``share_once``) is decided by what the hub *holds*, never by a
mark this counter kept alone (after Morango's database ids and per-instance
counters). Usually it is one request: ``/exchange`` carries the new own ops
(the hub stores them only if this counter's memory is of its very history,
decided before) and a pull by this counter's vector; else the steps are:

1. ``POST /exchange`` tells this counter the hub's identity (``db_id``, and
   an ``epoch`` that changes whenever its data went back or was replaced), the
   highest ``seq`` of this counter's ops it holds and how many. With it goes
   what this counter remembers of that hub (the ``db_id`` and epoch, the
   ``seq`` through which the hub acknowledged everything, the highest hub
   sequence seen), so a hub put back behind its own back is caught too (the
   hub then starts a new epoch and says so in its log). A new identity is
   recorded (``meta.HUB_WENT_BACK``: ``status``, the status bar) and heals by
   itself: the learned central ids, decisions and withdrawals are sent again,
   and everything else follows from the next two steps.
2. Push every own op the hub does not hold: those above its mark and, when
   its count shows holes, those its runs of ``seq`` lack. The pushed mark
   (``meta.HUB_PUSHED_SEQ``) moves only over ops the hub answered ``stored``
   or ``duplicate`` (after COMMIT) and never past one it refused: a refused
   op is never counted as shared, and ``share`` names it and exits 1.
3. Pull by this counter's own vector of per-counter positions
   (``meta.HUB_VECTOR``: for each other counter, the highest ``seq`` of its ops
   held here), not by the hub's internal sequence, so a hub that renumbered
   or lost ops still gives this counter every op once its counter sent it
   again. Each page and the vector after it are stored in one transaction
   (store/shared.py). Central ids and withdrawals come by the hub's sequence
   (``meta.HUB_CURSOR``), from 0 again whenever the hub's identity changed.

The hub is no authority: pulled records never enter this counter's outbox.
Saving never waits on this (``opd-fallback share``, the UI's worker: woken by a
save, store/shared.py ``on_new_ops``); a hub that is down only means no sharing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from sqlmodel import Session, col, select

from opd_fallback.domain import shared as shared_domain
from opd_fallback.domain.clock import now_iso
from opd_fallback.domain.exits import ExitCode
from opd_fallback.store import meta, outbox, reads
from opd_fallback.store import shared as shared_store
from opd_fallback.store.engine import Store
from opd_fallback.store.tables import Op
from opd_fallback.sync.hub_client import HubDamaged, HubDiskFull, HubError, HubRefused

if TYPE_CHECKING:
    pass

PUSH_PAGE = 500
PULL_PAGE = 1000
SEND_WITH_EXCHANGE, SEND_WITH_EXCHANGE_BYTES = 50, 512 * 1024  # new own ops in the exchange itself (else pages)
MAX_PAGES = 10_000  # a guard: a hub whose cursor never reaches done is an error, not an endless loop

OK, UNREACHABLE, UNAUTHORIZED = "ok", "unreachable", "unauthorized"
REFUSED, HUB_DISK_FULL, HUB_DAMAGED = "refused", "hub_disk_full", "hub_damaged"
# share's exit status by outcome (README, docs/hub-api.md): four hub problems, four codes
EXIT_CODES = {OK: ExitCode.OK, REFUSED: ExitCode.REFUSED, UNREACHABLE: ExitCode.UNREACHABLE,
              HUB_DISK_FULL: ExitCode.DISK, HUB_DAMAGED: ExitCode.DAMAGED, UNAUTHORIZED: ExitCode.HUB_TOKEN}


class HubApi(Protocol):
    def exchange(self, known: Mapping[str, str | int | None], *, want_held: bool = False,
                 ops: Sequence[Mapping[str, object]] = (), pull: Mapping[str, object] | None = None) -> dict[str, Any]: ...
    def push(self, ops: Sequence[Mapping[str, object]], central_ids: Sequence[Mapping[str, object]] = (),
             withdrawn: Sequence[str] = ()) -> dict[str, Any]: ...
    def pull(self, vector: dict[str, int], *, limit: int = 1000, include_own: bool = False) -> dict[str, Any]: ...
    def changes(self, cursor: int, *, limit: int = 500, include_own: bool = False,
                with_ops: bool = True) -> dict[str, Any]: ...


@dataclass
class ShareResult:
    outcome: str = OK
    pushed: int = 0  # ops the hub stored now
    already_there: int = 0  # ops the hub had already
    refused: int = 0  # ops (and central ids) the hub refused (see problems)
    central_ids_sent: int = 0
    pulled_records: int = 0  # new records of other counters
    pulled_updates: int = 0
    pulled_central_ids: int = 0
    records_here: int = 0  # records of other counters this counter holds after the exchange
    hub_held_before: int = 0  # the highest seq of this counter's ops the hub held when the exchange began
    resent: int = 0  # ops the hub had lost (below its mark, or a hub gone back) sent again
    hub_went_back: str | None = None  # why, when this exchange found the hub gone back or replaced
    message: str = ""
    elapsed_s: float = 0.0
    problems: list[str] = field(default_factory=list)
    clock: dict[str, Any] | None = None  # this PC's clock against the hub's (application/clock.py)
    seen_hub_seq: int | None = field(default=None, repr=False)  # to remember at the end (not reported)

    @property
    def exit_code(self) -> int:
        if self.outcome == OK and self.clock and self.clock.get("off_by_a_day"):
            return ExitCode.REFUSED  # a person must set the date: every number printed carries it
        return int(EXIT_CODES.get(self.outcome, ExitCode.UNREACHABLE))

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("seen_hub_seq", None)
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


@dataclass
class _Hub:
    """What this exchange learnt of the hub at its start."""

    db_id: str
    epoch: str
    max_seq: int
    ops: int
    hub_seq: int
    acked_before: int
    vector: dict[str, int]  # the hub's: per counter, the highest seq it holds
    ids_seq: int | None  # the hub's highest hub sequence of a central id or withdrawal (None: not said)
    sent: list[dict[str, Any]] = field(default_factory=list)  # own ops sent with the exchange
    pushed: dict[str, Any] | None = None  # the hub's answer to them (None: not taken, push them)
    pulled: dict[str, Any] | None = None  # the first page pulled with the exchange (None: an older hub)


def _meet(store: Store, client: HubApi, device_id: str, result: ShareResult) -> tuple[_Hub, list[int]]:
    """Step 1: the hub's identity and holdings; returns them and the seqs of own ops it lacks below its mark."""
    with store.read() as s:
        acked_before = int(meta.get(s, meta.HUB_PUSHED_SEQ) or 0)
        known: dict[str, str | int | None] = {"db_id": meta.get(s, meta.HUB_DB_ID), "epoch": meta.get(s, meta.HUB_EPOCH),
                                 "acked_seq": acked_before, "hub_seq": int(meta.get(s, meta.HUB_SEEN_SEQ) or 0)}
        vector = _vector(s)
        refused_before = bool(outbox.loads(meta.get(s, meta.HUB_REFUSED) or "[]"))
    # one round trip as a rule: the new own ops (taken if the hub is the history known) and a pull by our vector
    sent = [] if known["db_id"] is None or refused_before else _own_ops_after(store, acked_before, SEND_WITH_EXCHANGE)
    if sent and len(orjson.dumps(sent)) > SEND_WITH_EXCHANGE_BYTES:
        sent = []
    h = client.exchange(known, ops=sent, pull={"vector": vector, "limit": PULL_PAGE})
    if str(h.get("device_id")) != device_id:
        raise HubRefused(f"the hub knows this counter's hub token as counter {h.get('device_id')}, not {device_id}: "
                         f"this counter has another counter's token; give it its own ('opd-fallback hub add-device "
                         f"{device_id}' on the hub PC, then 'opd-fallback init ... --hub-token-stdin' here)")
    hub = _Hub(str(h["db_id"]), str(h["epoch"]), int(h["max_seq"]), int(h["ops"]), int(h["hub_seq"]), acked_before,
               {str(k): int(v) for k, v in (h.get("vector") or {}).items()},
               int(h["ids_seq"]) if isinstance(h.get("ids_seq"), int) else None,
               sent, h.get("pushed") if sent else None, h.get("pulled"))
    result.hub_held_before = hub.max_seq
    changed = known["db_id"] is not None and (known["db_id"], known["epoch"]) != (hub.db_id, hub.epoch)
    if h.get("went_back") or changed:
        if h.get("went_back") or known["db_id"] == hub.db_id:
            why = str(h.get("epoch_reason") or "the hub's data went back")
        else:
            why = "the hub's database was replaced (another db_id: a new or re-created file)"
        result.hub_went_back = (f"{why}; it held this counter's ops up to seq {hub.max_seq}, this counter had "
                                f"{known['acked_seq']} acknowledged: sending it what it lacks")
    if result.hub_went_back or (known["db_id"], known["epoch"]) != (hub.db_id, hub.epoch):
        with store.write() as s:  # rare: a new hub, or a new history of it
            if result.hub_went_back:
                meta.put(s, meta.HUB_WENT_BACK, outbox.dumps({
                    "at": now_iso(), "reason": result.hub_went_back, "db_id": hub.db_id, "epoch": hub.epoch,
                    "hub_held": hub.max_seq, "acked_before": known["acked_seq"]}))
            if result.hub_went_back or known["db_id"] is None:
                # everything the hub hears from this counter besides ops is sent again, and read again from its start
                for key in (meta.HUB_IDS_SENT_AT, meta.HUB_RESOLVED_AT, meta.HUB_WITHDRAWN_AT):
                    meta.put(s, key, "")
                meta.put(s, meta.HUB_CURSOR, "0")
            meta.put(s, meta.HUB_DB_ID, hub.db_id)
            meta.put(s, meta.HUB_EPOCH, hub.epoch)
            meta.put(s, meta.HUB_SEEN_SEQ, str(hub.hub_seq))
    elif hub.hub_seq != known["hub_seq"]:
        result.seen_hub_seq = hub.hub_seq  # written with the exchange's last write (_remember): one fsync less
    with store.read() as s:
        mine_below = reads.ops_up_to(s, hub.max_seq)
    if mine_below == hub.ops:
        return hub, []
    held = client.exchange({"db_id": hub.db_id, "epoch": hub.epoch}, want_held=True).get("held") or []
    with store.read() as s:
        seqs = reads.seqs_up_to(s, hub.max_seq)
    missing, i = [], 0
    runs = sorted((int(a), int(b)) for a, b in held)
    for seq in seqs:
        while i < len(runs) and runs[i][1] < seq:
            i += 1
        if i >= len(runs) or seq < runs[i][0]:
            missing.append(seq)
    return hub, missing


def _book(answer: dict[str, Any], ops: list[dict[str, Any]], result: ShareResult, resent_below: int = 0) -> int | None:
    """Count a push's answers; returns the lowest seq the hub refused (None: it took them all)."""
    first_refused: int | None = None
    seq_of = {str(op["op_id"]): int(op["seq"]) for op in ops}
    for r in answer["results"]:
        status = r.get("status")
        if status == "stored":
            result.pushed += 1
            if seq_of.get(str(r.get("op_id")), 0) <= resent_below:
                result.resent += 1
        elif status == "duplicate":
            result.already_there += 1
        else:
            result.refused += 1
            err = r.get("error") or {}
            result.problems.append(f"the hub refused op {r.get('op_id')}: {err.get('message') or err.get('code')}")
            seq = seq_of.get(str(r.get("op_id")), min(seq_of.values(), default=0))
            first_refused = seq if first_refused is None else min(first_refused, seq)
    for r in answer.get("central_ids_refused") or []:
        result.refused += 1
        err = r.get("error") or {}
        result.problems.append(f"the hub refused the central id of {r.get('local_ref')}: "
                               f"{err.get('message') or err.get('code')}")
    return first_refused


def _push(store: Store, client: HubApi, result: ShareResult, stop: threading.Event | None,
          hub: _Hub, missing: list[int]) -> None:
    """Step 2. ``acked``: the highest seq through which the hub holds every op of ours."""
    with store.read() as s:
        raw = meta.get(s, meta.HUB_REFUSED)
        ids_since = meta.get(s, meta.HUB_IDS_SENT_AT)
    before = [int(x) for x in (outbox.loads(raw) if raw else [])]
    # ops the hub lost below its mark (holes) and ops it refused before: offered first, in seq order
    retry = sorted({*missing, *(q for q in before if q <= hub.max_seq)})
    acked = retry[0] - 1 if retry else hub.max_seq
    refused: set[int] = set()

    def book(answer: dict[str, Any], ops: list[dict[str, Any]], top: int) -> None:
        nonlocal acked
        low = _book(answer, ops, result, hub.acked_before)
        seq_of = {str(o["op_id"]): int(o["seq"]) for o in ops}
        refused.update(seq_of[str(r.get("op_id"))] for r in answer["results"]
                       if r.get("status") not in ("stored", "duplicate") and str(r.get("op_id")) in seq_of)
        if low is not None:
            refused.add(low)
        # pushes go in seq order: everything below the first refused op is on the hub now
        acked = min(refused) - 1 if refused else max(acked, top)
        with store.write() as s:
            meta.put(s, meta.HUB_PUSHED_SEQ, str(acked))
            meta.put(s, meta.HUB_REFUSED, outbox.dumps(sorted(refused)))
            seen = int(answer.get("hub_seq") or 0)
            if seen > int(meta.get(s, meta.HUB_SEEN_SEQ) or 0):
                meta.put(s, meta.HUB_SEEN_SEQ, str(seen))

    if acked != hub.acked_before:
        with store.write() as s:
            meta.put(s, meta.HUB_PUSHED_SEQ, str(acked))  # never above what this hub holds
    for i in range(0, len(retry), PUSH_PAGE):
        if stop and stop.is_set():
            return
        chunk = retry[i:i + PUSH_PAGE]
        with store.read() as s:
            holes = s.exec(select(Op).where(col(Op.seq).in_(chunk)).order_by(col(Op.seq))).all()
            ops = [outbox.envelope(op) for op in holes]
        last = i + PUSH_PAGE >= len(retry)
        book(client.push(ops, []), ops, hub.max_seq if last else chunk[-1])
    pushed = hub.max_seq  # everything above the hub's mark goes, in seq order
    if hub.sent and hub.pushed is not None:  # those the exchange carried, answered after the hub's COMMIT
        pushed = max(hub.max_seq, int(hub.sent[-1]["seq"]))
        book(hub.pushed, hub.sent, pushed)
    ids, ids_top = _learned_ids(store, ids_since)
    while not (stop and stop.is_set()):
        ops = _own_ops_after(store, pushed, PUSH_PAGE)
        batch_ids, ids = ids[:5000], ids[5000:]
        if not ops and not batch_ids:
            break
        answer = client.push(ops, batch_ids)
        if ops:
            pushed = int(ops[-1]["seq"])
        book(answer, ops, pushed)
        result.central_ids_sent += len(batch_ids)
        if not ids and ids_top:
            with store.write() as s:
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
        page = decided[i:i + PUSH_PAGE]
        client.push([outbox.envelope(op) for op in page], [])
        with store.write() as s:
            meta.put(s, meta.HUB_RESOLVED_AT, page[-1].updated_at)
    # ops a supervisor cancelled (never to reach central): after the ops themselves, so the hub holds them
    with store.read() as s:
        since = meta.get(s, meta.HUB_WITHDRAWN_AT) or ""
        rows = reads.cancelled_since(s, since, up_to_seq=pushed)
    for i in range(0, len(rows), 5000):
        cancelled = rows[i:i + 5000]
        client.push([], [], [str(r[0]) for r in cancelled])
        with store.write() as s:
            meta.put(s, meta.HUB_WITHDRAWN_AT, str(cancelled[-1][1]))


def _vector(s: Session) -> dict[str, int]:
    raw = meta.get(s, meta.HUB_VECTOR)
    value = outbox.loads(raw) if raw else {}
    return {str(k): int(v) for k, v in value.items()} if isinstance(value, dict) else {}


def _pull(store: Store, client: HubApi, device_id: str, result: ShareResult,
          stop: threading.Event | None, hub: _Hub | None = None) -> None:
    with store.read() as s:
        vector = _vector(s)
    # the hub's vector at the exchange's start: nothing above ours means nothing to pull (one request saved)
    news = hub is None or any(top > vector.get(d, 0) for d, top in hub.vector.items() if d != device_id)
    first = hub.pulled if hub is not None else None  # the page the exchange brought (pulled by the same vector)
    for _ in range(MAX_PAGES if news or first is not None else 0):
        if stop and stop.is_set():
            return
        page, first = (first, None) if first is not None else (client.pull(vector, limit=PULL_PAGE), None)
        after = {**vector, **{str(k): int(v) for k, v in (page.get("vector") or {}).items()}}
        if page.get("ops") or after != vector:  # an empty page that moved nothing writes nothing
            with store.write() as s:
                got = shared_store.store_page(s, device_id, page.get("ops") or [], [], [])
                meta.put(s, meta.HUB_VECTOR, outbox.dumps(after))
            result.pulled_records += got.records
            result.pulled_updates += got.updates
            result.problems += got.conflicts  # an edit of one field at two counters: for a person
        if page.get("done"):
            break
        if after == vector:
            raise HubError("the hub's pull did not advance; pulling stopped")
        vector = after
    else:
        if news or (hub is not None and hub.pulled is not None):
            raise HubError(f"the hub still had more after {MAX_PAGES} pages; pulling stopped")
    # central ids and withdrawals: by the hub's sequence (from 0 again after the hub's identity changed)
    with store.read() as s:
        cursor = int(meta.get(s, meta.HUB_CURSOR) or 0)
    if hub is not None and hub.ids_seq is not None and hub.ids_seq <= cursor:
        return  # no central id or withdrawal after the cursor
    for _ in range(MAX_PAGES):
        if stop and stop.is_set():
            return
        page = client.changes(cursor, limit=PULL_PAGE, with_ops=False)
        nxt = int(page["next_cursor"])
        with store.write() as s:
            got = shared_store.store_page(s, device_id, [], page.get("central_ids") or [],
                                          page.get("withdrawn") or [])
            meta.put(s, meta.HUB_CURSOR, str(nxt))
            if nxt > int(meta.get(s, meta.HUB_SEEN_SEQ) or 0):
                meta.put(s, meta.HUB_SEEN_SEQ, str(nxt))
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
        hub, missing = _meet(store, client, device_id, result)
        _push(store, client, result, stop, hub, missing)
        _pull(store, client, device_id, result, stop, hub)
        if hasattr(client, "keep_put") and not (stop and stop.is_set()):
            # what a restore of this counter needs (hub/keep.py)
            from opd_fallback.application import hub_keep

            hub_keep.send(store, client)  # type: ignore[arg-type]
        result.message = (f"shared {result.pushed} new ops, {result.pulled_records} new records from other counters")
        if result.hub_went_back:
            result.message = f"the hub had gone back ({result.hub_went_back}); " + result.message
        if result.refused:
            result.outcome = REFUSED
            result.message += (f"; the hub refused {result.refused}: they are not counted as shared and are "
                               "sent again next time")
    except HubRefused as exc:
        result.outcome, result.message = UNAUTHORIZED, str(exc)
    except HubDiskFull as exc:
        result.outcome, result.message = HUB_DISK_FULL, str(exc)
    except HubDamaged as exc:
        result.outcome, result.message = HUB_DAMAGED, str(exc)
    except HubError as exc:
        result.outcome, result.message = UNREACHABLE, str(exc)
    skew = getattr(client, "clock_skew_s", None)
    if isinstance(skew, (int, float)):
        _observe_clock(store, float(skew), result)
    result.elapsed_s = round(time.monotonic() - started, 3)
    with store.read() as s:
        result.records_here = sum(shared_store.counts(s).values())
    _remember(store, result)
    return result


CLOCK_KEEP_S = 30.0  # a measure of the hub's clock is written again after this long, or when it moved
CLOCK_MOVED_S = 1.0
REMEMBER_EVERY_S = 10.0  # an exchange that changed nothing is written at most this often (status: 60 s)


def _observe_clock(store: Store, skew: float, result: ShareResult) -> None:
    """The hub's clock against this PC's (application/clock.py): a new measure is written only when it
    moved or the last is old; every exchange writing it cost one fsync each half second (benchmarks/lan.py)."""
    from datetime import datetime

    from opd_fallback.application import clock

    with store.read() as s:
        raw = meta.get(s, clock.CLOCK_REF)
        last = outbox.loads(raw) if raw else None
        rep = clock.report(s)
    fresh = False
    if isinstance(last, dict) and last.get("source") == "hub" and isinstance(last.get("offset_s"), (int, float)):
        try:
            age = (datetime.fromisoformat(now_iso()) - datetime.fromisoformat(str(last.get("at")))).total_seconds()
        except ValueError:
            age = CLOCK_KEEP_S
        fresh = 0 <= age < CLOCK_KEEP_S and abs(float(last["offset_s"]) - skew) < CLOCK_MOVED_S
    if not fresh:
        rep = clock.observe(store, "hub", skew)
    result.clock = rep.as_dict()
    if rep.off:
        result.problems.insert(0, rep.message)


def _remember(store: Store, result: ShareResult) -> None:
    """The exchange's outcome for ``status`` and the status bar, in one write; an exchange that moved
    nothing and ended as the last one did is written at most every ``REMEMBER_EVERY_S``."""
    from datetime import datetime

    now = now_iso()
    moved = (result.pushed or result.pulled_records or result.pulled_updates or result.pulled_central_ids
             or result.central_ids_sent or result.resent or result.refused or result.hub_went_back)
    if not moved and result.seen_hub_seq is None:
        with store.read() as s:
            last_at = meta.get(s, meta.HUB_LAST_AT)
            raw = meta.get(s, meta.HUB_LAST_OUTCOME)
        last = outbox.loads(raw) if raw else None
        try:
            age = (datetime.fromisoformat(now) - datetime.fromisoformat(str(last_at))).total_seconds()
        except ValueError:
            age = REMEMBER_EVERY_S
        same = isinstance(last, dict) and (last.get("outcome"), last.get("message"), last.get("records_here"),
                                           last.get("clock")) == (result.outcome, result.message,
                                                                  result.records_here, result.clock)
        if same and 0 <= age < REMEMBER_EVERY_S:
            return
    with store.write() as s:
        if result.seen_hub_seq is not None and result.seen_hub_seq > int(meta.get(s, meta.HUB_SEEN_SEQ) or 0):
            meta.put(s, meta.HUB_SEEN_SEQ, str(result.seen_hub_seq))
        meta.put(s, meta.HUB_LAST_AT, now)
        if result.outcome in (OK, REFUSED):
            meta.put(s, meta.HUB_LAST_OK_AT, now)
        meta.put(s, meta.HUB_LAST_OUTCOME, outbox.dumps(result.as_dict()))


def watch(store: Store, client: HubApi, device_id: str, *, interval_s: float, stop: threading.Event,
          on_result: Callable[[ShareResult], object] | None = None) -> None:
    """Share every ``interval_s`` until ``stop`` is set (the hub being down is just a result)."""
    while not stop.is_set():
        res = share_once(store, client, device_id, stop=stop)
        if on_result is not None:
            on_result(res)
        stop.wait(interval_s)


# restore --from-hub lives in application/restore_from_hub.py (re-exported here for old callers)
from opd_fallback.application.restore_from_hub import HubRestore, RestoreRefused, restore_from_hub  # noqa: E402,F401

"""What to send and in which order: pending ops read with raw SQL, envelopes
encoded straight from the stored JSON (parsed once by orjson to be sure it is
JSON: a damaged op is set aside as :class:`Damaged` instead of breaking the
whole batch), ops whose dependency is flagged held back with a reason in words,
and the rest split into lanes of independent dependency chains so several
batches can be in flight without an op ever travelling before (or beside, in
another lane) its dependency.
"""

from __future__ import annotations

import gc
import heapq
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson
from sqlmodel import Session

from opd_fallback.domain.contract import MAX_BATCH_BYTES, MAX_BATCH_OPS
from opd_fallback.domain.errors import error_words
from opd_fallback.store import reads
from opd_fallback.store.outbox import DAMAGED
from opd_fallback.store.states import CANCELLED

BODY_BUDGET = MAX_BATCH_BYTES - 16 * 1024  # headroom for the {"ops":[...]} wrapper


@dataclass(slots=True)
class PendingOp:
    """One op to send: its encoded envelope plus what the engine needs to book the answer."""

    seq: int
    op_id: str
    kind: str
    record_kind: str | None
    record_ref: str | None
    deps: list[str]
    body: bytes
    first_deferred_at: str | None
    has_resolution: bool

    def label(self) -> str:
        return f"{self.kind} {self.record_ref or self.op_id}"


@dataclass(frozen=True, slots=True)
class Flagged:
    """An op of ours that is not pending and not synced (so dependents must wait)."""

    op_id: str
    state: str
    kind: str
    record_ref: str | None
    error: str | None  # "code: message"

    def label(self) -> str:
        return f"{self.kind} {self.record_ref or self.op_id}"


# the rows come as bytes (store/reads.py): a damaged (not UTF-8) value must not stop the whole read;
# a row's cells are whatever the database holds (bytes, text, a number, NULL), checked here
PendingRow = Sequence[Any]
J = TypeVar("J", dict[str, object], list[object])  # a JSON object or array, as parsed
_TEXT_COLUMNS = ("op_id", "kind", "device_id", "operator_id", "recorded_at")


@dataclass(frozen=True, slots=True)
class Damaged:
    """A pending op whose stored data cannot be read: it is quarantined, never sent."""

    seq: int
    op_id: str  # as far as it can be read
    kind: str
    reason: str  # in words, without any of the damaged content
    raw_payload: bytes | None

    def label(self) -> str:
        return f"{self.kind} (queue number {self.seq})"


class _DamagedRow(ValueError):
    pass


def _q(value: str) -> bytes:
    return orjson.dumps(value)


def encode(row: PendingRow, origin: bytes | str | None = None) -> bytes:
    """The contract envelope as compact JSON, spliced from the stored JSON texts;
    ``origin`` (1.2, a back-entered slip's) only when the op has one."""
    (seq, op_id, kind, device_id, operator_id, recorded_at, depends_on, payload, resolution) = row[:9]
    return b"".join((
        b'{"op_id":', _q(op_id), b',"kind":', _q(kind), b',"device_id":', _q(device_id),
        b',"operator_id":', _q(operator_id), b',"seq":', str(int(seq)).encode(),
        b',"recorded_at":', _q(recorded_at), b',"depends_on":', _b(depends_on or "[]"),
        b',"payload":', _b(payload), b',"resolution":', _b(resolution or "null"),
        *((b',"origin":', _b(origin)) if origin else ()), b"}",
    ))


def _b(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


def _text(value: bytes | str | None, column: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    try:
        return value.decode()
    except UnicodeDecodeError as exc:
        raise _DamagedRow(f"its stored {column} is damaged (byte {exc.start} is not readable text)") from None


def _json(value: bytes | None, column: str, want: type[J]) -> J | None:
    try:
        data = orjson.loads(value) if value is not None else None
    except orjson.JSONDecodeError as exc:
        raise _DamagedRow(f"its stored {column} is damaged and cannot be read ({exc})") from None
    if data is None:
        return None
    if not isinstance(data, want):
        raise _DamagedRow(f"its stored {column} is damaged (not a JSON {want.__name__})")
    return data


def _checked(row: PendingRow) -> PendingOp:
    """One pending row, decoded and checked; :class:`_DamagedRow` when it cannot be sent as stored."""
    loads = orjson.loads
    try:  # the common case, fast
        op_id, kind, device_id = row[1].decode(), row[2].decode(), row[3].decode()
        operator_id, recorded_at = row[4].decode(), row[5].decode()
        deps = loads(row[6]) if row[6] and row[6] != b"[]" else []
        payload = loads(row[7])
        resolution = loads(row[8]) if row[8] is not None else None
        record_kind = None if row[9] is None else row[9].decode()
        record_ref = None if row[10] is None else row[10].decode()
    except (UnicodeDecodeError, orjson.JSONDecodeError, AttributeError, TypeError):
        return _checked_slowly(row)
    if (type(payload) is not dict or type(deps) is not list or (deps and not all(type(d) is str for d in deps))
            or (resolution is not None and type(resolution) is not dict)):
        return _checked_slowly(row)
    seq = int(row[0])
    origin = row[12] if len(row) > 12 else None
    if origin is not None:
        try:
            if type(loads(origin)) is not dict:
                return _checked_slowly(row)
        except orjson.JSONDecodeError:
            return _checked_slowly(row)
    body = encode((seq, op_id, kind, device_id, operator_id, recorded_at, row[6], row[7], row[8]), origin)
    return PendingOp(seq, op_id, kind, record_kind, record_ref, deps, body, row[11], row[8] is not None)


def _checked_slowly(row: PendingRow) -> PendingOp:
    """:func:`_checked` column by column, to say in words what is damaged."""
    texts = [_text(row[1 + i], name) for i, name in enumerate(_TEXT_COLUMNS)]
    if row[7] is None:
        raise _DamagedRow("its stored payload is missing")
    payload = _json(row[7], "payload", dict)
    if payload is None:
        raise _DamagedRow("its stored payload is missing")
    listed = _json(row[6], "list of dependencies", list) or []
    deps = [d for d in listed if isinstance(d, str)]
    if len(deps) != len(listed):
        raise _DamagedRow("its stored list of dependencies is damaged (not all op ids)")
    _json(row[8], "resolution", dict)
    seq = int(row[0])
    origin = row[12] if len(row) > 12 else None
    _json(origin, "origin", dict)
    body = encode((seq, *texts, row[6], row[7], row[8]), origin)
    return PendingOp(seq, str(texts[0]), str(texts[1]), _text(row[9], "record kind"), _text(row[10], "record"),
                     deps, body, row[11], row[8] is not None)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cycle collector paused while many objects that form no cycle are
    made at once (reading the outbox: a row, a PendingOp and a parsed payload per
    op; planning): its passes over the growing heap cost about as much as the
    reading itself (15,000 ops: ~185 -> ~110 ms of CPU). Restored after, as found."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def load_pending(session: Session, damaged: list[Damaged] | None = None) -> list[PendingOp]:
    """Every pending op that can be sent, in seq order, ready to send. Ops whose
    stored data is damaged are left out and appended to ``damaged`` (give a list:
    the sync engine quarantines them for a person)."""
    with gc_paused():
        return _load_pending(session, damaged)


def _load_pending(session: Session, damaged: list[Damaged] | None) -> list[PendingOp]:
    out: list[PendingOp] = []
    for row in reads.pending_rows(session):
        try:
            out.append(_checked(row))
        except _DamagedRow as exc:
            if damaged is not None:
                op_id = row[1].decode("utf-8", "replace") if isinstance(row[1], bytes) else str(row[1])
                kind = row[2].decode("utf-8", "replace") if isinstance(row[2], bytes) else str(row[2])
                damaged.append(Damaged(int(row[0]), op_id, kind, str(exc), row[7]))
    return out


def _error_words(last_error: str | None) -> str | None:
    if not last_error:
        return None
    try:
        err = orjson.loads(last_error)
    except orjson.JSONDecodeError:
        return last_error[:200]
    return error_words(err)


def load_flagged(session: Session) -> dict[str, Flagged]:
    return {
        r[0]: Flagged(r[0], r[1], r[2], r[3], _error_words(r[4]) or r[5])
        for r in reads.held_rows(session)
    }


def wait_reason(dep: Flagged | PendingOp, why: str) -> str:
    return f"waits for {dep.label()}, which {why}"


def flagged_reason(dep: Flagged) -> str:
    words = {"rejected": "the server rejected", "conflict": "needs a person's decision",
             "cancelled": "was cancelled"}[dep.state]
    if dep.error and dep.error.startswith(DAMAGED) and dep.state != CANCELLED:
        return wait_reason(dep, "is damaged in this counter's database and needs a person's decision "
                                f"({dep.error})")
    return wait_reason(dep, words + (f" ({dep.error})" if dep.error and dep.state != CANCELLED else ""))


@dataclass
class Plan:
    """Lanes of ops to send (each in dependency order) and ops held back."""

    lanes: list[list[PendingOp]] = field(default_factory=list)
    blocked: dict[str, str] = field(default_factory=dict)  # op_id -> reason in words

    @property
    def to_send(self) -> int:
        return sum(len(lane) for lane in self.lanes)


def plan(pending: list[PendingOp], flagged: dict[str, Flagged], lanes: int) -> Plan:
    """Hold back ops whose (transitive) dependency is flagged; order the rest so
    every op follows its dependencies; group dependency-connected ops and deal
    the groups to ``lanes`` lanes, biggest first onto the lightest lane."""
    with gc_paused():
        return _plan(pending, flagged, lanes)


def _plan(pending: list[PendingOp], flagged: dict[str, Flagged], lanes: int) -> Plan:
    by_id = {op.op_id: op for op in pending}
    result = Plan()
    # 1. blocked: a dependency flagged, or a pending dependency that is blocked
    for op in pending if flagged else ():  # seq order; a superseding dependency may come later: a fixpoint below
        for d in op.deps:
            if d in flagged:
                result.blocked[op.op_id] = flagged_reason(flagged[d])
                break
    changed = bool(result.blocked)
    while changed:
        changed = False
        for op in pending:
            if op.op_id in result.blocked:
                continue
            for d in op.deps:
                if d in result.blocked and d in by_id:
                    result.blocked[op.op_id] = wait_reason(by_id[d], "is itself waiting: " + result.blocked[d])
                    changed = True
                    break
    live = [op for op in pending if op.op_id not in result.blocked] if result.blocked else pending
    # 2. components by union-find over in-outbox dependencies
    parent: dict[str, str] = {op.op_id: op.op_id for op in live}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for op in live:
        for d in op.deps:  # most ops (registrations) have none
            if d in parent:
                ra, rb = find(op.op_id), find(d)
                if ra != rb:
                    parent[ra] = rb
    groups: dict[str, list[PendingOp]] = {}
    for op in live:
        groups.setdefault(find(op.op_id), []).append(op)
    # 3. order each group: seq order, but a dependency always first (Kahn with a seq heap)
    ordered_groups = [topo_order(g) for g in groups.values()]
    # 4. deal groups to lanes; keep the lanes' first ops early in seq so old work goes first
    n = max(1, lanes)
    result.lanes = [[] for _ in range(n)]
    heap = [(0, i) for i in range(n)]
    for g in sorted(ordered_groups, key=lambda g: g[0].seq):
        size, i = heapq.heappop(heap)
        result.lanes[i].extend(g)
        heapq.heappush(heap, (size + len(g), i))
    result.lanes = [lane for lane in result.lanes if lane]
    return result


def topo_order(group: list[PendingOp]) -> list[PendingOp]:
    """``group`` in seq order, except that a dependency always comes before its dependents."""
    if len(group) == 1:
        return group
    ids = {op.op_id for op in group}
    seen: set[str] = set()
    for op in group:  # the common case: every dependency already comes earlier in seq order
        if any(d in ids and d not in seen for d in op.deps):
            break
        seen.add(op.op_id)
    else:
        return group
    indeg = {op.op_id: 0 for op in group}
    children: dict[str, list[PendingOp]] = {}
    for op in group:
        for d in op.deps:
            if d in ids and d != op.op_id:
                indeg[op.op_id] += 1
                children.setdefault(d, []).append(op)
    heap = [(op.seq, op.op_id, op) for op in group if indeg[op.op_id] == 0]
    heapq.heapify(heap)
    out: list[PendingOp] = []
    while heap:
        _, _, op = heapq.heappop(heap)
        out.append(op)
        for c in children.get(op.op_id, ()):
            indeg[c.op_id] -= 1
            if indeg[c.op_id] == 0:
                heapq.heappush(heap, (c.seq, c.op_id, c))
    if len(out) < len(group):  # a cycle (cannot come from services); send the rest in seq order
        seen = {op.op_id for op in out}
        out.extend(op for op in group if op.op_id not in seen)
    return out


class LaneQueue:
    """One lane's ops, handed out batch by batch; ops whose dependency did not
    apply in an earlier batch of this run are held back with a reason."""

    def __init__(self, ops: Iterable[PendingOp], batch_size: int = MAX_BATCH_OPS,
                 max_bytes: int = BODY_BUDGET) -> None:
        self.queue: deque[PendingOp] = deque(ops)
        self.batch_size = max(1, min(batch_size, MAX_BATCH_OPS))
        self.max_bytes = max_bytes
        self.held: dict[str, str] = {}  # op_id -> reason (dependency not applied in this run)
        self.not_applied: dict[str, str] = {}  # op_id -> status words, for dependents
        self._labels: dict[str, str] = {}

    def note(self, op: PendingOp, status: str) -> None:
        """Record a non-applied outcome so dependents later in the lane wait."""
        self.not_applied[op.op_id] = status
        self._labels[op.op_id] = op.label()

    def next_batch(self) -> list[PendingOp]:
        batch: list[PendingOp] = []
        size = 0
        while self.queue and len(batch) < self.batch_size:
            op = self.queue[0]
            dep = next((d for d in op.deps if d in self.not_applied), None)
            if dep is not None:
                self.queue.popleft()
                why = self.not_applied[dep]
                self.held[op.op_id] = f"waits for {self._labels.get(dep, dep)}, which {why}"
                self.not_applied[op.op_id] = "is itself waiting"
                self._labels[op.op_id] = op.label()
                continue
            if batch and size + len(op.body) + 1 > self.max_bytes:
                break
            batch.append(self.queue.popleft())
            size += len(op.body) + 1
        return batch

    def __len__(self) -> int:
        return len(self.queue)


def batch_body(batch: list[PendingOp]) -> bytes:
    return b'{"ops":[' + b",".join(op.body for op in batch) + b"]}"

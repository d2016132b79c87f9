"""Reconcile one device's day with central: prove every op is there exactly once.

The local side is computed from the outbox for ops recorded on date D
(Asia/Kolkata) by this device: ops marked synced, counted by kind, payments
and voids by mode, and the contract's op_id digest. It is compared with
``GET /reconciliation``. On any difference the central op_ids are paged
through (``/reconciliation/ops``) and every op is classified:

* applied centrally but not marked synced here (a lost response): marked
  synced with the remembered outcome from ``GET /ops/{op_id}``; never resent;
* marked synced here but missing centrally (central lost it, e.g. restored
  from a backup): reported loudly; ``requeue_missing`` puts it back in the queue;
* known centrally but unknown here (this database is older than central's
  view, e.g. restored from an old backup);

and, always: payments central warned about (``amount_mismatch`` with both
amounts, ``unknown_item``, 1.2 ``waiver_unapproved``, each named by what it is), ops still waiting or flagged for a person, and
every payment or void op whose queued payload no longer matches the local
record it carries (amount, mode, items, receipt; the voided payment and the
reason): the totals above are computed from the payloads, so a payload that
drifted from the receipt the clerk printed would otherwise pass as clean.

Exit codes: 0 clean, 1 something a person must see, 3 central unreachable.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Protocol

import orjson

from opd_fallback.application.reports import DAY_SCHEMA
from opd_fallback.domain import registry
from opd_fallback.domain.clock import IST, now_iso
from opd_fallback.domain.contract import WARNING_CODES as CONTRACT_WARNING_CODES
from opd_fallback.domain.contract import OpResult, Reconciliation, ReconciliationOps, op_ids_digest
from opd_fallback.domain.exits import ExitCode
from opd_fallback.domain.jsonio import dumps
from opd_fallback.domain.rules import format_paise
from opd_fallback.store import audit, hub_restore, outbox, reads, writeback
from opd_fallback.store.engine import Store
from opd_fallback.store.states import CANCELLED, FLAGGED, PENDING, SYNCED

SCHEMA = DAY_SCHEMA  # one name for the schema, shared with the renderers
EXIT_CLEAN, EXIT_ATTENTION, EXIT_UNREACHABLE = ExitCode.OK, ExitCode.REFUSED, ExitCode.UNREACHABLE
WARNING_CODES = CONTRACT_WARNING_CODES  # amount_mismatch, unknown_item, (1.2) waiver_unapproved
# what each payment warning is, in the words of the day's summary (n lines)
WARNING_WORDS = {
    "amount_mismatch": "payment line(s) differ from the central price list",
    "unknown_item": "payment line(s) with an item central does not know",
    "waiver_unapproved": "waived payment line(s) with no approved waiver (the category does not exempt the fee)",
}


def warning_words(code: str) -> str:
    """A payment warning code as the summary names it; a code this counter does not
    know yet is named as such, never taken for another."""
    return WARNING_WORDS.get(code, f"payment line(s) central warned about ({code})")
OUTCOME_WORKERS = 4  # GET /ops/{op_id} in flight at once when classifying


class ReconcileClient(Protocol):
    def reconciliation(self, date: str, device_id: str) -> Reconciliation: ...
    def reconciliation_ops(self, date: str, device_id: str, cursor: str | None = None) -> ReconciliationOps: ...
    def get_op(self, op_id: str) -> OpResult | None: ...


# ------------------------------------------------------------------ local side
@dataclass
class LocalOp:
    op_id: str
    seq: int
    kind: str
    state: str
    recorded_at: str
    hour: int
    record_ref: str | None
    last_status: str | None
    wait_reason: str | None
    attempts: int
    last_error: str | None
    payload: str
    result: str | None


@dataclass
class DaySummary:
    """The contract's reconciliation body, from either side."""

    ops_applied: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    payments_count: int = 0
    payments_total_paise: int = 0
    payments_by_mode: dict[str, int] = field(default_factory=dict)
    voids_count: int = 0
    voids_total_paise: int = 0
    samples_collected: int = 0  # contract 1.2: tubes drawn and refused at a collection desk
    samples_rejected: int = 0
    op_ids_sha256: str = op_ids_digest([])

    @classmethod
    def from_central(cls, r: Reconciliation) -> DaySummary:
        return cls(
            ops_applied=r.ops_applied, by_kind={k: v for k, v in r.by_kind.items() if v},
            payments_count=r.payments.count, payments_total_paise=r.payments.total_paise,
            payments_by_mode={k: v for k, v in r.payments.by_mode.items() if v},
            voids_count=r.voids.count, voids_total_paise=r.voids.total_paise, op_ids_sha256=r.op_ids_sha256,
            samples_collected=r.samples.collected if r.samples else 0,
            samples_rejected=r.samples.rejected if r.samples else 0,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "ops_applied": self.ops_applied,
            "by_kind": dict(sorted(self.by_kind.items())),
            "payments": {"count": self.payments_count, "total_paise": self.payments_total_paise,
                         "by_mode": dict(sorted(self.payments_by_mode.items()))},
            "voids": {"count": self.voids_count, "total_paise": self.voids_total_paise},
            "samples": {"collected": self.samples_collected, "rejected": self.samples_rejected},
            "op_ids_sha256": self.op_ids_sha256,
        }

    def flat(self) -> dict[str, Any]:
        """Field name -> value, for comparing two sides field by field."""
        out: dict[str, Any] = {"ops_applied": self.ops_applied}
        out.update({f"by_kind.{k}": v for k, v in self.by_kind.items()})
        out["payments.count"] = self.payments_count
        out["payments.total_paise"] = self.payments_total_paise
        out.update({f"payments.by_mode.{k}": v for k, v in self.payments_by_mode.items()})
        out["voids.count"] = self.voids_count
        out["voids.total_paise"] = self.voids_total_paise
        out["samples.collected"] = self.samples_collected
        out["samples.rejected"] = self.samples_rejected
        out["op_ids_sha256"] = self.op_ids_sha256
        return out


def compare(local: DaySummary, central: DaySummary) -> list[dict[str, Any]]:
    """Every field where the two sides differ (a missing key counts as 0)."""
    a, b = local.flat(), central.flat()
    diffs = []
    for key in sorted(set(a) | set(b)):
        la, cb = a.get(key, 0), b.get(key, 0)
        if la != cb:
            diffs.append({"field": key, "local": la, "central": cb})
    return diffs


def _ist_date(recorded_at: str) -> tuple[str, int]:
    """(YYYY-MM-DD, hour) of a timestamp in Asia/Kolkata."""
    if recorded_at.endswith("+05:30") and len(recorded_at) >= 13:
        return recorded_at[:10], int(recorded_at[11:13])
    dt = datetime.fromisoformat(recorded_at).astimezone(IST)
    return dt.date().isoformat(), dt.hour


def load_day(store: Store, device_id: str, day: date) -> dict[str, LocalOp]:
    """This device's ops recorded on ``day`` (Asia/Kolkata), by op_id, all states."""
    lo, hi = (day - timedelta(days=1)).isoformat(), (day + timedelta(days=2)).isoformat()
    want = day.isoformat()
    out: dict[str, LocalOp] = {}
    with store.read() as s:
        rows = reads.day_rows(s, device_id, lo, hi)
    for r in rows:
        d, hour = _ist_date(r[4])
        if d != want:
            continue
        out[r[0]] = LocalOp(r[0], int(r[1]), r[2], r[3], r[4], hour, r[5], r[6], r[7], int(r[8] or 0),
                            r[9], r[10] or "", r[11])
    return out


def _void_amounts(store: Store, ops: Iterable[LocalOp]) -> dict[str, int | None]:
    """Amount of the payment each void op voids (from the local payment record)."""
    wanted: dict[str, str] = {}
    for op in ops:
        ref = orjson.loads(op.payload).get("payment") or {}
        key = ref.get("local_ref") or ref.get("central_id") or op.record_ref
        if key:
            wanted[op.op_id] = key
    if not wanted:
        return {}
    with store.read() as s:
        rows = reads.payment_amounts(s, wanted.values())
    amount: dict[str, int] = {}
    for local_ref, receipt_no, central_id, paise in rows:
        for k in (local_ref, receipt_no, central_id):
            if k:
                amount[k] = int(paise)
    return {op_id: amount.get(key) for op_id, key in wanted.items()}


def summarize(store: Store, ops: dict[str, LocalOp]) -> tuple[DaySummary, list[str]]:
    """The local side of the comparison: synced ops only. Returns the summary
    and op_ids of voids whose payment is not in this database (amount unknown)."""
    synced = [op for op in ops.values() if op.state == SYNCED]
    s = DaySummary(ops_applied=len(synced))
    s.by_kind = dict(Counter(op.kind for op in synced))
    by_mode: Counter[str] = Counter()
    for op in synced:
        if op.kind == "payment.record":
            p = orjson.loads(op.payload)
            s.payments_count += 1
            s.payments_total_paise += int(p["amount_paise"])
            by_mode[p["mode"]] += int(p["amount_paise"])
    s.payments_by_mode = {k: v for k, v in by_mode.items()}
    for op in synced:
        if op.kind == "lab.sample_collect":
            if orjson.loads(op.payload).get("status") == "rejected":
                s.samples_rejected += 1
            else:
                s.samples_collected += 1
    voids = [op for op in synced if op.kind == "payment.void"]
    amounts = _void_amounts(store, voids)
    unknown = []
    for op in voids:
        s.voids_count += 1
        paise = amounts.get(op.op_id)
        if paise is None:
            unknown.append(op.op_id)
        else:
            s.voids_total_paise += paise
    s.op_ids_sha256 = op_ids_digest([op.op_id for op in synced])
    return s, unknown


# ------------------------------------------------------------------ the report
@dataclass
class DayReport:
    """What a reconciliation found and did for one device and day (see docs/reconcile-json.md)."""

    date: str
    device_id: str
    started_at: str = field(default_factory=now_iso)
    status: str = "clean"  # clean | attention | unreachable
    error: str | None = None
    local: DaySummary | None = None
    central: DaySummary | None = None
    differences_found: list[dict[str, Any]] = field(default_factory=list)
    differences: list[dict[str, Any]] = field(default_factory=list)
    marked_synced: list[dict[str, Any]] = field(default_factory=list)
    missing_centrally: list[dict[str, Any]] = field(default_factory=list)
    unknown_here: list[dict[str, Any]] = field(default_factory=list)
    waiting: list[dict[str, Any]] = field(default_factory=list)
    flagged: list[dict[str, Any]] = field(default_factory=list)
    payment_warnings: list[dict[str, Any]] = field(default_factory=list)
    voids_amount_unknown: list[str] = field(default_factory=list)
    payload_mismatches: list[dict[str, Any]] = field(default_factory=list)
    # every tube this counter's desk recorded that day: collected or refused (reason), and where its op stands
    tubes: list[dict[str, Any]] = field(default_factory=list)
    # ops this counter saved on the day with its clock confirmed wrong, dated another day (application/clock.py)
    misdated: list[dict[str, Any]] = field(default_factory=list)
    local_states: dict[str, int] = field(default_factory=dict)
    ops_per_hour: list[dict[str, int]] = field(default_factory=list)
    requeue_missing: bool = False
    central_pages: int = 0
    elapsed_s: float = 0.0

    @property
    def exit_code(self) -> int:
        return {"clean": EXIT_CLEAN, "attention": EXIT_ATTENTION}.get(self.status, EXIT_UNREACHABLE)

    @property
    def digests_match(self) -> bool | None:
        if self.local is None or self.central is None:
            return None
        return self.local.op_ids_sha256 == self.central.op_ids_sha256

    def reasons(self) -> list[str]:
        """Why a person must look, one line each (empty when clean)."""
        out = []
        if self.error:
            out.append(self.error)
        if self.missing_centrally:
            n = len(self.missing_centrally)
            requeued = sum(1 for m in self.missing_centrally if m.get("requeued"))
            tail = f"; {requeued} put back in the queue" if requeued else "; run with --requeue-missing to resend"
            out.append(f"CENTRAL HAS LOST {n} op(s) this counter had synced{tail}")
        if self.unknown_here:
            out.append(f"{len(self.unknown_here)} op(s) applied centrally are not in this counter's database")
        if self.differences:
            out.append("totals still differ: " + ", ".join(d["field"] for d in self.differences[:6]))
        by_code: dict[str, int] = {}
        for w in self.payment_warnings:
            by_code[str(w["code"])] = by_code.get(str(w["code"]), 0) + 1
        for code in sorted(by_code, key=lambda c: (c not in WARNING_CODES, WARNING_CODES.index(c)
                                                    if c in WARNING_CODES else 0, c)):
            out.append(f"{by_code[code]} {warning_words(code)}")
        if self.waiting:
            out.append(f"{len(self.waiting)} op(s) still waiting to sync")
        if self.flagged:
            out.append(f"{len(self.flagged)} op(s) flagged for a person (rejected or conflict)")
        if self.voids_amount_unknown:
            out.append(f"{len(self.voids_amount_unknown)} void(s) of payments not in this database")
        if self.payload_mismatches:
            n = len({m["op_id"] for m in self.payload_mismatches})
            out.append(f"{n} queued op(s) no longer match the record they carry (the receipt the clerk "
                       "printed and what central gets differ): " + self.payload_mismatches[0]["words"]
                       + (f"; and {len(self.payload_mismatches) - 1} more" if len(self.payload_mismatches) > 1
                          else ""))
        if self.misdated:
            out.append(f"{len(self.misdated)} op(s) this counter saved on {self.date} with its clock off carry "
                       f"another date (e.g. {self.misdated[0]['recorded_at']}): check them against the paper "
                       "slips; the day is not clean until then")
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "date": self.date,
            "device_id": self.device_id,
            "started_at": self.started_at,
            "status": self.status,
            "exit_code": self.exit_code,
            "error": self.error,
            "reasons": self.reasons(),
            "digests_match": self.digests_match,
            "local": None if self.local is None else self.local.as_dict(),
            "central": None if self.central is None else self.central.as_dict(),
            "differences_found": self.differences_found,
            "differences": self.differences,
            "ops": {
                "marked_synced": self.marked_synced,
                "missing_centrally": self.missing_centrally,
                "unknown_here": self.unknown_here,
                "waiting": self.waiting,
                "flagged": self.flagged,
            },
            "payment_warnings": self.payment_warnings,
            "voids_amount_unknown": self.voids_amount_unknown,
            "payload_mismatches": self.payload_mismatches,
            "tubes": self.tubes,
            "misdated": self.misdated,
            "local_states": self.local_states,
            "ops_per_hour": self.ops_per_hour,
            "requeue_missing": self.requeue_missing,
            "central_pages": self.central_pages,
            "elapsed_s": round(self.elapsed_s, 3),
        }


def _op_brief(op: LocalOp) -> dict[str, Any]:
    return {"op_id": op.op_id, "seq": op.seq, "kind": op.kind, "recorded_at": op.recorded_at,
            "state": op.state, "record_ref": op.record_ref}


def _payment_warnings(ops: dict[str, LocalOp]) -> list[dict[str, Any]]:
    out = []
    for op in sorted(ops.values(), key=lambda o: o.seq):
        if op.kind != "payment.record" or op.state != SYNCED or not op.result:
            continue
        result = orjson.loads(op.result) or {}
        warnings = [w for w in result.get("warnings") or [] if isinstance(w, dict)]
        if not warnings:
            continue
        p = orjson.loads(op.payload)
        paid_by_item: dict[str, int] = {}
        for item in p.get("items") or []:
            paid_by_item[item["code"]] = paid_by_item.get(item["code"], 0) + int(item["amount_paise"])
        for w in warnings:
            item = w.get("item")
            out.append({
                "op_id": op.op_id, "seq": op.seq, "recorded_at": op.recorded_at,
                "local_ref": p.get("local_ref"), "receipt_no": p.get("receipt_no"),
                "receipt_id": result.get("receipt_id"), "mode": p.get("mode"),
                "code": w.get("code"), "item": item,
                "paid_paise": paid_by_item.get(item) if item else p.get("amount_paise"),
                "expected_paise": w.get("expected_paise"),
                "amount_paise": p.get("amount_paise"),
            })
    return out


def _payload_paise(op: LocalOp) -> int:
    """A payment op's amount; 0 when its stored payload is damaged (quarantined by sync, reported as flagged)."""
    try:
        return int(orjson.loads(op.payload)["amount_paise"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return 0


def _per_hour(ops: dict[str, LocalOp]) -> list[dict[str, int]]:
    rows = [{"hour": h, "ops": 0, "synced": 0, "open": 0, "payments": 0, "paise": 0} for h in range(24)]
    for op in ops.values():
        r = rows[op.hour]
        r["ops"] += 1
        if op.state == SYNCED:
            r["synced"] += 1
        elif op.state != CANCELLED:
            r["open"] += 1
        if op.kind == "payment.record":
            r["payments"] += 1
            r["paise"] += _payload_paise(op)
    return rows


def central_op_ids(client: ReconcileClient, day: str, device_id: str) -> tuple[list[str], int]:
    """Every page of ``/reconciliation/ops``; (op_ids in the server's order, pages)."""
    ids: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = client.reconciliation_ops(day, device_id, cursor)
        pages += 1
        ids.extend(page.op_ids)
        if page.done or not page.next_cursor:
            return ids, pages
        if page.next_cursor == cursor:
            raise RuntimeError("the server's reconciliation pages do not advance")
        cursor = page.next_cursor


# ------------------------------------------------------------------ repairs
def mark_synced_many(
    store: Store, items: list[tuple[str, str, str | None, OpResult]], *, actor: str, chunk: int = 500,
) -> dict[str, str]:
    """Record central's remembered outcome for ops it applied but never acknowledged,
    ``chunk`` per transaction; op_id -> state before.

    The ops are not resent, so a second application is impossible from here.
    Their records learn central ids exactly as the sync engine books an
    ``applied`` answer (:mod:`opd_fallback.store.writeback`).
    """

    before: dict[str, str] = {}
    for i in range(0, len(items), chunk):
        part = items[i:i + chunk]
        now = now_iso()
        records: writeback.Rows = {}
        rows = []
        for op_id, kind, record_ref, outcome in part:
            result = outcome.result or {}
            writeback.collect(kind, record_ref, result, records)
            rows.append({"st": outcome.status, "res": dumps(result), "now": now, "id": op_id})
        with store.write() as s:
            for op_id, *_ in part:
                before[op_id] = str(outbox.op_state(s, op_id))
            outbox.transition(s, "synced", rows)
            writeback.write(s, records)
            for op_id, _kind, _ref, outcome in part:
                audit.record(s, actor, "reconcile.mark_synced", op_id, was=before[op_id],
                             central_status=outcome.status)
    return before


def requeue(store: Store, op_ids: list[str], *, actor: str, day: str) -> int:
    """Put synced ops central has lost back in the queue (loudly, in the audit log)."""
    if not op_ids:
        return 0
    reason = f"central lost this op (reconciliation of {day}); sent again"
    with store.write() as s:
        n = outbox.transition(s, "requeued", [{"id": op_id, "why": reason} for op_id in op_ids])
        audit.record(s, actor, "reconcile.requeue_missing", day, count=n, op_ids=op_ids[:1000])
    return n


# ------------------------------------------------------------------ the job
def reconcile_day(
    store: Store, client: ReconcileClient, device_id: str, day: date, *,
    requeue_missing: bool = False, actor: str = "reconcile",
) -> DayReport:
    """Reconcile ``device_id``'s ``day``; never raises for an unreachable server
    (the report says ``unreachable``), only for a broken local database."""
    from opd_fallback.sync.client import SyncError

    t0 = time.perf_counter()
    rep = DayReport(date=day.isoformat(), device_id=device_id, requeue_missing=requeue_missing)
    d = rep.date
    ops = load_day(store, device_id, day)
    rep.local, rep.voids_amount_unknown = summarize(store, ops)
    try:
        rep.central = DaySummary.from_central(client.reconciliation(d, device_id))
        rep.differences_found = compare(rep.local, rep.central)
        if rep.differences_found:
            central_ids, rep.central_pages = central_op_ids(client, d, device_id)
            _classify(store, client, rep, ops, set(central_ids), requeue_missing=requeue_missing, actor=actor)
            ops = load_day(store, device_id, day)
            rep.local, rep.voids_amount_unknown = summarize(store, ops)
            rep.differences = compare(rep.local, rep.central)
    except SyncError as exc:
        rep.status, rep.error = "unreachable", f"central could not be asked: {exc}"
    except (RuntimeError, ValueError) as exc:  # an answer that does not follow the contract
        rep.status, rep.error = "unreachable", f"central's answer could not be used: {exc}"
    _always(rep, ops)
    rep.payload_mismatches = payload_mismatches(store, ops.values())
    rep.misdated = misdated_ops(store, device_id, day)
    if rep.status != "unreachable":
        rep.status = "attention" if rep.reasons() else "clean"
    rep.elapsed_s = time.perf_counter() - t0
    return rep


def _classify(
    store: Store, client: ReconcileClient, rep: DayReport, ops: dict[str, LocalOp], central_ids: set[str],
    *, requeue_missing: bool, actor: str,
) -> None:
    synced = {i for i, op in ops.items() if op.state == SYNCED}
    ours: list[LocalOp] = []
    for op_id in sorted(central_ids - synced):
        op = ops.get(op_id)
        if op is None:
            rep.unknown_here.append({"op_id": op_id})
        else:
            ours.append(op)
    # central's remembered outcome of each (a few requests in flight; the client is thread-safe)
    with ThreadPoolExecutor(max_workers=OUTCOME_WORKERS) as pool:
        outcomes = list(pool.map(lambda o: client.get_op(o.op_id), ours))
    to_mark = []
    for op, outcome in zip(ours, outcomes):
        if outcome is None or outcome.status not in ("applied", "duplicate"):
            # listed as applied but no remembered outcome: report, never guess
            rep.unknown_here.append({**_op_brief(op), "central_status": None if outcome is None else outcome.status})
        else:
            to_mark.append((op, outcome))
    before = mark_synced_many(store, [(op.op_id, op.kind, op.record_ref, out) for op, out in to_mark], actor=actor)
    for op, outcome in to_mark:
        rep.marked_synced.append({**_op_brief(op), "state": "synced", "previous_state": before[op.op_id],
                                  "central_status": outcome.status, "result": outcome.result})
    missing = sorted((ops[i] for i in synced - central_ids), key=lambda o: o.seq)
    done = set()
    if requeue_missing and missing:
        requeue(store, [m.op_id for m in missing], actor=actor, day=rep.date)
        done = {m.op_id for m in missing}
    for op in missing:
        requeued = op.op_id in done
        rep.missing_centrally.append({**_op_brief(op), "state": "pending" if requeued else op.state,
                                      "requeued": requeued})


def _always(rep: DayReport, ops: dict[str, LocalOp]) -> None:
    states: Counter[str] = Counter(op.state for op in ops.values())
    rep.local_states = dict(sorted(states.items()))
    by_seq = sorted(ops.values(), key=lambda o: o.seq)
    rep.waiting = [{**_op_brief(op), "wait_reason": op.wait_reason, "attempts": op.attempts,
                    "last_status": op.last_status} for op in by_seq if op.state == PENDING]
    for op in by_seq:
        if op.state in FLAGGED:
            err = orjson.loads(op.last_error) if op.last_error else {}
            rep.flagged.append({**_op_brief(op), "error_code": (err or {}).get("code"),
                                "error_message": (err or {}).get("message")})
    rep.payment_warnings = _payment_warnings(ops)
    rep.ops_per_hour = _per_hour(ops)
    rep.tubes = _tubes(by_seq)


def _tubes(by_seq: list[LocalOp]) -> list[dict[str, Any]]:
    """The tubes this counter's desk collected and refused that day, in the order recorded."""
    out = []
    for op in by_seq:
        if op.kind != "lab.sample_collect" or op.state == "cancelled":
            continue
        p = orjson.loads(op.payload) if op.payload else {}
        out.append({"sample_id": p.get("sample_id"), "status": p.get("status"), "reason": p.get("reason"),
                    "collected_at": p.get("collected_at"), "op_id": op.op_id, "state": op.state})
    return out


# ------------------------------------------------------------------ payloads against records
def _money(paise: Any) -> str:
    return format_paise(paise) if isinstance(paise, int) else repr(paise)


def _items_key(items: Any) -> list[tuple[Any, Any, Any]]:
    out = []
    for i in items or []:
        if isinstance(i, dict):
            out.append((i.get("code"), i.get("qty", 1), i.get("amount_paise")))
    return sorted(out, key=repr)


def _ref_key(ref: Any) -> Any:
    return (ref.get("local_ref") or ref.get("central_id")) if isinstance(ref, dict) else ref


def payload_mismatches(store: Store, ops: Iterable[LocalOp]) -> list[dict[str, Any]]:
    """Every payment / void op (not cancelled) whose payload differs from its local
    record, one entry per field, with the difference in words (never patient data)."""
    money_ops = [op for op in ops if op.kind in registry.MONEY_KINDS and op.state != CANCELLED]
    if not money_ops:
        return []
    ids = [op.op_id for op in money_ops]
    with store.read() as s:
        payments, voids = reads.money_records(s, ids)
    out: list[dict[str, Any]] = []
    for op in sorted(money_ops, key=lambda o: o.seq):
        try:
            p = orjson.loads(op.payload)
        except orjson.JSONDecodeError:
            p = None
        what = "payment" if op.kind == "payment.record" else "void"
        label = f"{what} {op.record_ref or op.op_id} ({op.state})"

        def add(field_name: str, queued: Any, record: Any, words: str, op: LocalOp = op) -> None:
            out.append({**_op_brief(op), "field": field_name, "queued": queued, "record": record,
                        "words": words})

        if not isinstance(p, dict):
            add("payload", None, None, f"{label}: its queued payload cannot be read")
            continue
        if op.kind == "payment.record":
            r = payments.get(op.op_id)
            if r is None:
                add("record", None, None, f"{label}: there is no payment record for this op in this database")
                continue
            if p.get("amount_paise") != r["amount_paise"]:
                add("amount_paise", p.get("amount_paise"), r["amount_paise"],
                    f"{label}: the queued op says {_money(p.get('amount_paise'))}, "
                    f"the payment record (the printed receipt) says {_money(r['amount_paise'])}")
            for name in ("mode", "mode_ref", "receipt_no", "local_ref"):
                if p.get(name) != r[name]:
                    add(name, p.get(name), r[name],
                        f"{label}: the queued op's {name.replace('_', ' ')} is {p.get(name)!r}, "
                        f"the payment record's is {r[name]!r}")
            try:
                rec_items = orjson.loads(r["items"] or "[]")
            except orjson.JSONDecodeError:
                rec_items = None
            if _items_key(p.get("items")) != _items_key(rec_items):
                add("items", p.get("items"), rec_items,
                    f"{label}: the queued op's items (fees and tests with their amounts) differ from the payment "
                    "record's")
        else:
            v = voids.get(op.op_id)
            if v is None:
                add("record", None, None, f"{label}: there is no void record for this op in this database")
                continue
            target = _ref_key(p.get("payment"))
            if target not in {v["payment_local_ref"], v["central_id"], v["receipt_no"]} - {None}:
                add("payment", target, v["payment_local_ref"],
                    f"{label}: the queued op voids payment {target}, the void record is for "
                    f"{v['payment_local_ref']}")
            if p.get("reason") != v["reason"]:
                add("reason", None, None, f"{label}: the queued op's reason differs from the void record's")
    return out


def misdated_ops(store: Store, device_id: str, day: date, limit: int = 50) -> list[dict[str, Any]]:
    """Ops of ``device_id`` saved on ``day`` (by the hub's or central's clock) but dated another day.

    A counter saves with a wrong clock only after a supervisor confirmed it
    (``clock.confirmed`` in the audit log, with the offset measured then): from
    that moment its ops' true time is their ``recorded_at`` plus that offset,
    until the next confirmation or a right clock."""
    with store.read() as s:
        confirmations = hub_restore.clock_confirmations(s)
        if not confirmations:
            return []
        rows = hub_restore.device_ops(s, device_id)
    spans: list[tuple[str, float]] = []
    for at, detail in confirmations:
        try:
            offset = float(orjson.loads(detail).get("offset_s") or 0)
        except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
            continue
        spans.append((str(at), offset))
    out: list[dict[str, Any]] = []
    for op_id, seq, kind, recorded_at in rows:
        rec = str(recorded_at)
        since = next((o for at, o in reversed(spans) if rec >= at), None)
        if since is None:
            continue
        try:
            when = datetime.fromisoformat(rec)
        except ValueError:
            continue
        true_day = (when + timedelta(seconds=since)).astimezone(IST).date()
        if true_day == day and when.astimezone(IST).date() != day:
            out.append({"op_id": str(op_id), "seq": int(seq), "kind": str(kind), "recorded_at": rec,
                        "saved_on": true_day.isoformat()})
            if len(out) >= limit:
                break
    return out

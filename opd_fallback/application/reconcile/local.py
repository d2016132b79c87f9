"""The local side of a reconciliation: this device's ops of one IST day from
the outbox, summed as the contract's reconciliation body (synced ops only) and
compared with central's field by field."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import orjson

from opd_fallback.application.report_shapes import Difference, OpBrief, Summary
from opd_fallback.domain.clock import IST
from opd_fallback.domain.contract import Reconciliation, op_ids_digest
from opd_fallback.store import reads
from opd_fallback.store.engine import Store
from opd_fallback.store.states import SYNCED


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

    def as_dict(self) -> Summary:
        return {
            "ops_applied": self.ops_applied,
            "by_kind": dict(sorted(self.by_kind.items())),
            "payments": {"count": self.payments_count, "total_paise": self.payments_total_paise,
                         "by_mode": dict(sorted(self.payments_by_mode.items()))},
            "voids": {"count": self.voids_count, "total_paise": self.voids_total_paise},
            "samples": {"collected": self.samples_collected, "rejected": self.samples_rejected},
            "op_ids_sha256": self.op_ids_sha256,
        }

    def flat(self) -> dict[str, int | str]:
        """Field name -> value, for comparing two sides field by field."""
        out: dict[str, int | str] = {"ops_applied": self.ops_applied}
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


def compare(local: DaySummary, central: DaySummary) -> list[Difference]:
    """Every field where the two sides differ (a missing key counts as 0)."""
    a, b = local.flat(), central.flat()
    diffs: list[Difference] = []
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

def _op_brief(op: LocalOp) -> OpBrief:
    return {"op_id": op.op_id, "seq": op.seq, "kind": op.kind, "recorded_at": op.recorded_at,
            "state": op.state, "record_ref": op.record_ref}

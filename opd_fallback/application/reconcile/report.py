"""What a reconciliation found and did for one device and day (``DayReport``,
see docs/reconcile-json.md), its exit code and reasons, and the sections built
for every run (waiting, flagged, payment warnings, ops per hour, tubes)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import orjson

from opd_fallback.application.reconcile.local import DaySummary, LocalOp, _op_brief
from opd_fallback.application.report_shapes import (
    DAY_SCHEMA,
    DayDict,
    Difference,
    FlaggedOp,
    MarkedOp,
    Misdated,
    MissingOp,
    PayloadMismatch,
    PaymentWarning,
    Tube,
    UnknownOp,
    WaitingOp,
)
from opd_fallback.domain.clock import now_iso
from opd_fallback.domain.contract import WARNING_CODES as CONTRACT_WARNING_CODES
from opd_fallback.domain.exits import ExitCode
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
    differences_found: list[Difference] = field(default_factory=list)
    differences: list[Difference] = field(default_factory=list)
    marked_synced: list[MarkedOp] = field(default_factory=list)
    missing_centrally: list[MissingOp] = field(default_factory=list)
    unknown_here: list[UnknownOp] = field(default_factory=list)
    waiting: list[WaitingOp] = field(default_factory=list)
    flagged: list[FlaggedOp] = field(default_factory=list)
    payment_warnings: list[PaymentWarning] = field(default_factory=list)
    voids_amount_unknown: list[str] = field(default_factory=list)
    payload_mismatches: list[PayloadMismatch] = field(default_factory=list)
    # every tube this counter's desk recorded that day: collected or refused (reason), and where its op stands
    tubes: list[Tube] = field(default_factory=list)
    # ops this counter saved on the day with its clock confirmed wrong, dated another day (application/clock.py)
    misdated: list[Misdated] = field(default_factory=list)
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

    def as_dict(self) -> DayDict:
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


def _payment_warnings(ops: dict[str, LocalOp]) -> list[PaymentWarning]:
    out: list[PaymentWarning] = []
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


def _tubes(by_seq: list[LocalOp]) -> list[Tube]:
    """The tubes this counter's desk collected and refused that day, in the order recorded."""
    out: list[Tube] = []
    for op in by_seq:
        if op.kind != "lab.sample_collect" or op.state == CANCELLED:
            continue
        p = orjson.loads(op.payload) if op.payload else {}
        out.append({"sample_id": p.get("sample_id"), "status": p.get("status"), "reason": p.get("reason"),
                    "collected_at": p.get("collected_at"), "op_id": op.op_id, "state": op.state})
    return out

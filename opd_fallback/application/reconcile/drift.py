"""Payloads against records: every queued payment or void whose payload no
longer matches the local record it carries, and ops whose recorded time is on
another day than the clock confirmations say (misdated)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta

import orjson

from opd_fallback.application.reconcile.local import LocalOp, _op_brief
from opd_fallback.application.report_shapes import Misdated, PayloadMismatch
from opd_fallback.domain import registry
from opd_fallback.domain.clock import IST
from opd_fallback.domain.jsonio import JSONValue
from opd_fallback.domain.rules import format_paise
from opd_fallback.store import hub_restore, reads
from opd_fallback.store.engine import Store
from opd_fallback.store.states import CANCELLED


# ------------------------------------------------------------------ payloads against records
def _money(paise: JSONValue) -> str:
    return format_paise(paise) if isinstance(paise, int) else repr(paise)


def _items_key(items: JSONValue) -> list[tuple[JSONValue, JSONValue, JSONValue]]:
    out: list[tuple[JSONValue, JSONValue, JSONValue]] = []
    for i in items if isinstance(items, list) else []:
        if isinstance(i, dict):
            out.append((i.get("code"), i.get("qty", 1), i.get("amount_paise")))
    return sorted(out, key=repr)


def _ref_key(ref: JSONValue) -> JSONValue:
    return (ref.get("local_ref") or ref.get("central_id")) if isinstance(ref, dict) else ref


def payload_mismatches(store: Store, ops: Iterable[LocalOp]) -> list[PayloadMismatch]:
    """Every payment / void op (not cancelled) whose payload differs from its local
    record, one entry per field, with the difference in words (never patient data)."""
    money_ops = [op for op in ops if op.kind in registry.MONEY_KINDS and op.state != CANCELLED]
    if not money_ops:
        return []
    ids = [op.op_id for op in money_ops]
    with store.read() as s:
        payments, voids = reads.money_records(s, ids)
    out: list[PayloadMismatch] = []
    for op in sorted(money_ops, key=lambda o: o.seq):
        try:
            p = orjson.loads(op.payload)
        except orjson.JSONDecodeError:
            p = None
        what = "payment" if op.kind == "payment.record" else "void"
        label = f"{what} {op.record_ref or op.op_id} ({op.state})"

        def add(field_name: str, queued: JSONValue, record: JSONValue, words: str, op: LocalOp = op) -> None:
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


def misdated_ops(store: Store, device_id: str, day: date, limit: int = 50) -> list[Misdated]:
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
    out: list[Misdated] = []
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

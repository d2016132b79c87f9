"""``payment.record`` (price warnings: a payment is a fact) and ``payment.void``."""

from __future__ import annotations

from typing import TypedDict

import orjson

from opd_fallback.central.apply.common import _HANDLERS, ID_FORMATS, Result, _field_reject, _local_date
from opd_fallback.central.apply.refs import RefChecks
from opd_fallback.domain.contract import OpEnvelope
from opd_fallback.domain.payloads import PaymentRecord, PaymentVoid


class PriceWarning(TypedDict, total=False):
    """One entry of a payment's ``warnings`` (docs/central-api.md)."""

    code: str
    item: str
    expected_paise: int


class PaymentHandlers(RefChecks):
    @_HANDLERS.register("payment.record")
    def _payment_record(self, env: OpEnvelope, p: PaymentRecord) -> Result:
        self._no_resolution(env)
        self._own_ref(env, p.local_ref)
        reserved = self._reserved(env, "receipt", p.receipt_no, "receipt_no")
        self._deps(env)
        uhid = self._ref(p.patient, "patient", "patient")
        visit_id = self._ref(p.visit, "visit", "visit") if p.visit is not None else None
        order_id = self._ref(p.lab_order, "lab_order", "lab_order") if p.lab_order is not None else None
        receipt_id = p.receipt_no if reserved else ID_FORMATS["receipt"].format(self._next("receipt"))
        warnings = self._price_warnings(uhid, p)
        items = [i.model_dump() for i in p.items]
        if reserved:
            self._use_reserved(p.receipt_no, env.op_id)
        self._w(
            "INSERT INTO payment(receipt_id, receipt_no, uhid, visit_id, order_id, amount_paise, mode, mode_ref, "
            "items, warnings, voided, device_id, local_date, op_id, waiver) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (receipt_id, p.receipt_no, uhid, visit_id, order_id, p.amount_paise, p.mode, p.mode_ref,
             orjson.dumps(items).decode(), orjson.dumps(warnings).decode(), 0, env.device_id,
             _local_date(env.recorded_at), env.op_id,
             None if p.waiver is None else orjson.dumps(p.waiver.model_dump()).decode()),
        )
        self._map(p.local_ref, "payment", receipt_id, env.op_id)
        return {"receipt_id": receipt_id, "warnings": warnings}

    def _price_warnings(self, uhid: str, p: PaymentRecord) -> list[PriceWarning]:
        """A payment is a fact: disagreements become warnings, never a rejection."""
        m = self.master
        exempt: set[str] = set()
        if m.exempt:
            category = self._b.categories.get(uhid)
            if category is None:
                row = self._q("SELECT category FROM patient WHERE uhid=?", (uhid,)).fetchone()
                category = self._b.categories[uhid] = row[0] if row else ""
            exempt = m.exempt.get(category, set())
        warnings: list[PriceWarning] = []
        for item in p.items:
            price = m.price(item.code)
            if price is None:
                warnings.append({"code": "unknown_item", "item": item.code})
                continue
            expected = 0 if item.code in exempt else price * item.qty
            if p.mode != "waived" and item.amount_paise != expected:
                warnings.append({"code": "amount_mismatch", "item": item.code, "expected_paise": expected})
            if p.mode == "waived" and p.waiver is None and expected > 0:
                warnings.append({"code": "waiver_unapproved", "item": item.code})
        return warnings

    @_HANDLERS.register("payment.void")
    def _payment_void(self, env: OpEnvelope, p: PaymentVoid) -> Result:
        self._no_resolution(env)
        self._deps(env)
        receipt_id = self._ref(p.payment, "payment", "payment", missing="void_target_missing")
        row = self._q(
            f"SELECT amount_paise, voided FROM payment WHERE receipt_id=?{self.conn.for_update}", (receipt_id,)
        ).fetchone()
        if row[1]:
            raise _field_reject("void_target_missing", "payment", "already_voided",
                                f"payment {receipt_id} is already voided")
        self._w("UPDATE payment SET voided=1 WHERE receipt_id=?", (receipt_id,))
        self._w(
            "INSERT INTO payment_void(receipt_id, reason, amount_paise, device_id, local_date, op_id) "
            "VALUES (?,?,?,?,?,?)",
            (receipt_id, p.reason, row[0], env.device_id, _local_date(env.recorded_at), env.op_id),
        )
        return {"receipt_id": receipt_id, "voided": True}


"""Saving one checked slip through the counter's services (``Tx``): the same
rules and op kinds as a slip taken at the counter, the waiver rule included."""

from __future__ import annotations

from opd_fallback.application.backentry.model import _FEE_FIELDS, _LAB_FIELDS, _LAB_PAY_FIELDS, RowProblem
from opd_fallback.application.backentry.parse import Slip
from opd_fallback.application.services import PaymentInput, Tx
from opd_fallback.domain import rules
from opd_fallback.domain.errors import DomainError

# --- importing ---------------------------------------------------------------


def _for_the_file(p: RowProblem) -> RowProblem:
    """A service's sentence in the words of the file: a waiver's approver is a
    column here, not a supervisor typing a PIN at the counter."""
    if p.column.endswith("_waiver_by"):
        return RowProblem(p.line, p.column, p.reason.replace(
            "a supervisor's ID and PIN", "the operator id of a supervisor of this counter who allowed it"))
    if p.column.endswith("_waiver_reason") and "needs a reason" in p.reason:
        return RowProblem(p.line, p.column, p.reason + " (why the fee was not taken)")
    return p


class _DryRun(Exception):
    """Raised at the end of a dry-run row so its savepoint rolls back."""


class _Step:
    """Which part of a row is being saved, to name the right column on failure."""

    def __init__(self) -> None:
        self.mapping: dict[str, str] = {}
        self.whole = ""

    def set(self, mapping: dict[str, str], whole: str) -> None:
        self.mapping, self.whole = mapping, whole


def _save(tx: Tx, slip: Slip, step: _Step) -> list[str]:
    """The row's records through the services, inside ``tx``; returns op ids.
    A waived payment goes through the counter's own waiver rule (``CounterService._pay``):
    a fee the patient's category does not exempt needs a reason and a supervisor."""
    op_ids: list[str] = []
    if slip.uhid is None:
        step.set({}, "name")
        p = tx.register_patient(slip.patient)
        op_ids.append(p.op_id)
        patient = tx.patient(p.local_ref)
        category = str(slip.patient.get("category") or "general")
    else:
        step.set({"patient": "uhid"}, "uhid")
        patient = tx.patient(slip.uhid)
        category = tx.category_of(patient)
    step.set({}, "department")
    v = tx.open_visit(patient, slip.department, slip.unit, visit_type=slip.visit_type, visit_date=slip.visit_date)
    op_ids.append(v.op_id)
    if slip.fee is not None:
        step.set(_FEE_FIELDS, "fee_paise")
        code = slip.fee_code or ("OPD-NEW" if slip.visit_type == "new" else "OPD-REVISIT")
        items = [{"code": code, "qty": 1, "amount_paise": slip.fee.amount_paise}]
        listed = tx.catalog.fees.get(code) if tx.catalog is not None else None
        if slip.fee.mode == "waived" and (listed is None or listed.price_paise > 0):
            # a fee with a price (or none known) waived: the waiver rule, at its list price
            at_list = [{**items[0], "amount_paise": listed.price_paise if listed is not None else 0}]
            pay = tx.svc._pay(tx, patient, slip.fee, category, at_list, visit=v.local_ref)
        else:
            pay = tx.record_payment(patient, slip.fee, visit=v.local_ref, due_items=items)
        op_ids.append(pay.op_id)
    if slip.lab_tests:
        step.set(_LAB_FIELDS, "lab_tests")
        order = tx.order_lab(patient, v.local_ref, slip.lab_tests)
        op_ids.append(order.op_id)
        if slip.lab_payment is not None:
            step.set(_LAB_PAY_FIELDS, "lab_paise")
            if slip.lab_items is not None:
                items = [{"code": c, "qty": 1, "amount_paise": p} for c, p in slip.lab_items]
            else:
                items = _lab_items(tx, slip.lab_tests, slip.lab_payment)
            if slip.lab_payment.mode == "waived":
                pay = tx.svc._pay(tx, patient, slip.lab_payment, category, items, visit=v.local_ref,
                                  lab_order=order.local_ref)
            else:
                pay = tx.record_payment(patient, slip.lab_payment, visit=v.local_ref, lab_order=order.local_ref,
                                        due_items=items)
            op_ids.append(pay.op_id)
    return op_ids


def _lab_items(tx: Tx, tests: list[str], payment: PaymentInput) -> list[dict[str, object]]:
    """Items of a lab payment without a lab_items column: each test at its list
    price, which must add up to the amount taken (the list prices tell how to split it)."""
    amount = payment.amount_paise or 0
    cat = tx.catalog
    if cat is None:
        if len(tests) == 1 or amount == 0:
            return [{"code": t, "qty": 1, "amount_paise": amount if i == 0 else 0} for i, t in enumerate(tests)]
        raise DomainError.field(
            "amount_paise",
            "this counter has no price list yet, so the amount cannot be split by test: "
            "run 'opd-fallback refresh' first, give the split in lab_items, or give one test per row",
            code="no_master_data",
        )
    prices = {t: cat.tests[t].price_paise for t in tests}
    if payment.mode == "waived":  # at list price: the waiver rule zeroes them and audits what was waived
        return [{"code": t, "qty": 1, "amount_paise": p} for t, p in prices.items()]
    items: list[dict[str, object]] = [{"code": t, "qty": 1, "amount_paise": p} for t, p in prices.items()]
    total = sum(prices.values())
    if total != amount:
        raise DomainError.field(
            "amount_paise",
            f"the tests cost {rules.format_paise(total)} by the price list but {rules.format_paise(amount)} "
            "was entered (give the split in lab_items if it was charged otherwise)",
            code="amount_not_total",
        )
    return items

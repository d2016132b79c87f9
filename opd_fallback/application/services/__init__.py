"""The one way a counter writes: each service saves its record and its outbox op
in one transaction, with the numbers printed for people.

The TUI, the CLI and the CSV import all call these; none of them writes tables
directly. Saving touches only the local SQLite file, never the network.

    svc = CounterService(store, device_id="C07")
    reg = svc.register_new("op-114", {"name": "Ram Kumar", "sex": "M", "age_years": 40},
                           department="MED", unit="U1", payment=PaymentInput(mode="cash"))
    reg.patient.local_ref, reg.visit.extra["token_no"], reg.payment.extra["receipt_no"]

A flow is also available piece by piece inside one transaction:

    with svc.transaction("op-114") as tx:
        p = tx.register_patient({...}); v = tx.open_visit(p.local_ref, "MED")
"""


from opd_fallback.application.daytotals import WAIVER_ACTION, CashSummary, ModeTotal
from opd_fallback.application.services.counter import CounterService, day_totals
from opd_fallback.application.services.records import (
    LabResult,
    PatientInfo,
    PaymentInput,
    Registration,
    Saved,
    VisitResult,
)
from opd_fallback.application.services.tx import Tx
from opd_fallback.domain.clock import now_ist

__all__ = [
    "WAIVER_ACTION", "CashSummary", "CounterService", "LabResult", "ModeTotal", "PatientInfo",
    "PaymentInput", "Registration", "Saved", "Tx", "VisitResult", "day_totals", "now_ist",
]

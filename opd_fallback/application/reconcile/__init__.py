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


from opd_fallback.application.reconcile.day import (
    OUTCOME_WORKERS,
    ReconcileClient,
    central_op_ids,
    mark_synced_many,
    reconcile_day,
    requeue,
)
from opd_fallback.application.reconcile.drift import misdated_ops, payload_mismatches
from opd_fallback.application.reconcile.local import DaySummary, LocalOp, compare, load_day, summarize
from opd_fallback.application.reconcile.report import (
    EXIT_ATTENTION,
    EXIT_CLEAN,
    EXIT_UNREACHABLE,
    SCHEMA,
    WARNING_CODES,
    WARNING_WORDS,
    DayReport,
    warning_words,
)

__all__ = [
    "EXIT_ATTENTION", "EXIT_CLEAN", "EXIT_UNREACHABLE", "OUTCOME_WORKERS", "SCHEMA", "WARNING_CODES",
    "WARNING_WORDS", "DayReport", "DaySummary", "LocalOp", "ReconcileClient", "central_op_ids", "compare",
    "load_day", "mark_synced_many", "misdated_ops", "payload_mismatches", "reconcile_day", "requeue",
    "summarize", "warning_words",
]

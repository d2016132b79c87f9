"""Review: every op sync could not finish alone reaches a decision by a person.

Sync flags an op as ``conflict`` (a possible duplicate patient, a stale update,
or -- set by the engine -- a dependency it waited on too long, ``last_status``
``deferred``) or ``rejected`` (central can never apply it as sent). This module
lists those items with an explanation in words and a field-by-field comparison,
and carries out a supervisor's decision. Each decision changes the outbox and
writes its audit entry (who, when, what, why) in the same transaction, so a
decision is never half-made and never unrecorded. Nothing is deleted: an op a
person gives up on is ``cancelled`` with the reason kept in ``wait_reason``.

How each decision flows back to central on the next sync:

- **link / create-new** (``possible_duplicate``): the same op goes back to
  ``pending`` with the contract's ``resolution``; its payload is unchanged, so
  the op_id stays the idempotency key and everything that depended on it
  follows once it is applied.
- **merge** (``stale_update``): the supervisor picks, per changed field, the
  counter's value or central's. If every counter value is kept, the same op is
  resubmitted with ``{"action": "apply", "base_version": current.version}``.
  If the merge drops fields, the payload differs, so a *new* op is queued (new
  op_id and seq, ``supersedes`` the old one, payload ``base_version`` =
  ``current.version``, resolution ``apply`` too) and the old op is cancelled
  "superseded by ...": reusing an op_id with another payload is what the
  contract's idempotency check exists to refuse. If central's value is kept for
  every field there is nothing left to send: the op is cancelled, and the local
  record takes central's values.
- **correct** (``rejected``): a new op (new op_id and seq, same ``local_ref``:
  a rejected op was never applied) with the corrected fields; ops waiting on the
  rejected one are re-pointed to it; the local record takes the corrections.
  The new op keeps the original ``operator_id`` and ``recorded_at`` (the clerk
  took the money that day; the day's reconciliation must still count it); the
  supervisor's part is in the audit log. A payment's amount, mode and items are
  never corrected (a payment is a fact): cancel it and record a new one.
- **cancel**: with a reason; for a payment (or a void) also what happened to
  the money. An op others wait on is cancelled only together with them
  (``cascade``), so nothing is left waiting on an op that will never come.
- **retry** (waited too long on a dependency): back to ``pending``.

Only an active operator with the ``supervisor`` role may decide: the PIN is
checked once by :meth:`ReviewService.authenticate`, and every action re-checks
the role inside its transaction (a supervisor disabled meanwhile is refused).
"""


from opd_fallback.application.review.items import (
    CANDIDATE_FIELDS,
    FLAGGED_STATES,
    KIND_WORDS,
    PAYMENT_FIXED,
    Category,
    Comparison,
    Decision,
    FieldDiff,
    Pick,
    ReviewItem,
    Supervisor,
    age_words,
    summary,
)
from opd_fallback.application.review.service import ReviewService
from opd_fallback.application.review.values import parse_value

__all__ = [
    "CANDIDATE_FIELDS", "FLAGGED_STATES", "KIND_WORDS", "PAYMENT_FIXED", "Category", "Comparison", "Decision",
    "FieldDiff", "Pick", "ReviewItem", "ReviewService", "Supervisor", "age_words", "parse_value", "summary",
]

"""Applying ops: the heart of the reference server.

One batch is one database transaction, committed (fsync once) before the
answer is sent, which is what makes the server fast enough to be the ceiling
the sync engine is measured against. An op and the row that remembers its
outcome are written together or not at all, and a failing op never undoes the
others. Plain prepared statements on purpose: no ORM objects per op.

How an op stays atomic without a SAVEPOINT each: every check that can end an
op (rejected / deferred / conflict) runs before its first write, and a write
followed by such an ending is refused as a bug (the whole batch then rolls
back and the client gets a 5xx, so it resends). The outcome rows, ref map
rows and patient versions are kept in memory during the batch and written
with ``executemany`` just before the single COMMIT; the ops of the batch see
them through the batch's dictionaries (prefetched in one query each).

Exactly once with several writers (``--workers N``, several servers on one
PostgreSQL), enforced by the database, not by a Python lock:
- SQLite: ``BEGIN IMMEDIATE`` takes the file's write lock before the remembered
  outcomes are read, so writers in any process take turns.
- PostgreSQL: before reading the remembered outcomes, a batch takes a
  transaction-scoped advisory lock on each of its op_ids (in one order, so two
  batches cannot deadlock on them). The same op_id arriving at two workers at
  once is applied by the first; the second waits for its COMMIT and then finds
  the outcome (READ COMMITTED: each statement sees what was committed before
  it). The primary keys (op_outcome.op_id, ref_map.local_ref, patient.uhid,
  patient_version, payment_void) are the last line: a batch that still loses a
  race to one of them is rolled back whole and run again (``_RETRIES``), and
  then finds the winner's outcome. Rows read to be changed (a reserved id, a
  patient being updated, the device's counters) are read ``FOR UPDATE``.
- Numbers come from :mod:`opd_fallback.central.series` (sequences on
  PostgreSQL), so ids never overlap across workers.

Decisions not spelled out by the contract (documented for the IT cell):
- a ``device_mismatch`` or malformed-envelope rejection (including a ``seq``
  above 2**63-1 or a ``recorded_at`` that cannot be placed in Asia/Kolkata) is *not* remembered
  under the op_id, so nobody can poison another device's op_id;
- a remembered ``rejected`` outcome is replayed as ``rejected`` (the original
  outcome); only a remembered ``applied`` is replayed as ``duplicate``;
- ids that look like central block ids (``KGMU`` + 9 digits for uhid, ``KR`` + 9
  digits for receipts, ``KS`` + 9 digits for samples) must have been issued to
  the sending device, else ``reserved_id_not_owned``; other receipt / sample
  numbers (the counter's own ``C07-R000043``) are taken as they are;
- ``patient.update`` is stale when the central version is above
  ``max(base_version, 1)``: an update of a patient the counter itself
  registered offline (base 0, central version 1) is not a conflict;
- an unknown ``local_ref`` in ``payment.void`` is ``reference_pending``
  (it may still arrive); an unknown ``central_id`` is ``void_target_missing``;
- payload equality (contract 1.1) is RFC 8785 canonical JSON with null-valued
  keys dropped (:func:`opd_fallback.domain.contract.canonical_payload`); a
  payload that has no canonical form (an integer beyond 2**53) is rejected as
  ``validation_failed`` and not remembered. Outcomes remembered before 1.1
  hold the old hash (sorted-key JSON as received) and are compared that way;
- ``max_seq`` counts the ``seq`` of every op of the token's device that carries
  a usable one, whatever its outcome, malformed envelopes included;
- ``lab.sample_collect`` (1.2) checks its ``depends_on`` first, so a tube of
  an order another device has not synced yet is ``deferred`` while the
  counter names that order's op; without such a dependency a tube no applied
  order has is ``rejected`` / ``unknown_sample``. Every event is kept (never
  updated); the tube's state is the event with the latest ``collected_at``
  (the op_id breaks a tie), whatever order they arrive in. The result's
  ``status`` is what this op recorded (a replay gives the same answer);
  ``GET /samples/{id}`` gives the tube's state now, and its ``collected_at``
  is that latest event's time, for a refused tube too (when it was drawn and
  refused); null only while no event has arrived;
- linking a ``local_ref`` to an existing patient (resolution ``link``) moves
  that patient up in ``/patients/changes``, so counters learn the new
  ``local_refs`` entry.

Contract 1.2 here: an integer beyond 2**53-1 is ``validation_failed`` naming
its field (not remembered, like any payload without a canonical form); an
``origin`` is kept in ``op_outcome.origin`` and hashed with the payload; a
null inside ``patient.update``'s ``changes`` counts for idempotency. Hashes
whose input is the same as under 1.1 keep the ``jcs:`` prefix, the others
(an origin, a null in ``changes``) are ``jcs2:``, and a ``jcs:`` row is compared
with the 1.1 form, so a resend of an op remembered before 1.2 is still a
duplicate. A deferred op's ``error.waiting_for`` names the op or local_ref it
waits on; a tube whose sample id another op's tube has is ``sample_id_reused``;
a waived payment of an item the category does not exempt without a ``waiver``
is applied with ``waiver_unapproved`` (one warning per such item).

The package, by concern: :mod:`.common` (ids, outcomes, the handler table),
:mod:`.idempotency` (payload hashes), :mod:`.state` (what a batch remembers),
:mod:`.base` (write buffering), :mod:`.prefetch`, :mod:`.refs` (shared checks),
:mod:`.handlers` (one module per group of op kinds) and :mod:`.batch` (the
transaction, the retry, one op). Handlers see the database only through the
applier; none imports the HTTP layer (an import-linter contract).
"""

from __future__ import annotations

from opd_fallback.central.apply import handlers as _handlers  # noqa: F401  (registers every kind)
from opd_fallback.central.apply.batch import Applier
from opd_fallback.central.apply.common import (
    _HANDLERS,
    CANDIDATE_KEYS,
    ID_FORMATS,
    ID_PATTERNS,
    PATIENT_COLUMNS,
    OpResult,
    Result,
    _field_reject,
    _Outcome,
    _reject,
    _result,
)
from opd_fallback.central.apply.idempotency import HASH_PREFIX, HASH_PREFIX_12, _same_payload, payload_hash

_HANDLERS.complete()

__all__ = [
    "CANDIDATE_KEYS",
    "HASH_PREFIX",
    "HASH_PREFIX_12",
    "ID_FORMATS",
    "ID_PATTERNS",
    "PATIENT_COLUMNS",
    "_HANDLERS",
    "Applier",
    "OpResult",
    "Result",
    "_Outcome",
    "_field_reject",
    "_reject",
    "_result",
    "_same_payload",
    "payload_hash",
]

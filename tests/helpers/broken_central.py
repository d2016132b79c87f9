"""The reference central server with one deliberate flaw, run as a real process,
to prove the conformance kit can fail (tests/conformance).

    python -m tests.helpers.broken_central FLAW serve --database-url ... --port ...

FLAW is one of :data:`FLAWS`; the rest is ``opd_fallback.central``'s own command line.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any

from opd_fallback.central.apply import Applier, OpResult
from opd_fallback.central.apply import batch as apply  # where an op's payload is validated
from opd_fallback.central.commands import central_app


def _two_keys() -> None:
    """Accepts a reference with both keys (keeps the central_id, drops the local_ref)."""
    validate = getattr(apply, "validate_payload")  # noqa: B009  (batch.py imports it; no re-export)

    def lenient(kind: str, payload: Any) -> Any:
        if isinstance(payload, dict):
            payload = {k: ({"central_id": v["central_id"]} if isinstance(v, dict) and v.get("central_id")
                           and v.get("local_ref") else v) for k, v in payload.items()}
        return validate(kind, payload)

    setattr(apply, "validate_payload", lenient)  # noqa: B010


def _forgets_rejections() -> None:
    """Forgets an outcome: a rejected op is answered but never remembered."""
    remember = Applier._remember

    def forgetful(self: Applier, env: Any, phash: str, status: str, result: Any, error: Any) -> None:
        if status != "rejected":
            remember(self, env, phash, status, result, error)

    Applier._remember = forgetful  # type: ignore[method-assign]


def _duplicate_other_result() -> None:
    """Answers ``duplicate`` with another result than the original (a new uhid)."""
    one = Applier._one

    def other(self: Applier, device_id: str, raw: object, delta: Any) -> OpResult:
        out = one(self, device_id, raw, delta)
        res = out.get("result")
        if out["status"] == "duplicate" and isinstance(res, dict) and "uhid" in res:
            out = OpResult(op_id=out["op_id"], status=out["status"], result={**res, "uhid": res["uhid"] + "9"},
                           error=out["error"])
        return out

    Applier._one = other  # type: ignore[method-assign]


def _late_commit() -> None:
    """PostgreSQL: numbers patient changes when it writes them, not at commit, and
    a batch of 10 ops or more is slow to commit: a reader's cursor passes it."""
    batch = Applier._batch

    def slow(self: Applier, device_id: str, ops: Sequence[object]) -> list[OpResult]:
        out = batch(self, device_id, ops)
        if len(ops) >= 10:
            time.sleep(2.0)
        return out

    Applier._number_changes = lambda self, uhids: None  # type: ignore[method-assign]
    Applier._batch = slow  # type: ignore[method-assign]


FLAWS = {"two_keys": _two_keys, "forgets_rejections": _forgets_rejections,
         "duplicate_other_result": _duplicate_other_result, "late_commit": _late_commit}

if __name__ == "__main__":
    FLAWS[sys.argv[1]]()
    central_app(args=sys.argv[2:], prog_name="broken_central")

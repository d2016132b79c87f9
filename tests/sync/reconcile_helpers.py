"""A minimal push loop for reconciliation tests (stand-in until the sync engine lands)."""

from __future__ import annotations

import orjson
from sqlalchemy import text

from opd_fallback.clock import now_iso
from opd_fallback.store import outbox
from opd_fallback.store.engine import Store
from opd_fallback.sync.client import CentralClient


def sync_once(store: Store, client: CentralClient) -> None:
    with store.read() as s:
        ops = [outbox.envelope(o) for o in outbox.pending(s)]
    for i in range(0, len(ops), 500):
        chunk = ops[i:i + 500]
        results = client.push_batch_raw(chunk)
        with store.write() as s:
            for r in results:
                if r["status"] in ("applied", "duplicate"):
                    s.execute(text("UPDATE op SET state='synced', last_status=:st, result=:r, synced_at=:t, "
                                   "updated_at=:t WHERE op_id=:i"),
                              {"st": r["status"], "r": orjson.dumps(r["result"]).decode(), "t": now_iso(),
                               "i": r["op_id"]})

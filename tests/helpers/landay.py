"""A day's work at counters sharing through a real hub, counted op by op (tests of issue 18)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import text

from opd_fallback.application.services import CounterService, PaymentInput
from opd_fallback.application.share import ShareResult, share_once
from opd_fallback.store.engine import Store


def letters(value: str) -> str:
    """Names take letters only: C01 -> Cab, 17 -> bh."""
    return "".join(chr(ord("a") + int(c)) if c.isdigit() else c for c in value)


def work(store: Store, dev: str, n_ops: int, start: int) -> int:
    """Exactly ``n_ops`` ops: registrations with a fee (3 ops each), then patient updates (1 op each).
    Returns the next registration number."""
    svc = CounterService(store, dev)
    n = start
    while n_ops >= 3:
        n += 1
        svc.register_new("op-1", {"name": f"Patient {letters(dev)} {letters(str(n))}", "sex": "F", "age_years": 30,
                                  "mobile": f"9{int(dev[1:]):02d}{n:07d}"},
                         department="MED", payment=PaymentInput(mode="cash", amount_paise=1000 + n))
        n_ops -= 3
    while n_ops > 0:
        with store.read() as s:
            ref = s.execute(text("SELECT local_ref FROM patient ORDER BY id DESC LIMIT 1")).scalar()
        svc.update_patient("op-1", str(ref), {"mobile": f"8{int(dev[1:]):02d}{n:06d}{n_ops}"})
        n_ops -= 1
    return n


def share(hub: Any, store: Store, dev: str) -> ShareResult:
    with hub.hub_client(dev, deadline_s=20) as client:
        return share_once(store, client, dev)


def hub_ops(db: Path) -> list[tuple[str, str, int]]:
    from tests.helpers import db as db_helper

    con = db_helper.connect(db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return con.execute("SELECT op_id, device_id, seq FROM op").fetchall()
    finally:
        con.close()


def own_op_ids(store: Store) -> set[str]:
    with store.read() as s:
        return {str(r[0]) for r in s.execute(text("SELECT op_id FROM op")).all()}


def own_records(store: Store) -> dict[str, int]:
    """This counter's records (offline number -> paise for payments, 0 otherwise)."""
    with store.read() as s:
        out = {str(r[0]): 0 for r in s.execute(text("SELECT local_ref FROM patient")).all()}
        out.update({str(r[0]): 0 for r in s.execute(text("SELECT local_ref FROM visit")).all()})
        out.update({str(r[0]): int(r[1]) for r in s.execute(text("SELECT local_ref, amount_paise FROM payment")).all()})
    return out


def held_records(store: Store, dev: str) -> dict[str, int]:
    """Another counter's records as this counter holds them (offline number -> paise)."""
    with store.read() as s:
        rows = s.execute(text("SELECT local_ref, kind, json_extract(detail, '$.amount_paise') FROM shared_record "
                              "WHERE device_id = :d"), {"d": dev}).all()
    return {str(r[0]): int(r[2] or 0) if r[1] == "payment" else 0 for r in rows}


def hub_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "opd_fallback", "hub", *args], capture_output=True, text=True,
                          timeout=120)

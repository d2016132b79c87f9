"""The hub is killed with SIGKILL many times while three counters save and share.

Every op a counter holds an acknowledgement for (its pushed watermark moves
only after the hub answered, and the hub answers only after COMMIT with
synchronous=FULL) is on the hub after each restart, none twice; the file
passes SQLite's integrity check; and once the hub stays up every counter's
ops are all there, and every counter has pulled every other counter's records."""

from __future__ import annotations

import random
import threading
import time

import pytest
from sqlalchemy import text

from opd_fallback.application.services import CounterService, PaymentInput
from opd_fallback.application.share import share_once
from opd_fallback.store import meta, open_store
from tests.helpers import db as db_helper
from tests.helpers.hub import run_hub

DEVICES = ("C01", "C02", "C03")
KILLS = 12


def letters(text: str) -> str:
    """Names take letters only: C01 -> Cab, 17 -> bh."""
    return "".join(chr(ord("a") + int(c)) if c.isdigit() else c for c in text)


def hub_ops(db) -> list[tuple[str, str, int]]:
    con = db_helper.connect(db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return con.execute("SELECT op_id, device_id, seq FROM op").fetchall()
    finally:
        con.close()


@pytest.mark.chaos
@pytest.mark.timeout(900)
def test_hub_survives_kill_9_and_loses_no_acknowledged_op(tmp_path) -> None:
    rnd = random.Random(13)
    stores = {d: open_store(tmp_path / d / "counter.db") for d in DEVICES}
    stop = threading.Event()
    errors: list[BaseException] = []
    acked: dict[str, int] = dict.fromkeys(DEVICES, 0)
    with run_hub(tmp_path, devices=DEVICES) as hub:

        def counter(dev: str) -> None:
            svc = CounterService(stores[dev], dev)
            n = 0
            try:
                with hub.hub_client(dev, deadline_s=3, connect_timeout_s=1) as client:
                    while not stop.is_set():
                        for _ in range(rnd.randint(1, 4)):
                            n += 1
                            svc.register_new("op", {"name": f"Patient {letters(dev)} {letters(str(n))}", "sex": "F", "age_years": 30},
                                             department="MED", payment=PaymentInput(mode="cash", amount_paise=100))
                        share_once(stores[dev], client, dev)
                        with stores[dev].read() as s:
                            acked[dev] = int(meta.get(s, meta.HUB_PUSHED_SEQ) or 0)
            except BaseException as exc:  # surfaced by the main thread
                errors.append(exc)

        threads = [threading.Thread(target=counter, args=(d,), daemon=True) for d in DEVICES]
        for t in threads:
            t.start()
        for _ in range(KILLS):
            time.sleep(rnd.uniform(0.3, 1.2))
            snapshot = dict(acked)  # acknowledged before the kill
            hub.kill()
            on_hub = hub_ops(hub.db_path)
            assert len(on_hub) == len({op_id for op_id, _, _ in on_hub})
            seqs: dict[str, set[int]] = {d: set() for d in DEVICES}
            for _, dev, seq in on_hub:
                seqs[dev].add(seq)
            for dev, top in snapshot.items():
                missing = set(range(1, top + 1)) - seqs[dev]
                assert not missing, f"{dev}: acknowledged ops lost by kill -9: seq {sorted(missing)[:10]}"
            time.sleep(rnd.uniform(0.0, 0.5))
            hub.start()
        stop.set()
        for t in threads:
            t.join(timeout=60)
        assert not errors, errors
        for dev in DEVICES:  # the hub stays up: everything arrives, and everyone has everyone's records
            with hub.hub_client(dev, deadline_s=10) as client:
                assert share_once(stores[dev], client, dev).outcome == "ok"
        for dev in DEVICES:
            with hub.hub_client(dev, deadline_s=10) as client:
                assert share_once(stores[dev], client, dev).outcome == "ok"
        on_hub = hub_ops(hub.db_path)
        for dev in DEVICES:
            with stores[dev].read() as s:
                own = {r[0] for r in s.execute(text("SELECT op_id FROM op")).all()}
                others = int(s.execute(text("SELECT count(*) FROM shared_record")).scalar())
            assert {op_id for op_id, d, _ in on_hub if d == dev} == own
            assert others == sum(1 for _, d, _ in on_hub if d != dev)  # one record per op (register, visit, pay)
        print(f"hub killed {KILLS} times; {len(on_hub)} ops on the hub, none lost or doubled")
    for st in stores.values():
        st.close()

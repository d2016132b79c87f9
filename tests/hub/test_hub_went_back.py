"""The hub put back to an old backup mid-day, as the issue saw it: 3 counters
share 400 ops each, the hub is backed up, 80 more each are shared, the hub is
put back to the backup, 21 more each. Afterwards every op of every counter is
on the hub exactly once and every counter holds every other counter's records
(to the paisa), the counters said the hub went back, and so did the hub's log.

Two ways of going back: ``hub restore`` (a new epoch in the file), and the
file copied back by hand with the hub stopped and its ``.seen`` file gone too
(only the counters' memory shows it: the hub starts a new epoch when told)."""

from __future__ import annotations

import shutil
import time

import pytest

from opd_fallback.store import open_store
from tests.conftest import put_master_data
from tests.helpers.hub import run_hub
from tests.helpers.landay import held_records, hub_cli, hub_ops, own_op_ids, own_records, share, work

DEVICES = ("C01", "C02", "C03")


@pytest.mark.chaos
@pytest.mark.timeout(900)
@pytest.mark.parametrize("how", ["hub restore", "copied back by hand"])
def test_hub_put_back_to_an_old_backup_mid_day(tmp_path, how) -> None:
    stores = {d: open_store(tmp_path / d / "counter.db") for d in DEVICES}
    for st in stores.values():
        put_master_data(st)
    n = dict.fromkeys(DEVICES, 0)
    try:
        with run_hub(tmp_path, devices=DEVICES) as hub:
            def day(ops: int) -> None:
                for d in DEVICES:
                    n[d] = work(stores[d], d, ops, n[d])
                for _ in range(2):  # everyone pushes, then everyone has pulled everyone
                    for d in DEVICES:
                        res = share(hub, stores[d], d)
                        assert res.outcome == "ok", res.message

            day(400)
            backup = tmp_path / "hub-backup.db"
            done = hub_cli("backup", str(backup), "--db", str(hub.db_path))
            assert done.returncode == 0, done.stderr
            day(80)
            assert {d: sum(1 for _, dev, _ in hub_ops(hub.db_path) if dev == d) for d in DEVICES} == \
                dict.fromkeys(DEVICES, 480)
            hub.stop()
            if how == "hub restore":
                done = hub_cli("restore", str(backup), "--db", str(hub.db_path))
                assert done.returncode == 0, done.stderr
            else:
                for ext in ("", "-wal", "-shm", ".seen"):
                    hub.db_path.with_name(hub.db_path.name + ext).unlink(missing_ok=True)
                shutil.copy(backup, hub.db_path)
            hub.start()
            assert {d: sum(1 for _, dev, _ in hub_ops(hub.db_path) if dev == d) for d in DEVICES} == \
                dict.fromkeys(DEVICES, 400)  # the 80 of each are gone from the hub

            for d in DEVICES:
                n[d] = work(stores[d], d, 21, n[d])
            started = time.monotonic()
            first = {d: share(hub, stores[d], d) for d in DEVICES}
            second = {d: share(hub, stores[d], d) for d in DEVICES}
            healed_s = time.monotonic() - started
            for d in DEVICES:
                assert first[d].outcome == second[d].outcome == "ok", (first[d].message, second[d].message)
                assert first[d].hub_went_back, f"{d} did not notice the hub went back"
                assert first[d].hub_held_before == 400 and first[d].resent == 80 and first[d].pushed == 101
                assert second[d].hub_went_back is None and second[d].pushed == 0

            on_hub = hub_ops(hub.db_path)
            assert len(on_hub) == len({op_id for op_id, _, _ in on_hub}) == 3 * 501
            assert len({(dev, seq) for _, dev, seq in on_hub}) == 3 * 501
            for d in DEVICES:
                assert {op_id for op_id, dev, _ in on_hub if dev == d} == own_op_ids(stores[d])
            paise = {}
            for d in DEVICES:
                mine = own_records(stores[d])
                paise[d] = sum(mine.values())
                for other in DEVICES:
                    if other != d:
                        assert held_records(stores[other], d) == mine, f"{other} lacks some of {d}'s records"
            log = hub.log()
            assert "went back" in log or "put back" in log, log
            print(f"\n{how}: 3 counters x 501 ops on the hub once each; {len(mine)} records per counter held by "
                  f"the other two; paise per counter {paise}; healed in {healed_s:.1f}s (two rounds of exchanges)")
    finally:
        for st in stores.values():
            st.close()

"""The sync's check with central before every run writes only when there is
something to write (issue 21 item 4: fewer write transactions for a clerk's
save to queue behind while a sync runs)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import event

from opd_fallback.domain.contract import DeviceInfo
from opd_fallback.store import meta, open_store, readiness
from opd_fallback.store.numbers import SEQ, next_value, peek


class Central:
    def __init__(self, max_seq: int) -> None:
        self.max_seq = max_seq

    def device_me(self) -> DeviceInfo:
        return DeviceInfo(device_id="C07", max_seq=self.max_seq, ops_applied=self.max_seq)


def test_a_check_that_changes_nothing_takes_no_write_lock(tmp_path: Path) -> None:
    store = open_store(tmp_path / "counter.db")
    writes: list[str] = []
    event.listen(store.engine, "before_cursor_execute",
                 lambda c, cur, st, *a: writes.append(st) if st.startswith("BEGIN IMMEDIATE") else None)
    central = Central(5)
    first = readiness.check_with_central(store, central, device_id="C07")
    assert (first.local_seq_before, first.local_seq_after) == (0, 5) and len(writes) == 1
    with store.write() as s:
        next_value(s, SEQ)  # a save meanwhile: 6
    writes.clear()
    again = readiness.check_with_central(store, central, device_id="C07")
    assert (again.central_max_seq, again.local_seq_before, again.local_seq_after) == (5, 6, 6)
    assert writes == []  # nothing to raise, nothing new to record
    central.max_seq = 6  # central took the save: recorded
    readiness.check_with_central(store, central, device_id="C07")
    assert len(writes) == 1
    with store.read() as s:
        assert '"central_max_seq":6' in (meta.get(s, meta.LAST_SEQ_CHECK) or "")
        assert peek(s, SEQ) == 6
    central.max_seq = 9  # central has numbers this database never handed out: raised, as before
    check = readiness.check_with_central(store, central, device_id="C07")
    assert (check.local_seq_before, check.local_seq_after) == (6, 9) and len(writes) == 2
    store.close()

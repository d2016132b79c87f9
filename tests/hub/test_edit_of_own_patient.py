"""Another counter's edit of this counter's own patient reaches this counter's ``patient`` table.

C01 registers Meena Kumari and shares; C02 pulls her, corrects her name and
mobile at its counter (the service the UI calls) and shares; C01 exchanges.
C01's own row must then hold the new name and mobile (every other column as it
was), its search must find her by the new name and by part of the new mobile,
and nothing may enter C01's outbox: the edit is C02's op, synced by C02 alone.
A second exchange changes nothing, and C01 restored from the hub on a new PC
has the edited row too. A void of C01's receipt at C02 is refused (a counter
voids only its own payments), so no void of another counter's record can
arrive. When both counters changed the same field without knowing of the
other's change, the later change wins at both counters and the counter where
the older one arrived late flags it for a person (share's problems, ``review
history``), whichever of the two made it; the counter that edits another
counter's patient shows its edit at once.

Real parts: a hub process (HTTPS, pinned), SQLCipher counter files, share_once,
the counter's service and its one search.
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import timedelta

import orjson
import pytest
from sqlalchemy import text

from opd_fallback.application.find import find
from opd_fallback.application.restore_from_hub import restore_from_hub
from opd_fallback.application.review import ReviewService
from opd_fallback.application.services import CounterService, PaymentInput
from opd_fallback.domain import clock
from opd_fallback.domain.errors import DomainError
from opd_fallback.store import open_store
from opd_fallback.store.operators import add_operator
from tests.helpers.hub import run_hub
from tests.helpers.landay import share

DEVICES = ("C01", "C02")
MEENA = {"name": "Meena Kumari", "sex": "F", "age_years": 40, "mobile": "9800000001", "district": "Lucknow"}


def _rows(store, table: str, key: str) -> dict[str, dict[str, object]]:
    with store.read() as s:
        res = s.execute(text(f"SELECT * FROM {table}"))
        cols = list(res.keys())
        return {str(r[cols.index(key)]): dict(zip(cols, r)) for r in res.all()}


def _patient(store, ref: str) -> dict[str, object]:
    return _rows(store, "patient", "local_ref")[ref]


def _audit_count(store) -> int:
    with store.read() as s:
        return int(s.execute(text("SELECT count(*) FROM audit_log")).scalar() or 0)


@pytest.fixture
def stores(tmp_path):
    out = {d: open_store(tmp_path / d / "counter.db") for d in DEVICES}
    yield out
    for st in out.values():
        st.close()


@contextmanager
def _meena_at_both(tmp_path, stores, monkeypatch):
    """A real hub; C01 registers Meena Kumari and both counters share. Yields
    the hub, ``ok(dev)`` (one exchange that must succeed), the two counters' services,
    her registration, and ``shift`` (seconds added to every counter's clock, to order edits)."""
    real = clock.now_ist
    shift = {"s": 0}
    monkeypatch.setattr(clock, "now_ist", lambda: real() + timedelta(seconds=shift["s"]))
    with run_hub(tmp_path, devices=DEVICES) as hub:
        def ok(dev: str):
            res = share(hub, stores[dev], dev)
            assert res.outcome == "ok", res.message
            return res

        c01, c02 = CounterService(stores["C01"], "C01"), CounterService(stores["C02"], "C02")
        reg = c01.register_new("op-1", MEENA, department="MED", payment=PaymentInput(mode="cash", amount_paise=1000))
        ok("C01")
        ok("C02")
        yield hub, ok, c01, c02, reg, shift


def test_another_counters_edit_reaches_this_counters_own_patient(tmp_path, stores, monkeypatch) -> None:
    with _meena_at_both(tmp_path, stores, monkeypatch) as (hub, ok, c01, c02, reg, _shift):
        ref = reg.patient.local_ref
        before = _patient(stores["C01"], ref)
        ops_before = _rows(stores["C01"], "op", "op_id")

        # the name and mobile (kept in the LAN's index) and the address (not in it)
        changes = {"name": "Meena Devi", "mobile": "9811122233", "address_line": "12 Aminabad Road"}
        edit = c02.update_patient("op-2", ref, changes)
        add_operator(stores["C02"], "sup-2", "Supervisor Two", "999999", role="supervisor")
        with pytest.raises(DomainError, match="no payment"):  # C02 cannot void C01's receipt
            c02.void("op-2", str(reg.payment.extra["receipt_no"]), "entered twice", approved_by="sup-2")
        ok("C02")

        got = ok("C01")
        assert got.pulled_updates == 1
        after = _patient(stores["C01"], ref)
        assert after == {**before, **changes}  # those three columns, nothing else

        # the counter's search (the UI's and `find`'s) finds her by the new name and by part of the new mobile
        for query in ("Meena Devi", "9811122233", "122233", "981112"):
            hits = [(h.local_ref, h.name, h.mobile, h.source) for h in find(stores["C01"], query)]
            assert hits == [(ref, "Meena Devi", "9811122233", "this_counter")], query
        assert [(h.local_ref, h.name) for h in c01.search_patients("9811122233")] == [(ref, "Meena Devi")]
        assert find(stores["C01"], "9800000001") == []  # the old mobile is hers no longer

        # exactly once at central: the edit is C02's op alone; C01's outbox got nothing
        assert _rows(stores["C01"], "op", "op_id") == ops_before
        assert edit.op_id in _rows(stores["C02"], "op", "op_id")

        # a second exchange changes nothing
        tables = {t: _rows(stores["C01"], t, k) for t, k in (("patient", "local_ref"), ("op", "op_id"))}
        audits = _audit_count(stores["C01"])
        again = ok("C01")
        assert (again.pulled_updates, again.pulled_records, again.pushed) == (0, 0, 0)
        assert {t: _rows(stores["C01"], t, k) for t, k in (("patient", "local_ref"), ("op", "op_id"))} == tables
        assert _audit_count(stores["C01"]) == audits

        # C01 restored from the hub on a new PC has the edited row
        new = open_store(tmp_path / "C01-new" / "counter.db")
        try:
            with hub.hub_client("C01", deadline_s=20) as client:
                restore_from_hub(new, client, "C01")
            restored = _patient(new, ref)
            assert {k: v for k, v in restored.items() if k != "id"} == {k: v for k, v in after.items() if k != "id"}
        finally:
            new.close()


def test_a_concurrent_edit_of_the_same_field_is_kept_later_and_flagged(tmp_path, stores, monkeypatch) -> None:
    with _meena_at_both(tmp_path, stores, monkeypatch) as (_hub, ok, c01, c02, reg, shift):
        ref = reg.patient.local_ref
        before = _patient(stores["C01"], ref)
        # neither counter knows of the other's edit: C02 first (older), then C01 (newer), then they share
        shift["s"] = 10
        c02.update_patient("op-2", ref, {"mobile": "9822222222", "guardian_name": "Ramesh"})
        shift["s"] = 20
        c01.update_patient("op-1", ref, {"mobile": "9811111111"})
        ops_before = _rows(stores["C01"], "op", "op_id")
        ok("C02")
        got = ok("C01")  # C02's older mobile arrives after C01's own newer one: C01's stays, and it is flagged
        after = _patient(stores["C01"], ref)
        assert after == {**before, "mobile": "9811111111", "guardian_name": "Ramesh"}
        assert any("mobile" in p and "C02" in p and "check" in p for p in got.problems), got.problems
        assert _rows(stores["C01"], "op", "op_id") == ops_before
        with stores["C01"].read() as s:
            flagged = s.execute(text("SELECT action, subject FROM audit_log WHERE action='review.lan_edit_conflict'")).all()
        assert [tuple(r) for r in flagged] == [("review.lan_edit_conflict", ref)]
        (entry,) = ReviewService(stores["C01"]).history()  # what `review history` shows a supervisor
        assert entry.subject == ref and "check with the patient" in orjson.loads(entry.detail)["why"]

        ok("C02")  # C02 takes C01's newer mobile: both counters show the same patient
        with stores["C02"].read() as s:
            row = s.execute(text("SELECT name, mobile FROM shared_record WHERE local_ref=:r"), {"r": ref}).one()
        assert tuple(row) == ("Meena Kumari", "9811111111")
        again = ok("C01")  # nothing new: nothing flagged twice
        assert not any("mobile" in p for p in again.problems)
        with stores["C01"].read() as s:
            n = s.execute(text("SELECT count(*) FROM audit_log WHERE action='review.lan_edit_conflict'")).scalar()
        assert n == 1


def test_the_editing_counter_shows_its_edit_and_both_counters_end_alike(tmp_path, stores, monkeypatch) -> None:
    with _meena_at_both(tmp_path, stores, monkeypatch) as (_hub, ok, c01, c02, reg, shift):
        ref = reg.patient.local_ref
        # this time C01's edit is the older: neither counter knows of the other's
        shift["s"] = 10
        c01.update_patient("op-1", ref, {"mobile": "9811111111"})
        shift["s"] = 20
        c02.update_patient("op-2", ref, {"name": "Meena Devi", "mobile": "9822222222"})
        # C02 finds her under its own edit at once, before any exchange
        assert [(h.local_ref, h.name, h.mobile, h.source) for h in find(stores["C02"], "Meena Devi")] == \
            [(ref, "Meena Devi", "9822222222", "lan")]
        ok("C01")
        got = ok("C02")  # C01's older mobile arrives after C02's own newer one: C02's stays, and it is flagged
        assert any("mobile" in p and "C01" in p and "check" in p for p in got.problems), got.problems
        ok("C01")  # C01 takes C02's newer edit
        assert (_patient(stores["C01"], ref)["name"], _patient(stores["C01"], ref)["mobile"]) == \
            ("Meena Devi", "9822222222")
        with stores["C02"].read() as s:
            row = s.execute(text("SELECT name, mobile FROM shared_record WHERE local_ref=:r"), {"r": ref}).one()
        assert tuple(row) == ("Meena Devi", "9822222222")  # the same patient at both counters
        (entry,) = ReviewService(stores["C02"]).history()
        assert entry.action == "review.lan_edit_conflict" and entry.subject == ref
        again = ok("C02")
        assert not again.problems and len(ReviewService(stores["C02"]).history()) == 1

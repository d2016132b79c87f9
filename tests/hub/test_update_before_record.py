"""A patient edit that reaches a counter before the patient's record (issue 19).

The hub's file is lost and a new, empty hub is made; the counters heal it in
whatever order they share. Here C02 (which edited C01's patient) shares first,
so C03, a counter whose PC was off the whole morning, pulls the edit before
C01 has sent the patient at all. The edit must be kept and applied when the
record arrives, never dropped: C03 finds the patient under the new name.
Then an older edit of the same patient (made at C01 before C02's) arrives last
and does not undo the newer one (the result is the same in any order).

Real parts: a hub process (HTTPS, pinned), SQLCipher counter files, share_once.
"""

from __future__ import annotations

from opd_fallback.application.services import CounterService, PaymentInput
from opd_fallback.store import open_store
from opd_fallback.store import shared as shared_store
from tests.helpers.hub import run_hub
from tests.helpers.landay import share

DEVICES = ("C01", "C02", "C03")


def _shared(store, ref):
    with store.read() as s:
        row = shared_store.get(s, ref, "patient")
        return None if row is None else (row.name, row.mobile)


def test_an_edit_pulled_before_its_patient_is_applied_when_the_patient_arrives(tmp_path) -> None:
    stores = {d: open_store(tmp_path / d / "counter.db") for d in DEVICES}
    try:
        with run_hub(tmp_path, devices=DEVICES) as hub:
            def ok(dev: str) -> None:
                res = share(hub, stores[dev], dev)
                assert res.outcome == "ok", res.message

            c01, c02 = CounterService(stores["C01"], "C01"), CounterService(stores["C02"], "C02")
            reg = c01.register_new("op", {"name": "Meena Kumari", "sex": "F", "age_years": 40},
                                   department="MED", payment=PaymentInput(mode="cash", amount_paise=1000))
            ref = reg.patient.local_ref
            c01.update_patient("op", ref, {"mobile": "9800000001"})  # C01's own edit, the older one
            ok("C01")
            ok("C02")
            assert _shared(stores["C02"], ref) == ("Meena Kumari", "9800000001")
            c02.update_patient("op", ref, {"name": "Meena Devi", "mobile": "9800000002"})  # the newer edit
            ok("C02")

            # the hub's file is lost: a new, empty hub on the same PC (new db_id, new tokens)
            hub.stop()
            for ext in ("", "-wal", "-shm", ".seen"):
                hub.db_path.with_name(hub.db_path.name + ext).unlink(missing_ok=True)
            for d in DEVICES:
                hub.add_device(d)
            hub.start()

            ok("C02")  # C02 heals the hub first: its edit of C01's patient is on the hub before the patient
            ok("C03")  # C03 pulls the edit; the patient is not here yet
            assert _shared(stores["C03"], ref) is None
            ok("C01")  # C01 sends the patient (and its own, older edit, after it)
            ok("C03")
            assert _shared(stores["C03"], ref) == ("Meena Devi", "9800000002")
            found = CounterService(stores["C03"], "C03").search_patients("Meena Devi")
            assert [(h.local_ref, h.name, h.mobile, h.source) for h in found] == \
                [(ref, "Meena Devi", "9800000002", "lan")]
    finally:
        for st in stores.values():
            st.close()

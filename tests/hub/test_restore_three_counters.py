"""Three counter PCs die while central is down; each is restored from the hub on a new PC,
takes new work at once, and when central returns every counter syncs and reconciles clean:
every record at central exactly once, to the paisa."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from opd_fallback.application.services import CounterService, PaymentInput
from opd_fallback.cli import app
from opd_fallback.config import load_settings
from opd_fallback.domain.clock import today_ist
from opd_fallback.store import open_store
from opd_fallback.store.operators import add_operator
from tests.helpers.central import run_central
from tests.helpers.hub import run_hub
from tests.hub.test_restore_equals_original import init, share, sync

run = CliRunner().invoke
DEVICES = ("C01", "C02", "C03")
NAMES = ("Asha", "Bina", "Chand", "Devi", "Esha")
WHO = {"C01": "Rani", "C02": "Kumari", "C03": "Devi"}


@pytest.mark.chaos
def test_three_counters_restored_during_the_outage_sync_clean(tmp_path: Path, monkeypatch: Any) -> None:
    with run_central(tmp_path, devices=DEVICES) as central, run_hub(tmp_path, devices=DEVICES) as hub:
        for dev in DEVICES:
            init(tmp_path / f"old-{dev}", dev, central, hub, monkeypatch)
            assert run(app, ["--data-dir", str(tmp_path / f"old-{dev}"), "refresh"]).exit_code == 0
        central.stop()  # the outage begins: everything below reaches only the hub
        paise = 0
        for dev in DEVICES:
            s = load_settings(tmp_path / f"old-{dev}")
            st = open_store(s.db_path)
            try:
                add_operator(st, "op-1", "Asha", "1234")
                svc = CounterService(st, dev)
                for i in range(5):
                    reg = svc.register_new("op-1", {"name": f"{NAMES[i]} {WHO[dev]}", "sex": "F", "age_years": 30 + i},
                                           department="MED", payment=PaymentInput(mode="cash"))
                    lab = svc.lab_request("op-1", reg.patient.local_ref, reg.visit.local_ref, ["CBC"],
                                          payment=PaymentInput(mode="cash"))
                    paise += reg.payment.extra["amount_paise"] + lab.payment.extra["amount_paise"]
                share(st, s, dev)
            finally:
                st.close()  # ... and the PC dies
        for dev in DEVICES:  # new PCs, central still down
            hub.add_device(dev)
            new = tmp_path / f"new-{dev}"
            init(new, dev, central, hub, monkeypatch)
            out = run(app, ["--data-dir", str(new), "restore", "--from-hub", "--device", dev])
            assert out.exit_code == 0 and f"Ready for new work: counter {dev}" in out.output, out.output
            s = load_settings(new)
            st = open_store(s.db_path)
            try:  # new work at once, priced from the master data the hub kept
                reg = CounterService(st, dev).register_new("op-1", {"name": f"Mohan {WHO[dev]}", "sex": "M",
                                                                    "age_years": 50}, department="MED",
                                                           payment=PaymentInput(mode="cash"))
                paise += reg.payment.extra["amount_paise"]
            finally:
                st.close()
        central.start()  # central returns
        for dev in DEVICES:
            new = tmp_path / f"new-{dev}"
            s = load_settings(new)
            st = open_store(s.db_path)
            try:
                assert sync(st, s).exit_code == 0
            finally:
                st.close()
            rec = run(app, ["--data-dir", str(new), "reconcile", "--date", today_ist().isoformat()])
            assert rec.exit_code == 0, rec.output
        con = sqlite3.connect(central.db_path)
        try:
            patients = con.execute("SELECT device_id, count(*) FROM patient GROUP BY device_id").fetchall()
            assert dict(patients) == {dev: 6 for dev in DEVICES}
            applied = con.execute("SELECT count(*), count(DISTINCT op_id) FROM op_outcome "
                                  "WHERE status='applied'").fetchone()
            assert applied[0] == applied[1] == 3 * (5 * 5 + 3)
        finally:
            con.close()
        print(f"3 counters restored during the outage: {applied[0]} ops at central once each, {paise} paise")

"""Reconcile never calls a day clean while ops this counter saved that day carry another date:
a PC a year ahead, confirmed by a supervisor, saves records dated a year on; reconciling the
real day (by the hub's clock) says so and exits 1, and the wrongly dated day is not hidden."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from opd_fallback.application import clock
from opd_fallback.application.services import CounterService, PaymentInput
from opd_fallback.cli import app
from opd_fallback.config import load_settings
from opd_fallback.domain.clock import today_ist
from opd_fallback.store import open_store
from opd_fallback.store.operators import add_operator
from tests.helpers.central import run_central

run = CliRunner().invoke


def test_a_day_with_misdated_ops_is_not_clean(tmp_path: Path, monkeypatch: Any) -> None:
    with run_central(tmp_path, devices=("C03",)) as central:
        data = tmp_path / "c03"
        monkeypatch.setenv("OPD_CENTRAL_TOKEN", central.tokens["C03"])
        assert run(app, ["--data-dir", str(data), "init", "--device", "C03", "--hospital", "KGMU",
                         "--server", central.url]).exit_code == 0
        st = open_store(load_settings(data).db_path)
        try:
            add_operator(st, "op-1", "Asha", "1234")
            add_operator(st, "sup-1", "Meena", "999999", role="supervisor")
            # this PC reads today; the hub said it is a year earlier (a PC a year ahead): confirmed, it saves
            clock.observe(st, "hub", -365 * 86400.0)
            clock.confirm(st, "sup-1", "999999")
            reg = CounterService(st, "C03").register_new("op-1", {"name": "Sita Devi", "sex": "F", "age_years": 34},
                                                         department="MED", payment=PaymentInput(mode="cash",
                                                                                                amount_paise=1000))
        finally:
            st.close()
        assert run(app, ["--data-dir", str(data), "sync"]).exit_code in (0, 1)
        real_day = today_ist() - timedelta(days=365)
        out = run(app, ["--data-dir", str(data), "reconcile", "--date", real_day.isoformat(), "--json"])
        assert out.exit_code == 1, out.output
        body = json.loads(out.stdout)
        assert {m["op_id"] for m in body["misdated"]} >= {reg.patient.op_id, reg.visit.op_id}
        assert any("carry another date" in r for r in body["reasons"])

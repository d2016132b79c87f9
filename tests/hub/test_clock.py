"""A wrong PC clock (a dead CMOS battery) is caught against the hub's and central's clocks,
through real processes under libfaketime: a year ahead and 400 days behind. ``share`` and
``sync`` say so in their result (``--json`` too) and exit non-zero; the counter will not save
until a supervisor confirms the date (audited); a right clock clears it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from opd_fallback.application.services import CounterService, PaymentInput
from opd_fallback.cli import app
from opd_fallback.config import load_settings
from opd_fallback.domain.errors import DomainError
from opd_fallback.store import open_store
from opd_fallback.store.operators import add_operator
from tests.helpers.central import run_central
from tests.helpers.hub import run_hub

pytestmark = pytest.mark.skipif(shutil.which("faketime") is None,
                                reason="faketime is not installed (Debian package faketime; .ci/run installs it)")
PATIENT = {"name": "Sita Devi", "sex": "F", "age_years": 34}


def under(offset: str | None, data: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPD_")}
    cmd = [sys.executable, "-m", "opd_fallback", "--data-dir", str(data), *args]
    if offset:
        cmd = ["faketime", "-f", offset, *cmd]
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=120, env=env)


def register(data: Path) -> str:
    st = open_store(load_settings(data).db_path)
    try:
        return CounterService(st, "C03").register_new("op-1", PATIENT, department="MED",
                                                      payment=PaymentInput(mode="cash", amount_paise=1000)).patient.local_ref
    finally:
        st.close()


# A year ahead runs in make test; 400 days behind (the same path, the other sign) in make chaos:
# each is ~12 s of processes under libfaketime (issue 21: make test < 4 min).
@pytest.mark.parametrize(("offset", "days", "sign"), [
    ("+365d", 365, -1), pytest.param("-400d", 400, +1, marks=pytest.mark.chaos)])
def test_a_wrong_clock_is_caught_and_saving_waits_for_a_supervisor(tmp_path: Path, offset: str, days: int,
                                                                    sign: int, monkeypatch) -> None:
    with run_central(tmp_path, devices=("C03",)) as central, run_hub(tmp_path, devices=("C03",)) as hub:
        data = tmp_path / "c03"
        monkeypatch.setenv("OPD_CENTRAL_TOKEN", central.tokens["C03"])
        out = CliRunner().invoke(app, ["--data-dir", str(data), "init", "--device", "C03", "--hospital", "KGMU",
                                       "--server", central.url, "--hub", hub.url, "--hub-pairing-stdin"],
                                 input=hub.pairing("C03") + "\n")
        monkeypatch.delenv("OPD_CENTRAL_TOKEN")
        assert out.exit_code == 0, out.output
        st = open_store(load_settings(data).db_path)
        add_operator(st, "op-1", "Asha", "1234")
        add_operator(st, "sup-1", "Meena", "999999", role="supervisor")
        st.close()
        register(data)  # a right clock: saving works

        shared = under(offset, data, "share", "--json")
        assert shared.returncode == 1, shared.stderr  # off by more than a day: a person must set the date
        clock = json.loads(shared.stdout)["clock"]
        assert clock["source"] == "hub" and clock["off"] and clock["off_by_a_day"]
        assert abs(clock["offset_s"] - sign * days * 86400) < 600
        assert f"{days} days {'ahead of' if sign < 0 else 'behind'} the LAN hub's" in clock["message"]

        text_run = under(offset, data, "share")
        assert text_run.returncode == 1 and "days" in text_run.stderr  # said in words, not only in JSON

        synced = under(offset, data, "sync", "--json", "--give-up-after", "20")
        assert synced.returncode == 1, synced.stderr + synced.stdout
        sclock = json.loads(synced.stdout)["clock"]
        assert sclock["source"] == "central" and sclock["off_by_a_day"]

        with pytest.raises(DomainError, match=r"clock is .* days") as refused:
            register(data)
        assert refused.value.code == "clock_off"
        wrong = under(None, data, "clock", "confirm", "--supervisor", "sup-1", "--pin-stdin", stdin="000000\n")
        assert wrong.returncode == 1
        with pytest.raises(DomainError):
            register(data)
        ok = under(None, data, "clock", "confirm", "--supervisor", "sup-1", "--pin-stdin", stdin="999999\n")
        assert ok.returncode == 0, ok.stderr
        register(data)  # confirmed: the counter saves, and it is audited
        st = open_store(load_settings(data).db_path)
        try:
            from sqlalchemy import text

            with st.read() as s:
                rows = s.execute(text("SELECT actor, subject FROM audit_log WHERE action='clock.confirmed'")).all()
            assert [tuple(r) for r in rows] == [("sup-1", "central")]
        finally:
            st.close()

        right = under(None, data, "share", "--json")  # the clock set right: all clear
        assert right.returncode == 0, right.stderr
        assert json.loads(right.stdout)["clock"]["off"] is False
        assert under(None, data, "clock", "show").returncode == 0

"""``opd-fallback collect`` as a real process: the PIN on the first line of
stdin, then one tube id per line as a barcode scanner types it; one answer
line per tube; exit 0 all recorded, 1 some refused or the PIN not accepted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from opd_fallback.application.services import CounterService, PaymentInput
from opd_fallback.cli import app
from opd_fallback.store import open_store
from tests.conftest import put_master_data

runner = CliRunner()


@pytest.fixture
def counter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for k in list(os.environ):
        if k.startswith("OPD_"):
            monkeypatch.delenv(k)
    data = tmp_path / "counter"
    monkeypatch.setenv("OPD_DATA_DIR", str(data))
    assert runner.invoke(app, ["init", "--device", "C07", "--hospital", "KGMU"]).exit_code == 0
    res = runner.invoke(app, ["operator", "add", "lab1", "--name", "Lab One", "--pin-stdin"], input="4321\n")
    assert res.exit_code == 0, res.output
    return data


def _run(data: Path, stdin: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPD_")}
    return subprocess.run([sys.executable, "-m", "opd_fallback", "--data-dir", str(data), "collect",
                           "--operator", "lab1", "--pin-stdin", *args],
                          input=stdin, capture_output=True, text=True, timeout=120, env=env)


def test_tubes_scanned_one_per_line_are_answered_one_line_each(counter: Path) -> None:
    store = open_store(counter / "counter.db")
    try:
        put_master_data(store)
        svc = CounterService(store, "C07")
        reg = svc.register_new("lab1", {"name": "Kamla Devi", "name_local": "कमला देवी", "sex": "F",
                                        "age_years": 52}, department="MED", payment=PaymentInput(mode="cash"))
        paid = svc.lab_request("lab1", reg.patient.local_ref, reg.visit.local_ref, ["CBC", "LFT"],
                               payment=PaymentInput(mode="cash"))
        unpaid = svc.lab_request("lab1", reg.patient.local_ref, reg.visit.local_ref, ["CBC"])
    finally:
        store.close()
    edta, serum = (t["sample_id"] for t in paid.order.extra["samples"])
    other = unpaid.order.extra["sample_id"]

    wrong = _run(counter, "0000\n" + edta + "\n")
    assert wrong.returncode == 1
    assert wrong.stdout == ""
    assert "nothing recorded" in wrong.stderr and "Traceback" not in wrong.stderr

    done = _run(counter, f"4321\n{edta}\n\n{edta.lower()}\n{other}\nC07-S999999\n")
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 4, done.stdout
    assert lines[0].startswith(f"{edta}: collected at ")
    assert lines[0].endswith(f" by lab1: Kamla Devi / कमला देवी, 52Y/F ({reg.patient.local_ref}); EDTA: CBC Complete "
                             f"Blood Count; order {paid.order.local_ref} paid")
    assert lines[1].startswith(f"{edta}: NOT RECORDED: tube {edta} was already collected at ")
    assert lines[2] == (f"{other}: NOT RECORDED: lab order {unpaid.order.local_ref} is not paid: send the patient "
                        "to billing, then scan again (paid at another counter a moment ago? the hub shares it "
                        "within seconds)")
    assert lines[3] == ("C07-S999999: NOT RECORDED: no tube C07-S999999 in this counter's or the LAN's lab orders: "
                        "check the label, or wait for the hub to share the order and scan again")

    bad = _run(counter, f"4321\n{serum}\n", "--reject", "dropped")
    assert bad.returncode == 1 and "--reject: 'dropped' is not a reason" in bad.stderr

    refused = _run(counter, f"4321\n{serum}\n{other}\n", "--reject", "clotted")
    assert refused.returncode == 0, refused.stderr
    assert [ln.split(" at ")[0] for ln in refused.stdout.splitlines()] == [
        f"{serum}: refused (clotted)", f"{other}: refused (clotted)"]
    printed = sorted(p.name for p in (counter / "prints").iterdir())
    assert len([p for p in printed if serum in p]) == 1 and len([p for p in printed if other in p]) == 1

    store = open_store(counter / "counter.db")
    try:
        with store.read() as s:
            ops = s.execute(text("SELECT payload, operator_id, state FROM op WHERE kind = 'lab.sample_collect' "
                                 "ORDER BY seq")).all()
    finally:
        store.close()
    assert [(orjson.loads(p)["sample_id"], orjson.loads(p)["status"], orjson.loads(p).get("reason"), who, st)
            for p, who, st in ops] == [
        (edta, "collected", None, "lab1", "pending"), (serum, "rejected", "clotted", "lab1", "pending"),
        (other, "rejected", "clotted", "lab1", "pending")]
